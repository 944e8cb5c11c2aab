//! Twilio Programmable Messaging status callbacks (SMS and WhatsApp): form-encoded
//! POSTs signed with `X-Twilio-Signature`
//! (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>).
//!
//! * `map`: callback parameters → draft, the status table and common error codes.

pub mod map;

use super::signature::{constant_time_eq, hmac_sha1};
use super::{NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError};
use base64::Engine;
use schemas::ProviderId;

pub const HEADER_SIGNATURE: &str = "x-twilio-signature";

pub struct Twilio;

impl Provider for Twilio {
    fn id(&self) -> ProviderId {
        ProviderId::Twilio
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials) -> Result<Verified, VerifyError> {
        let (Some(token), Some(public_url)) = (creds.twilio_auth_token.as_deref(), creds.twilio_public_url.as_deref()) else {
            return Err(VerifyError::NotConfigured);
        };
        let presented = req.header(HEADER_SIGNATURE).ok_or(VerifyError::MissingHeader(HEADER_SIGNATURE))?;
        let params = map::parse(req.body).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        let expected = signature(token, &signed_url(public_url, req.url), &params);
        if !constant_time_eq(expected.as_bytes(), presented.trim().as_bytes()) {
            return Err(VerifyError::BadSignature);
        }
        let sid = map::message_sid(&params).ok_or_else(|| VerifyError::Malformed("missing MessageSid".into()))?;
        Ok(Verified { partition_key: sid.to_string(), control: None })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        let params = map::parse(&raw.envelope.body)?;
        let (draft, recipient) = map::draft(&params)?;
        let mut out = Normalized::default();
        out.push(raw, opts, 0, &draft, [recipient.as_str()]);
        Ok(out)
    }
}

/// The URL Twilio signed: the configured public URL (the edge may sit behind a proxy),
/// with the received query string when the configured URL has none.
pub fn signed_url(public_url: &str, received: &str) -> String {
    match received.split_once('?') {
        Some((_, query)) if !public_url.contains('?') && !query.is_empty() => format!("{public_url}?{query}"),
        _ => public_url.to_string(),
    }
}

/// base64(HMAC-SHA1(auth token, url + every POST parameter as name+value, sorted by name)).
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * sorted.len());
    parts.push(url.as_bytes());
    for (k, v) in sorted {
        parts.push(k.as_bytes());
        parts.push(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(hmac_sha1(auth_token.as_bytes(), &parts))
}

#[cfg(test)]
mod tests;
