//! Mailgun webhooks: one JSON event per POST, `{"signature": {..}, "event-data": {..}}`.
//!
//! * `verify`: the HMAC in the body's `signature` object (it covers timestamp and token only).
//! * `map`: `event-data` → a draft for its `recipient`.

pub mod map;
#[cfg(test)]
mod map_before;
#[cfg(any(test, feature = "samples"))]
pub mod samples;
pub mod verify;

use super::credentials::{not_blank, ProviderCredentials};
use super::{NormalizeError, Normalized, NormalizeOptions, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyContext, VerifyError};
use schemas::{ProviderId, Route};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub struct Mailgun;

/// `[tenants.<tenant>.mailgun]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The HTTP webhook signing key.
    pub signing_key: String,
}

impl ProviderCredentials for Credentials {
    fn validate(&self) -> Result<(), String> {
        not_blank("signing_key", &self.signing_key)
    }
}

impl Provider for Mailgun {
    fn id(&self) -> ProviderId {
        ProviderId::Mailgun
    }

    fn routes(&self) -> &'static [Route] {
        &[Route::Webhook]
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        // The signature travels in the body.
        &[]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials, ctx: &VerifyContext) -> Result<Verified, VerifyError> {
        verify::verify(req, creds.mailgun.as_ref(), ctx)?;
        // Events of one message share its Message-Id: key by it so they stay in order.
        let partition_key = map::message_id_of(req.body).unwrap_or_else(|| hex::encode(Sha256::digest(req.body)));
        Ok(Verified { partition_key, control: None })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        let mut out = Normalized::default();
        if let Some((draft, recipients)) = map::draft(raw.envelope.body, opts)? {
            out.push_owned(raw, opts, 0, draft, recipients.iter().map(String::as_str));
        }
        Ok(out)
    }

    #[cfg(any(test, feature = "samples"))]
    fn demo_credentials(&self, ctx: &super::samples::Context, creds: &mut TenantCredentials) {
        creds.mailgun = Some(Credentials { signing_key: samples::demo_signing_key(ctx) });
    }

    #[cfg(any(test, feature = "samples"))]
    fn samples(&self, ctx: &super::samples::Context) -> Vec<super::samples::Sample> {
        samples::samples(ctx)
    }
}

#[cfg(test)]
mod tests;
