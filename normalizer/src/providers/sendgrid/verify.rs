//! The Signed Event Webhook: SendGrid signs `timestamp ‖ raw body` with ECDSA P-256 / SHA-256
//! and sends the DER signature in base64
//! (<https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features>).
//!
//! The check runs on `ring` (already in the tree for SNS's RSA and through rustls): its P-256
//! verification is several times faster than the pure-Rust `p256` crate's, which stays only to
//! read the configured key once (base64 DER or PEM, compressed or not) into the uncompressed
//! point `ring` takes (BENCHMARKS.md §7, `webhook_verify`).

use crate::providers::signature::{check_timestamp, DEFAULT_TOLERANCE_SECS};
use crate::providers::{RawRequest, VerifyError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED};

pub const HEADER_SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
pub const HEADER_TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";

/// A P-256 public key as an uncompressed SEC1 point (`0x04 ‖ x ‖ y`), what `ring` verifies with.
pub type Point = [u8; 65];

/// Checks the signature headers against the body with the tenant's verification key.
pub fn verify(req: &RawRequest<'_>, creds: Option<&super::Credentials>) -> Result<(), VerifyError> {
    let signature = req.header(HEADER_SIGNATURE).ok_or(VerifyError::MissingHeader(HEADER_SIGNATURE))?;
    let timestamp = req.header(HEADER_TIMESTAMP).ok_or(VerifyError::MissingHeader(HEADER_TIMESTAMP))?;
    let timestamp_secs: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::Malformed(format!("`{HEADER_TIMESTAMP}` is not a number of seconds")))?;
    check_timestamp(timestamp_secs, req.now_ms, DEFAULT_TOLERANCE_SECS)?;
    // The key is looked up after the checks any tenant would fail alike (no tenant enumeration).
    let creds = creds.ok_or(VerifyError::NotConfigured)?;
    let point = creds.point().ok_or_else(|| {
        // A configuration fault, not the caller's: say so in the logs, refuse like a missing key.
        tracing::warn!(message = "SendGrid verification key is not a P-256 public key.", tenant = req.tenant);
        VerifyError::NotConfigured
    })?;
    let signature = STANDARD.decode(signature.trim()).map_err(|_| VerifyError::BadSignature)?;
    // The timestamp is signed exactly as sent, followed by the raw body.
    let mut signed = Vec::with_capacity(timestamp.len() + req.body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(req.body);
    if verifies(point, &signed, &signature) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// `signature` over `message` by `point`: a DER signature (what SendGrid sends), or a raw
/// 64-byte `r ‖ s`.
pub fn verifies(point: &Point, message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point).verify(message, signature).is_ok()
        || (signature.len() == 64 && UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(message, signature).is_ok())
}

/// The key as the SendGrid console shows it (base64 of a DER SubjectPublicKeyInfo), or PEM.
pub fn public_key(configured: &str) -> Option<VerifyingKey> {
    let configured = configured.trim();
    if configured.starts_with("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(configured).ok();
    }
    let compact: String = configured.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(compact).ok()?;
    VerifyingKey::from_public_key_der(&der).ok()
}

/// The configured key as the point `ring` takes (`None` when it is not a P-256 public key).
pub fn point(configured: &str) -> Option<Point> {
    public_key(configured)?.to_encoded_point(false).as_bytes().try_into().ok()
}
