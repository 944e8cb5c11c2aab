//! Twilio SendGrid Event Webhook: a JSON array of events per POST, signed with ECDSA.
//!
//! * `verify`: the Signed Event Webhook check (P-256 / SHA-256 over timestamp ‖ body).
//! * `map`: one event object → a draft for its `email` recipient.

pub mod map;
#[cfg(test)]
mod map_before;
#[cfg(any(test, feature = "samples"))]
pub mod samples;
pub mod verify;

use super::credentials::{not_blank, ProviderCredentials};
use super::{NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyContext, VerifyError};
use schemas::{ProviderId, Route};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub struct Sendgrid;

/// `[tenants.<tenant>.sendgrid]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The Event Webhook verification key as the console shows it (base64 DER), or PEM
    /// (ECDSA P-256 public key).
    pub public_key: String,
    /// `public_key` read once, at the first request (every request used to parse it).
    #[serde(skip)]
    point: std::sync::OnceLock<Option<verify::Point>>,
}

impl Credentials {
    pub fn new(public_key: impl Into<String>) -> Credentials {
        Credentials { public_key: public_key.into(), point: Default::default() }
    }

    /// The key as `verify` checks with it; `None` when it is not a P-256 public key.
    fn point(&self) -> Option<&verify::Point> {
        self.point.get_or_init(|| verify::point(&self.public_key)).as_ref()
    }
}

/// Equal when configured alike (whether the key was read yet does not matter).
impl PartialEq for Credentials {
    fn eq(&self, other: &Credentials) -> bool {
        self.public_key == other.public_key
    }
}

impl ProviderCredentials for Credentials {
    fn validate(&self) -> Result<(), String> {
        not_blank("public_key", &self.public_key)?;
        verify::point(&self.public_key).map(|_| ()).ok_or_else(|| "`public_key` is not an ECDSA P-256 public key (base64 DER or PEM)".to_string())
    }
}

impl Provider for Sendgrid {
    fn id(&self) -> ProviderId {
        ProviderId::Sendgrid
    }

    fn routes(&self) -> &'static [Route] {
        &[Route::Webhook]
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[verify::HEADER_SIGNATURE, verify::HEADER_TIMESTAMP]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials, _ctx: &VerifyContext) -> Result<Verified, VerifyError> {
        verify::verify(req, creds.sendgrid.as_ref())?;
        // All events of one message share the stripped sg_message_id: key by the first one.
        let partition_key = map::first_message_id(req.body).unwrap_or_else(|| hex::encode(Sha256::digest(req.body)));
        Ok(Verified { partition_key, control: None })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        let mut out = Normalized::default();
        for (i, draft) in map::drafts(raw.envelope.body, opts)?.into_iter().enumerate() {
            match draft {
                Ok((draft, recipient)) => out.push_owned(raw, opts, i, draft, [recipient.as_str()]),
                Err(error) => out.reject(i, error),
            }
        }
        Ok(out)
    }

    #[cfg(any(test, feature = "samples"))]
    fn demo_credentials(&self, ctx: &super::samples::Context, creds: &mut TenantCredentials) {
        creds.sendgrid = Some(Credentials::new(samples::demo_public_key(ctx)));
    }

    #[cfg(any(test, feature = "samples"))]
    fn samples(&self, ctx: &super::samples::Context) -> Vec<super::samples::Sample> {
        samples::samples(ctx)
    }
}

#[cfg(test)]
mod tests;
