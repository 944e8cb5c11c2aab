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
        let ours = key.len() == 32 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ours {
            if let Ok(v) = u128::from_str_radix(key, 16) {
                return DeliveryKey::from(v);
            }
        }
        // Not written by our normalizer (a foreign producer): 16 bytes of its SHA-256,
        // uniform like ours. The rows still carry the event's own key string.
        let d = Sha256::digest(key.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        DeliveryKey::from(u128::from_be_bytes(b))
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
}
