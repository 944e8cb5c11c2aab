//! The Signed Event Webhook: SendGrid signs `timestamp ‖ raw body` with ECDSA P-256 / SHA-256
//! and sends the DER signature in base64
//! (<https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features>).

use crate::providers::signature::{check_timestamp, DEFAULT_TOLERANCE_SECS};
use crate::providers::{RawRequest, VerifyError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

pub const HEADER_SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
pub const HEADER_TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";

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
    let configured = creds.map(|c| c.public_key.as_str()).ok_or(VerifyError::NotConfigured)?;
    let key = public_key(configured).ok_or_else(|| {
        // A configuration fault, not the caller's: say so in the logs, refuse like a missing key.
        tracing::warn!(message = "SendGrid verification key is not a P-256 public key.", tenant = req.tenant);
        VerifyError::NotConfigured
    })?;
    let signature = decode_signature(signature).ok_or(VerifyError::BadSignature)?;
    // The timestamp is signed exactly as sent, followed by the raw body.
    let mut signed = Vec::with_capacity(timestamp.len() + req.body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(req.body);
    key.verify(&signed, &signature).map_err(|_| VerifyError::BadSignature)
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

/// A base64 DER signature (what SendGrid sends); a raw 64-byte r‖s is accepted too.
fn decode_signature(header: &str) -> Option<Signature> {
    let bytes = STANDARD.decode(header.trim()).ok()?;
    Signature::from_der(&bytes).or_else(|_| Signature::from_slice(&bytes)).ok()
}
