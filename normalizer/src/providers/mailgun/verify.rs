//! Mailgun signs each webhook with an HMAC-SHA256 (hex) of `timestamp ‖ token`, keyed with the
//! HTTP webhook signing key, and puts it in the body's `signature` object
//! (<https://documentation.mailgun.com/en/latest/user_manual.html#securing-webhooks>).
//!
//! The signature does not cover `event-data`; only the timestamp window limits replays.
//! Mailgun has no signature headers, so a missing field is reported as
//! [`VerifyError::MissingHeader`] naming the body field.

use crate::providers::signature::{check_timestamp, constant_time_eq, hmac_sha256, DEFAULT_TOLERANCE_SECS};
use crate::providers::{RawRequest, TenantCredentials, VerifyError};
use serde_json::Value;

pub const FIELD_SIGNATURE: &str = "signature";
pub const FIELD_TIMESTAMP: &str = "signature.timestamp";
pub const FIELD_TOKEN: &str = "signature.token";
pub const FIELD_HMAC: &str = "signature.signature";

pub fn verify(req: &RawRequest<'_>, creds: &TenantCredentials) -> Result<(), VerifyError> {
    let key = creds.mailgun_signing_key.as_deref().ok_or(VerifyError::NotConfigured)?;
    let v: Value = serde_json::from_slice(req.body).map_err(|e| VerifyError::Malformed(format!("invalid JSON: {e}")))?;
    let sig = v.get("signature").filter(|s| s.is_object()).ok_or(VerifyError::MissingHeader(FIELD_SIGNATURE))?;
    let timestamp = text(sig.get("timestamp")).ok_or(VerifyError::MissingHeader(FIELD_TIMESTAMP))?;
    let token = text(sig.get("token")).ok_or(VerifyError::MissingHeader(FIELD_TOKEN))?;
    let presented = text(sig.get("signature")).ok_or(VerifyError::MissingHeader(FIELD_HMAC))?;
    let timestamp_secs: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::Malformed(format!("`{FIELD_TIMESTAMP}` is not a number of seconds")))?;
    check_timestamp(timestamp_secs, req.now_ms, DEFAULT_TOLERANCE_SECS)?;
    let presented = hex::decode(presented.trim()).map_err(|_| VerifyError::BadSignature)?;
    let expected = hmac_sha256(key.as_bytes(), &[timestamp.as_bytes(), token.as_bytes()]);
    if constant_time_eq(&presented, &expected) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// A string field, or a number written as Mailgun would (the timestamp is sometimes numeric).
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
