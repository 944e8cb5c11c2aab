//! Postmark webhooks (<https://postmarkapp.com/developer/webhooks/webhooks-overview>).
//! Postmark does not sign its requests; the webhook URL carries HTTP basic auth
//! credentials, checked against the tenant's configured user and password.
//!
//! * `map`: one webhook JSON record → draft, and the bounce type table.

pub mod map;

use super::signature::constant_time_eq;
use super::{NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError};
use base64::Engine;
use schemas::ProviderId;

pub const HEADER_AUTHORIZATION: &str = "authorization";

pub struct Postmark;

impl Provider for Postmark {
    fn id(&self) -> ProviderId {
        ProviderId::Postmark
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials) -> Result<Verified, VerifyError> {
        check_basic_auth(req.header(HEADER_AUTHORIZATION), creds)?;
        let record = map::parse(req.body).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        // Every record of one message shares MessageID: key by it so they land together.
        let key = map::message_id(&record).unwrap_or(req.tenant).to_string();
        Ok(Verified { partition_key: key, control: None })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        let record = map::parse(&raw.envelope.body)?;
        let (draft, recipient) = map::draft(&record, opts)?;
        let mut out = Normalized::default();
        out.push(raw, opts, 0, &draft, [recipient.as_str()]);
        Ok(out)
    }
}

/// `Authorization: Basic base64(user:password)` against the tenant's Postmark credentials.
pub fn check_basic_auth(header: Option<&str>, creds: &TenantCredentials) -> Result<(), VerifyError> {
    let (Some(user), Some(password)) = (creds.postmark_user.as_deref(), creds.postmark_password.as_deref()) else {
        return Err(VerifyError::NotConfigured);
    };
    let header = header.ok_or(VerifyError::MissingHeader(HEADER_AUTHORIZATION))?.trim();
    let (scheme, encoded) = header.split_once(' ').ok_or(VerifyError::BadCredentials)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(VerifyError::BadCredentials);
    }
    let presented = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| VerifyError::BadCredentials)?;
    let expected = format!("{user}:{password}");
    if constant_time_eq(&presented, expected.as_bytes()) {
        Ok(())
    } else {
        Err(VerifyError::BadCredentials)
    }
}

#[cfg(test)]
mod tests;
