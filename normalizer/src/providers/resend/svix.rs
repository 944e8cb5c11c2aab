//! Svix webhook signatures, as Resend sends them
//! (<https://resend.com/docs/webhooks/verify-webhooks-requests>,
//! <https://docs.svix.com/receiving/verifying-payloads/how-manual>).
//!
//! The signed content is `{svix-id}.{svix-timestamp}.{body}`; the key is the base64 part of the
//! `whsec_...` secret; `svix-signature` lists `v1,<base64>` entries separated by spaces, and any
//! one matching is enough (several appear while a secret is rotated).

use crate::providers::signature::{check_timestamp, constant_time_eq, hmac_sha256, DEFAULT_TOLERANCE_SECS};
use crate::providers::{RawRequest, VerifyError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub const HEADER_ID: &str = "svix-id";
pub const HEADER_TIMESTAMP: &str = "svix-timestamp";
pub const HEADER_SIGNATURE: &str = "svix-signature";

/// Checks the Svix headers; returns the message id (`svix-id`).
pub fn verify<'r>(req: &RawRequest<'r>, creds: Option<&super::Credentials>) -> Result<&'r str, VerifyError> {
    let headers = req.headers;
    let header = |name: &'static str| headers.get(name).map(String::as_str).ok_or(VerifyError::MissingHeader(name));
    let id = header(HEADER_ID)?;
    let timestamp = header(HEADER_TIMESTAMP)?;
    let signatures = header(HEADER_SIGNATURE)?;
    let timestamp_secs: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::Malformed(format!("`{HEADER_TIMESTAMP}` is not a number of seconds")))?;
    check_timestamp(timestamp_secs, req.now_ms, DEFAULT_TOLERANCE_SECS)?;
    // The secret is looked up after the checks any tenant would fail alike (no tenant enumeration).
    let secret = creds.map(|c| c.secret.as_str()).ok_or(VerifyError::NotConfigured)?;
    let key = secret_key(secret).ok_or_else(|| {
        tracing::warn!(message = "Resend webhook secret is not a `whsec_` base64 secret.", tenant = req.tenant);
        VerifyError::NotConfigured
    })?;
    let expected = hmac_sha256(&key, &[id.as_bytes(), b".", timestamp.as_bytes(), b".", req.body]);
    let matches = signatures
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|sig| STANDARD.decode(sig).ok())
        .any(|sig| constant_time_eq(&sig, &expected));
    if matches {
        Ok(id)
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// The HMAC key: the base64 after `whsec_` (a bare base64 secret is accepted too).
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let secret = secret.trim();
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD.decode(encoded).ok().filter(|k| !k.is_empty())
}
