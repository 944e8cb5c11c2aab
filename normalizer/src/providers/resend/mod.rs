//! Resend webhooks, delivered through Svix: one JSON event per POST, signed in `svix-*` headers.
//!
//! * `svix`: the Svix signature check (HMAC-SHA256 over `id.timestamp.body`).
//! * `map`: the event → one draft, expanded to every `data.to` recipient.

#[cfg(any(test, feature = "samples"))]
pub mod samples;
pub mod map;
#[cfg(test)]
mod map_before;
pub mod svix;

use super::{NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError, VerifyContext};
use schemas::{ProviderId, Route};

pub struct Resend;

/// `[tenants.<tenant>.resend]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The endpoint's Svix signing secret, `whsec_...`.
    pub secret: String,
}

impl super::ProviderCredentials for Credentials {
    fn validate(&self) -> Result<(), String> {
        super::credentials::not_blank("secret", &self.secret)?;
        svix::secret_key(&self.secret).map(|_| ()).ok_or_else(|| "`secret` is not a `whsec_` base64 secret".to_string())
    }
}

impl Provider for Resend {
    fn id(&self) -> ProviderId {
        ProviderId::Resend
    }

    fn routes(&self) -> &'static [Route] {
        &[Route::Webhook]
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        // svix-id is the event's identity, so normalize needs it too.
        &[svix::HEADER_ID, svix::HEADER_TIMESTAMP, svix::HEADER_SIGNATURE]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials, _ctx: &VerifyContext) -> Result<Verified, VerifyError> {
        let svix_id = svix::verify(req, creds.resend.as_ref())?;
        // Events of one email share data.email_id: key by it so they stay in order.
        let partition_key = map::email_id_of(req.body).unwrap_or_else(|| svix_id.to_string());
        Ok(Verified { partition_key, control: None })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        let svix_id = raw.envelope.header(svix::HEADER_ID);
        let (draft, recipients) = map::draft(raw.envelope.body, svix_id, opts)?;
        let mut out = Normalized::default();
        out.push_owned(raw, opts, 0, draft, recipients.iter().map(String::as_str));
        Ok(out)
    }

    #[cfg(any(test, feature = "samples"))]
    fn demo_credentials(&self, ctx: &super::samples::Context, creds: &mut TenantCredentials) {
        creds.resend = Some(Credentials { secret: samples::demo_secret(ctx) });
    }

    #[cfg(any(test, feature = "samples"))]
    fn samples(&self, ctx: &super::samples::Context) -> Vec<super::samples::Sample> {
        samples::samples(ctx)
    }
}

#[cfg(test)]
mod tests;
