//! Mailgun signs each webhook with an HMAC-SHA256 (hex) of `timestamp ‖ token`, keyed with the
//! HTTP webhook signing key, and puts it in the body's `signature` object
//! (<https://documentation.mailgun.com/en/latest/user_manual.html#securing-webhooks>).
//!
//! The signature does not cover `event-data`: a token is accepted once within the timestamp
//! window (a replayed token, possibly with another body, is refused).
//! Mailgun has no signature headers, so a missing field is reported as
//! [`VerifyError::MissingHeader`] naming the body field.

use crate::providers::signature::{check_timestamp, constant_time_eq, hmac_sha256, DEFAULT_TOLERANCE_SECS};
use crate::providers::{RawRequest, VerifyContext, VerifyError};
use serde_json::Value;

pub const FIELD_SIGNATURE: &str = "signature";
pub const FIELD_TIMESTAMP: &str = "signature.timestamp";
pub const FIELD_TOKEN: &str = "signature.token";
pub const FIELD_HMAC: &str = "signature.signature";

pub fn verify(req: &RawRequest<'_>, creds: Option<&super::Credentials>, ctx: &VerifyContext) -> Result<(), VerifyError> {
    // Only the `signature` object is read before the check; `event-data` is skipped unparsed.
    #[derive(serde::Deserialize)]
    struct Signed {
        signature: Option<Value>,
    }
    let signed: Signed = serde_json::from_slice(req.body).map_err(|e| VerifyError::Malformed(format!("invalid JSON: {e}")))?;
    let sig = signed.signature.filter(Value::is_object).ok_or(VerifyError::MissingHeader(FIELD_SIGNATURE))?;
    let timestamp = text(sig.get("timestamp")).ok_or(VerifyError::MissingHeader(FIELD_TIMESTAMP))?;
    let token = text(sig.get("token")).ok_or(VerifyError::MissingHeader(FIELD_TOKEN))?;
    let presented = text(sig.get("signature")).ok_or(VerifyError::MissingHeader(FIELD_HMAC))?;
    let timestamp_secs: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::Malformed(format!("`{FIELD_TIMESTAMP}` is not a number of seconds")))?;
    check_timestamp(timestamp_secs, req.now_ms, DEFAULT_TOLERANCE_SECS)?;
    // The key is looked up after the checks any tenant would fail alike (no tenant enumeration).
    let key = creds.map(|c| c.signing_key.as_str()).filter(|k| !k.is_empty()).ok_or(VerifyError::NotConfigured)?;
    let presented = hex::decode(presented.trim()).map_err(|_| VerifyError::BadSignature)?;
    let expected = hmac_sha256(key.as_bytes(), &[timestamp.as_bytes(), token.as_bytes()]);
    if !constant_time_eq(&presented, &expected) {
        return Err(VerifyError::BadSignature);
    }
    // The signature does not cover `event-data`: a token seen within its window is a replay
    // (possibly with another body). Remembered only once the signature holds.
    let expires = timestamp_secs.saturating_add(DEFAULT_TOLERANCE_SECS);
    let first = ctx.first_use(&format!("mailgun/{}", req.tenant), &token, expires, req.now_ms.div_euclid(1000));
    if first {
        Ok(())
    } else {
        Err(VerifyError::Replayed)
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
