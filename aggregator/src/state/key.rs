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
    /// 32 lower-case hex digits as two `u64`, in one pass (it was a check pass, then
    /// `u128::from_str_radix`'s checked arithmetic per digit: 2 % of a batch; BENCHMARKS.md §1b).
    fn parse_ours(key: &[u8]) -> Option<DeliveryKey> {
        // (no branch per digit: a table gives each byte its value, or a flag bit if it is not one)
        const NOT_A_DIGIT: u8 = 0x10;
        const VALUE: [u8; 256] = {
            let mut t = [NOT_A_DIGIT; 256];
            let mut i = 0;
            while i < 10 {
                t[b'0' as usize + i] = i as u8;
                i += 1;
            }
            let mut i = 0;
            while i < 6 {
                t[b'a' as usize + i] = 10 + i as u8;
                i += 1;
            }
            t
        };
        fn half(digits: &[u8]) -> Option<u64> {
            let (v, flags) = digits.iter().fold((0u64, 0u8), |(v, flags), b| {
                let d = VALUE[*b as usize];
                ((v << 4) | (d & 0xf) as u64, flags | d)
            });
            (flags & NOT_A_DIGIT == 0).then_some(v)
        }
        let (hi, lo) = (key.len() == 32).then(|| key.split_at(16))?;
        Some(DeliveryKey([half(hi)?, half(lo)?]))
    }
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

    proptest::proptest! {
        /// The one-pass parse takes exactly what the check and `u128::from_str_radix` took, to the same key.
        #[test]
        fn parse_is_check_then_from_str_radix(key in proptest::prop_oneof!["[0-9a-f]{32}", "[0-9a-f]{31}[0-9a-fA-F+g-]", "[0-9a-fA-F+g-]{30,33}"]) {
            let ours = key.len() == 32 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            let want = ours.then(|| u128::from_str_radix(&key, 16).ok().map(DeliveryKey::from)).flatten();
            proptest::prop_assert_eq!(DeliveryKey::parse_ours(key.as_bytes()), want);
        }
    }
}
