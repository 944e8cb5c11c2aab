//! Twilio Programmable Messaging status callbacks (SMS and WhatsApp): form-encoded
//! POSTs signed with `X-Twilio-Signature`
//! (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>).
//!
//! * `map`: callback parameters → draft, the status table and common error codes.

#[cfg(any(test, feature = "samples"))]
pub mod samples;
pub mod map;

use super::signature::{constant_time_eq, hmac_sha1};
use super::{NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError, VerifyContext};
use base64::Engine;
use schemas::{ProviderId, Route};

pub const HEADER_SIGNATURE: &str = "x-twilio-signature";

pub struct Twilio;

/// `[tenants.<tenant>.twilio]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The account's auth token (the signing key).
    pub auth_token: String,
    /// The public URL Twilio calls (the edge may sit behind a proxy): what Twilio signs.
    pub public_url: String,
}

impl super::ProviderCredentials for Credentials {
    fn validate(&self) -> Result<(), String> {
        super::credentials::not_blank("auth_token", &self.auth_token)?;
        super::credentials::not_blank("public_url", &self.public_url)
    }
}

impl Provider for Twilio {
    fn id(&self) -> ProviderId {
        ProviderId::Twilio
    }

    fn routes(&self) -> &'static [Route] {
        &[Route::Webhook]
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials, ctx: &VerifyContext) -> Result<Verified, VerifyError> {
        let presented = req.header(HEADER_SIGNATURE).ok_or(VerifyError::MissingHeader(HEADER_SIGNATURE))?;
        // The signature covers every parameter, so they must be parsed; count them first.
        let max_fields = ctx.limits.max_form_fields;
        let fields = req.body.split(|&b| b == b'&').filter(|f| !f.is_empty()).count();
        if fields > max_fields {
            return Err(VerifyError::Malformed(format!("{fields} form fields, over the limit of {max_fields} (max_form_fields)")));
        }
        let params = map::parse(req.body).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        // Credentials after the checks any tenant would fail alike (no tenant enumeration).
        let creds = creds.twilio.as_ref().ok_or(VerifyError::NotConfigured)?;
        let expected = signature(&creds.auth_token, &signed_url(&creds.public_url, req.url), &params);
        if !constant_time_eq(expected.as_bytes(), presented.trim().as_bytes()) {
            return Err(VerifyError::BadSignature);
        }
        let sid = map::message_sid(&params).ok_or_else(|| VerifyError::Malformed("missing MessageSid".into()))?;
        Ok(Verified { partition_key: sid.to_string(), control: None })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        let params = map::parse(raw.envelope.body)?;
        let (draft, recipient) = map::draft(&params)?;
        let mut out = Normalized::default();
        out.push_owned(raw, opts, 0, draft, [recipient.as_str()]);
        Ok(out)
    }

    #[cfg(any(test, feature = "samples"))]
    fn demo_credentials(&self, ctx: &super::samples::Context, creds: &mut TenantCredentials) {
        creds.twilio = Some(Credentials { auth_token: samples::demo_auth_token(ctx), public_url: samples::public_url(ctx) });
    }

    #[cfg(any(test, feature = "samples"))]
    fn samples(&self, ctx: &super::samples::Context) -> Vec<super::samples::Sample> {
        samples::samples(ctx)
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
