//! The in-memory key of a delivery: its 32-hex key as 16 bytes, hashed as is.

use sha2::{Digest, Sha256};
use std::hash::{BuildHasherDefault, Hasher};

/// `schemas::ids::delivery_key` is 16 bytes of SHA-256 written as 32 lower-case hex digits;
/// the map keeps the 16 bytes (no heap, no string compare), as two `u64` so a map slot is
/// 8-aligned (24 bytes with the box pointer, not the 32 a `u128` would need).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeliveryKey(pub [u64; 2]);

impl std::hash::Hash for DeliveryKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0[0] ^ self.0[1]);
    }
}

impl DeliveryKey {
    pub fn of(key: &str) -> DeliveryKey {
        if let Some(k) = Self::parse_ours(key.as_bytes()) {
            return k;
        }
        // Not written by our normalizer (a foreign producer): 16 bytes of its SHA-256,
        // uniform like ours. The rows still carry the event's own key string.
        let d = Sha256::digest(key.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        DeliveryKey::from(u128::from_be_bytes(b))
    }
}

impl DeliveryKey {
    /// 32 lower-case hex digits as two `u64`, eight digits at a time ([`hex16`]; it was a table
    /// lookup per digit, and before that a check pass, then `u128::from_str_radix`'s checked
    /// arithmetic per digit; BENCHMARKS.md §1b).
    fn parse_ours(key: &[u8]) -> Option<DeliveryKey> {
        let (hi, lo) = (key.len() == 32).then(|| key.split_at(16))?;
        Some(DeliveryKey([hex16(hi)?, hex16(lo)?]))
    }
}

/// Sixteen lower-case hex digits as their value; `None` when any byte is not one or there are
/// not sixteen. Shared by the delivery keys and the event ids' hashes (`ids::event_hash`):
/// three per event. In one SSE2 register on x86-64 ([`hex16_sse2`]; in two words, [`hex8`]
/// twice, ~37 instructions each, it was ~150 instructions an event; BENCHMARKS.md §1b),
/// in words elsewhere ([`hex16_words`], which the tests also check it against).
#[inline]
pub(crate) fn hex16(digits: &[u8]) -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    return hex16_sse2(digits);
    #[cfg(not(target_arch = "x86_64"))]
    return hex16_words(digits);
}

/// [`hex16`] in one 16-byte register (SSE2, in every x86-64 CPU): each byte's value as a
/// digit and as a letter, which of them it is (an unsigned compare each), one mask for all
/// sixteen; then pairs of values into bytes, the first digit high, and the bytes in order.
#[cfg(target_arch = "x86_64")]
#[inline]
fn hex16_sse2(digits: &[u8]) -> Option<u64> {
    use std::arch::x86_64::*;
    let d: &[u8; 16] = digits.try_into().ok()?;
    // SAFETY: SSE2, which these intrinsics need, is part of the x86-64 baseline every build of
    // this crate targets; the one load reads the sixteen bytes of `d` (unaligned load), and
    // nothing else touches memory.
    let (ok, x) = unsafe {
        let c = _mm_loadu_si128(d.as_ptr().cast());
        let num = _mm_sub_epi8(c, _mm_set1_epi8(b'0' as i8));
        let alpha = _mm_sub_epi8(c, _mm_set1_epi8(b'a' as i8));
        // `0-9`: `c - '0'` at most 9 unsigned; `a-f`: `c - 'a'` at most 5 (a byte is one at most)
        let is_num = _mm_cmpeq_epi8(_mm_min_epu8(num, _mm_set1_epi8(9)), num);
        let is_alpha = _mm_cmpeq_epi8(_mm_min_epu8(alpha, _mm_set1_epi8(5)), alpha);
        let ok = _mm_movemask_epi8(_mm_or_si128(is_num, is_alpha)) == 0xFFFF;
        let v = _mm_or_si128(_mm_and_si128(is_num, num), _mm_andnot_si128(is_num, _mm_add_epi8(alpha, _mm_set1_epi8(10))));
        // each 16-bit lane holds two digits' values (the first in its low byte): first << 4 | second
        let pairs = _mm_and_si128(_mm_or_si128(_mm_slli_epi16::<4>(v), _mm_srli_epi16::<8>(v)), _mm_set1_epi16(0xFF));
        (ok, _mm_cvtsi128_si64(_mm_packus_epi16(pairs, pairs)) as u64)
    };
    ok.then(|| x.swap_bytes())
}

/// [`hex16`] as two words of eight digits ([`hex8`] twice).
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn hex16_words(digits: &[u8]) -> Option<u64> {
    let (hi, lo) = (digits.len() == 16).then(|| digits.split_at(8))?;
    Some(u64::from(hex8(hi)?) << 32 | u64::from(hex8(lo)?))
}

/// Eight lower-case hex digits (`0-9a-f`, the first the most significant) as their value;
/// `None` when any byte is not one or there are not eight. In one 64-bit word, no branch
/// per digit: each byte's value is taken as if it were a digit, the values written back as
/// lower-case hex, and the result must be the bytes themselves (only a digit comes back as
/// itself).
#[inline]
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn hex8(digits: &[u8]) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let w = u64::from_le_bytes(digits.try_into().ok()?);
    // a digit's value: its low four bits, plus 9 for a letter (bit 6 set); kept to four bits
    let n = ((w & (0x0F * ONES)) + ((w >> 6) & ONES) * 9) & (0x0F * ONES);
    // written back: '0' + n, and 39 more for n above 9 (n + 6 carries into bit 4)
    let letters = ((n + 6 * ONES) >> 4) & ONES;
    if n + 0x30 * ONES + letters * 39 != w {
        return None;
    }
    // pack: pairs of digits into bytes (first digit high), then the four bytes in order
    let x = (n << 4 | n >> 8) & 0x00FF_00FF_00FF_00FF;
    let x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    let x = (x | (x >> 16)) as u32;
    Some(x.swap_bytes())
}

impl From<u128> for DeliveryKey {
    fn from(v: u128) -> Self {
        DeliveryKey([(v >> 64) as u64, v as u64])
    }
}

/// The key is already a uniform hash: fold it to 64 bits instead of hashing it again.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `DeliveryKey`; FNV-1a so any other input still spreads.
        self.0 = fnv1a(self.0, bytes);
    }
}

/// FNV-1a of `bytes`, continuing from `h` (start from [`FNV_OFFSET`]).
pub fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
}

/// FNV-1a's offset basis.
pub const FNV_OFFSET: u64 = 0xcbf29ce484222325;

pub type KeyHash = BuildHasherDefault<KeyHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    #[test]
    fn our_keys_are_their_bytes_and_foreign_keys_still_map() {
        let k = schemas::ids::delivery_key("t", "ses", "m", "a@x.io");
        let d = DeliveryKey::of(&k).0;
        assert_eq!(format!("{:016x}{:016x}", d[0], d[1]), k);
        // upper case, a sign or a wrong length is not ours: hashed, so no two strings share a key by parsing
        let upper = k.to_ascii_uppercase();
        assert_ne!(DeliveryKey::of(&upper), DeliveryKey::of(&k));
        assert_ne!(DeliveryKey::of(&format!("+{}", &k[1..])), DeliveryKey::of(&format!("0{}", &k[1..])));
        assert_eq!(DeliveryKey::of("dk"), DeliveryKey::of("dk"));
    }

    #[test]
    fn eight_hex_digits() {
        assert_eq!(hex8(b"0123abcd"), Some(0x0123_abcd));
        assert_eq!(hex8(b"ffffffff"), Some(u32::MAX));
        assert_eq!(hex8(b"00000000"), Some(0));
        for bad in [&b"0123abcD"[..], b"0123abc", b"0123abcde", b"o0000000", b"0000000g", b"+0000000", b"0000000\xff", b"\x10000000", b"0000 000"] {
            assert_eq!(hex8(bad), None, "{bad:?}");
        }
    }

    /// Every byte value at every place among digits: read only when it is a lower-case digit.
    #[test]
    fn every_byte_at_every_place() {
        for one in 0..=255u8 {
            for i in 0..8 {
                let mut b = *b"0123abcd";
                b[i] = one;
                let want = matches!(one, b'0'..=b'9' | b'a'..=b'f').then(|| u32::from_str_radix(std::str::from_utf8(&b).unwrap(), 16).unwrap());
                assert_eq!(hex8(&b), want, "{one:#x} at {i}");
            }
        }
    }

    /// Sixteen digits, every byte value at every place: read only when it is a lower-case
    /// digit, as `u64::from_str_radix` reads it, by [`hex16`] and [`hex16_words`] alike; any
    /// other length is not read.
    #[test]
    fn sixteen_digits_every_byte_at_every_place() {
        for one in 0..=255u8 {
            for i in 0..16 {
                let mut b = *b"0123456789abcdef";
                b[i] = one;
                let want = matches!(one, b'0'..=b'9' | b'a'..=b'f').then(|| u64::from_str_radix(std::str::from_utf8(&b).unwrap(), 16).unwrap());
                assert_eq!(hex16(&b), want, "{one:#x} at {i}");
                assert_eq!(hex16_words(&b), want, "{one:#x} at {i}");
            }
        }
        assert_eq!(hex16(b"ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(hex16(b"0000000000000000"), Some(0));
        for n in [0, 8, 15, 17, 32] {
            assert_eq!(hex16(&vec![b'a'; n]), None, "{n} digits");
        }
    }

    proptest::proptest! {
        /// Sixteen bytes of any value (and of digits, and of near misses) read as
        /// `u64::from_str_radix` reads them when all are lower-case hex digits, else not at all.
        #[test]
        fn hex16_is_check_then_from_str_radix(bytes in proptest::prop_oneof![proptest::collection::vec(proptest::prelude::any::<u8>(), 16), "[0-9a-f]{16}".prop_map(String::into_bytes), "[0-9a-fA-Fgo+/:`@ ]{16}".prop_map(String::into_bytes)]) {
            let ours = bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            let want = ours.then(|| u64::from_str_radix(std::str::from_utf8(&bytes).unwrap(), 16).ok()).flatten();
            proptest::prop_assert_eq!(hex16(&bytes), want);
        }

        /// Eight bytes of any value read as `u32::from_str_radix` reads them when all are
        /// lower-case hex digits, and not at all otherwise.
        #[test]
        fn hex8_is_check_then_from_str_radix(bytes in proptest::prop_oneof![proptest::collection::vec(proptest::prelude::any::<u8>(), 8), "[0-9a-f]{8}".prop_map(String::into_bytes), "[0-9a-fA-Fgo+ ]{8}".prop_map(String::into_bytes)]) {
            let ours = bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            let want = ours.then(|| u32::from_str_radix(std::str::from_utf8(&bytes).unwrap(), 16).ok()).flatten();
            proptest::prop_assert_eq!(hex8(&bytes), want);
        }

        /// The one-pass parse takes exactly what the check and `u128::from_str_radix` took, to the same key.
        #[test]
        fn parse_is_check_then_from_str_radix(key in proptest::prop_oneof!["[0-9a-f]{32}", "[0-9a-f]{31}[0-9a-fA-F+g-]", "[0-9a-fA-F+g-]{30,33}"]) {
            let ours = key.len() == 32 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            let want = ours.then(|| u128::from_str_radix(&key, 16).ok().map(DeliveryKey::from)).flatten();
            proptest::prop_assert_eq!(DeliveryKey::parse_ours(key.as_bytes()), want);
        }
    }
}
