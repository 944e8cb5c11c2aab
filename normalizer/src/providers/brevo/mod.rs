//! Brevo (formerly Sendinblue) transactional email webhooks: one JSON event per POST
//! (<https://developers.brevo.com/docs/transactional-webhooks>). Brevo does not sign its
//! requests; a webhook is secured with HTTP basic auth in its URL or a bearer token (the
//! `auth` object of the create-webhook API), checked against the tenant's configuration.
//!
//! * `map`: one event → a draft for its `email` recipient, and the event table.
//!
//! This provider was added as the proof of "a provider is one folder and one line"
//! (`providers/README.md`): nothing outside this folder names it except the provider list.

pub mod map;
#[cfg(test)]
mod map_before;
#[cfg(any(test, feature = "samples"))]
pub mod samples;

use super::credentials::{not_blank, ProviderCredentials};
use super::signature::{check_basic_auth, constant_time_eq};
use super::{NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyContext, VerifyError};
use schemas::{ProviderId, Route};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const HEADER_AUTHORIZATION: &str = "authorization";

pub struct Brevo;

/// `[tenants.<tenant>.brevo]`: `user` and `password` (basic auth in the webhook URL), or
/// `token` (the webhook's bearer token), or both (either is accepted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl ProviderCredentials for Credentials {
    fn validate(&self) -> Result<(), String> {
        for (name, value) in [("user", &self.user), ("password", &self.password), ("token", &self.token)] {
            if let Some(v) = value {
                not_blank(name, v)?;
            }
        }
        if self.user.is_some() != self.password.is_some() {
            return Err("`user` and `password` go together".into());
        }
        if self.user.is_none() && self.token.is_none() {
            return Err("set `user` and `password` (basic auth in the webhook URL) or `token` (bearer)".into());
        }
        Ok(())
    }
}

/// `Authorization: Basic …` against `user`/`password`, or `Bearer …` against `token`.
fn check_auth(header: Option<&str>, creds: Option<&Credentials>) -> Result<(), VerifyError> {
    let header = header.ok_or(VerifyError::MissingHeader(HEADER_AUTHORIZATION))?.trim();
    let creds = creds.ok_or(VerifyError::NotConfigured)?;
    let (scheme, value) = header.split_once(' ').ok_or(VerifyError::BadCredentials)?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = creds.token.as_deref().ok_or(VerifyError::BadCredentials)?;
        return match constant_time_eq(value.trim().as_bytes(), token.as_bytes()) {
            true => Ok(()),
            false => Err(VerifyError::BadCredentials),
        };
    }
    match (creds.user.as_deref(), creds.password.as_deref()) {
        (Some(user), Some(password)) => check_basic_auth(header, user, password),
        _ => Err(VerifyError::BadCredentials),
    }
}

impl Provider for Brevo {
    fn id(&self) -> ProviderId {
        ProviderId::Brevo
    }

    fn routes(&self) -> &'static [Route] {
        &[Route::Webhook]
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials, _ctx: &VerifyContext) -> Result<Verified, VerifyError> {
        check_auth(req.header(HEADER_AUTHORIZATION), creds.brevo.as_ref())?;
        let event = map::parse(req.body).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        // Every event of one message shares its message-id: key by it so they land together.
        let key = map::message_id(&event).map(str::to_string).unwrap_or_else(|| hex::encode(Sha256::digest(req.body)));
        Ok(Verified { partition_key: key, control: None })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        let event = map::parse(raw.envelope.body)?;
        let (draft, recipient) = map::draft(&event, opts)?;
        let mut out = Normalized::default();
        out.push_owned(raw, opts, 0, draft, [recipient.as_str()]);
        Ok(out)
    }

    #[cfg(any(test, feature = "samples"))]
    fn demo_credentials(&self, ctx: &super::samples::Context, creds: &mut TenantCredentials) {
        creds.brevo = Some(Credentials { user: Some("brevo".into()), password: Some(samples::demo_password(ctx)), token: None });
    }

    #[cfg(any(test, feature = "samples"))]
    fn samples(&self, ctx: &super::samples::Context) -> Vec<super::samples::Sample> {
        samples::samples(ctx)
    }
}

#[cfg(test)]
mod tests;
