//! Postmark webhooks (<https://postmarkapp.com/developer/webhooks/webhooks-overview>).
//! Postmark does not sign its requests; the webhook URL carries HTTP basic auth
//! credentials, checked against the tenant's configured user and password.
//!
//! * `map`: one webhook JSON record → draft, and the bounce type table.

#[cfg(any(test, feature = "samples"))]
pub mod samples;
pub mod map;
#[cfg(test)]
mod map_before;

use super::{NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError, VerifyContext};
use schemas::{ProviderId, Route};

pub const HEADER_AUTHORIZATION: &str = "authorization";

pub struct Postmark;

/// `[tenants.<tenant>.postmark]`: the basic-auth user and password in the webhook URL.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl super::ProviderCredentials for Credentials {
    fn validate(&self) -> Result<(), String> {
        super::credentials::not_blank("user", &self.user)?;
        super::credentials::not_blank("password", &self.password)
    }
}

impl Provider for Postmark {
    fn id(&self) -> ProviderId {
        ProviderId::Postmark
    }

    fn routes(&self) -> &'static [Route] {
        &[Route::Webhook]
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials, _ctx: &VerifyContext) -> Result<Verified, VerifyError> {
        check_basic_auth(req.header(HEADER_AUTHORIZATION), creds.postmark.as_ref())?;
        let record = map::parse(req.body).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        // Every record of one message shares MessageID: key by it so they land together.
        let key = map::message_id(&record).unwrap_or(req.tenant).to_string();
        Ok(Verified { partition_key: key, control: None })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        let record = map::parse(raw.envelope.body)?;
        let (draft, recipient) = map::draft(&record, opts)?;
        let mut out = Normalized::default();
        out.push_owned(raw, opts, 0, draft, [recipient.as_str()]);
        Ok(out)
    }

    #[cfg(any(test, feature = "samples"))]
    fn demo_credentials(&self, ctx: &super::samples::Context, creds: &mut TenantCredentials) {
        creds.postmark = Some(Credentials { user: "postmark".into(), password: samples::demo_password(ctx) });
    }

    #[cfg(any(test, feature = "samples"))]
    fn samples(&self, ctx: &super::samples::Context) -> Vec<super::samples::Sample> {
        samples::samples(ctx)
    }
}

/// `Authorization: Basic base64(user:password)` against the tenant's Postmark credentials.
pub fn check_basic_auth(header: Option<&str>, creds: Option<&Credentials>) -> Result<(), VerifyError> {
    let header = header.ok_or(VerifyError::MissingHeader(HEADER_AUTHORIZATION))?;
    let creds = creds.ok_or(VerifyError::NotConfigured)?;
    super::signature::check_basic_auth(header, &creds.user, &creds.password)
}

#[cfg(test)]
mod tests;
