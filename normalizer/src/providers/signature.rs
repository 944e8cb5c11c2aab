//! Signature building blocks shared by every provider: HMACs, constant-time
//! comparison and replay windows exist once, here.

use super::VerifyError;
use hmac::{Hmac, Mac};
use std::collections::{HashMap, VecDeque};

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 over the concatenation of `parts` (Twilio).
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Compares without leaking where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Rejects a signed timestamp (seconds since the epoch) further than `tolerance_secs` from now.
/// `abs_diff`, not a subtraction: a hostile timestamp (`i64::MIN`) cannot overflow.
pub fn check_timestamp(timestamp_secs: i64, now_ms: i64, tolerance_secs: i64) -> Result<(), VerifyError> {
    if now_ms.div_euclid(1000).abs_diff(timestamp_secs) > tolerance_secs.unsigned_abs() {
        Err(VerifyError::StaleTimestamp(tolerance_secs))
    } else {
        Ok(())
    }
}

/// Default replay window for timestamped signatures.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Checks an API key header against the tenant's configured key. The header is looked at first,
/// so a missing header is reported alike whether or not the tenant exists or has a key.
pub fn check_api_key(presented: Option<&str>, configured: Option<&str>) -> Result<(), VerifyError> {
    let presented = presented.ok_or(VerifyError::MissingHeader(API_KEY_HEADER))?;
    let configured = configured.filter(|k| !k.is_empty()).ok_or(VerifyError::NotConfigured)?;
    if constant_time_eq(presented.as_bytes(), configured.as_bytes()) {
        Ok(())
    } else {
        Err(VerifyError::BadCredentials)
    }
}

/// Header carrying a tenant API key (sender records, push results, EventBridge).
pub const API_KEY_HEADER: &str = "x-api-key";

/// Signature tokens seen within their replay window, to refuse a request sent again (schemes
/// whose signature does not cover the body, e.g. Mailgun's). Memory is bounded: at most
/// `capacity` tokens, each kept until its window closes; when full, the oldest go first.
pub struct ReplayGuard {
    seen: HashMap<[u8; 32], i64>,
    /// (expiry in seconds, token hash) in insertion order, to forget expired tokens.
    order: VecDeque<(i64, [u8; 32])>,
}

impl ReplayGuard {
    pub fn new() -> Self {
        ReplayGuard { seen: HashMap::new(), order: VecDeque::new() }
    }

    /// Records `token` (of `scope`, e.g. the tenant) as used until `expires_secs`; false when it
    /// was already used and its window has not closed.
    pub fn first_use(&mut self, scope: &str, token: &str, expires_secs: i64, now_secs: i64, capacity: usize) -> bool {
        use sha2::Digest;
        while let Some(&(exp, hash)) = self.order.front() {
            if exp >= now_secs && self.order.len() < capacity {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&hash) == Some(&exp) {
                self.seen.remove(&hash);
            }
        }
        let hash: [u8; 32] = sha2::Sha256::new().chain_update(scope).chain_update([0u8]).chain_update(token).finalize().into();
        if self.seen.get(&hash).is_some_and(|&exp| exp >= now_secs) {
            return false;
        }
        self.seen.insert(hash, expires_secs);
        self.order.push_back((expires_secs, hash));
        true
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new()
    }
}

/// `Authorization: Basic base64(user:password)` against the configured pair, in constant time.
pub fn check_basic_auth(header: &str, user: &str, password: &str) -> Result<(), VerifyError> {
    use base64::Engine;
    let (scheme, encoded) = header.trim().split_once(' ').ok_or(VerifyError::BadCredentials)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(VerifyError::BadCredentials);
    }
    let presented = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| VerifyError::BadCredentials)?;
    let expected = format!("{user}:{password}");
    if constant_time_eq(&presented, expected.as_bytes()) {
        Ok(())
    } else {
        Err(VerifyError::BadCredentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn timestamp_window() {
        assert!(check_timestamp(1000, 1_000_000, 300).is_ok());
        assert!(check_timestamp(1000 - 301, 1_000_000, 300).is_err());
        assert!(check_timestamp(1000 + 301, 1_000_000, 300).is_err());
    }

    /// Hostile timestamps at the ends of the range are refused, not an overflow panic.
    #[test]
    fn extreme_timestamps_do_not_overflow() {
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
            assert_eq!(check_timestamp(ts, 1_700_000_000_000, 300), Err(VerifyError::StaleTimestamp(300)));
            let _ = check_timestamp(ts, i64::MIN, 300);
            let _ = check_timestamp(ts, i64::MAX, i64::MAX);
        }
        assert!(check_timestamp(i64::MAX / 1000, i64::MAX, 300).is_ok());
    }

    #[test]
    fn replay_guard_refuses_reuse_within_the_window_and_stays_bounded() {
        let mut g = ReplayGuard::new();
        assert!(g.first_use("acme", "t1", 1300, 1000, 10));
        assert!(!g.first_use("acme", "t1", 1300, 1100, 10), "reused within its window");
        assert!(g.first_use("globex", "t1", 1300, 1100, 10), "scopes are apart");
        assert!(g.first_use("acme", "t1", 1700, 1400, 10), "after its window the token is forgotten");
        for i in 0..100 {
            assert!(g.first_use("acme", &format!("x{i}"), 5000, 1500, 10));
            assert!(g.len() <= 10);
        }
        assert!(!g.first_use("acme", "x99", 5000, 1500, 10), "the newest are kept");
    }

    #[test]
    fn timestamps_at_the_ends_of_i64_are_stale_not_a_panic() {
        // Found by fuzzing (fuzz/ target `provider`): `svix-timestamp: -9223372036854775808`
        // overflowed `now - timestamp` (a panic with overflow checks, a wrap without).
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX] {
            assert_eq!(check_timestamp(ts, 1_893_456_000_000, 300), Err(VerifyError::StaleTimestamp(300)));
            assert_eq!(check_timestamp(ts, -1_893_456_000_000, 300), Err(VerifyError::StaleTimestamp(300)));
        }
    }

    #[test]
    fn api_keys() {
        assert!(check_api_key(Some("k"), Some("k")).is_ok());
        assert_eq!(check_api_key(Some("x"), Some("k")), Err(VerifyError::BadCredentials));
        assert_eq!(check_api_key(None, Some("k")), Err(VerifyError::MissingHeader(API_KEY_HEADER)));
        assert_eq!(check_api_key(Some("k"), None), Err(VerifyError::NotConfigured));
        assert_eq!(check_api_key(Some(""), Some("")), Err(VerifyError::NotConfigured), "an empty key never matches");
        assert_eq!(check_api_key(None, None), Err(VerifyError::MissingHeader(API_KEY_HEADER)), "header first");
    }
}
