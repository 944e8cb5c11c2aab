//! Opaque page tokens: a position in a keyset order, bound to the filters it was made for.
//!
//! A token is base64url JSON `{"f": <filters fingerprint>, "t": <time ms>, "k": <key>}`. It is
//! not a secret (the key decides the tenant, so a forged token only moves the cursor), but a
//! token used with other filters than its own is refused: the cursor would mean another list.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Token {
    f: String,
    t: i64,
    k: String,
}

/// A short fingerprint of an endpoint's filters (their `Debug` form, which lists every field).
pub fn fingerprint(endpoint: &str, filters: &impl std::fmt::Debug) -> String {
    let digest = Sha256::digest(format!("{endpoint}\n{filters:?}").as_bytes());
    hex::encode(&digest[..8])
}

pub fn encode(fingerprint: &str, at: i64, key: &str) -> String {
    let json = serde_json::to_vec(&Token { f: fingerprint.into(), t: at, k: key.into() }).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The cursor `(time, key)` of a token made for `fingerprint`; the error is the 400's detail.
pub fn decode(token: &str, fingerprint: &str) -> Result<(i64, String), String> {
    let bytes = URL_SAFE_NO_PAD.decode(token.as_bytes()).map_err(|_| "not a page token of this API".to_string())?;
    let t: Token = serde_json::from_slice(&bytes).map_err(|_| "not a page token of this API".to_string())?;
    if t.f != fingerprint {
        return Err("this page token was issued for other filters; repeat the same filters or start without a token".into());
    }
    Ok((t.t, t.k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let a = fingerprint("messages", &("b1", Some(3)));
        let b = fingerprint("messages", &("b2", Some(3)));
        assert_ne!(a, b);
        let tok = encode(&a, 1234, "key/1");
        assert_eq!(decode(&tok, &a), Ok((1234, "key/1".to_string())));
        assert!(decode(&tok, &b).unwrap_err().contains("other filters"));
        assert!(decode("%%%", &a).is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode(b"{}"), &a).is_err());
    }
}
