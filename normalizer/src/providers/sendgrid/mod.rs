//! Twilio SendGrid Event Webhook: a JSON array of events per POST, signed with ECDSA.
//!
//! * `verify`: the Signed Event Webhook check (P-256 / SHA-256 over timestamp ‖ body).
//! * `map`: one event object → a draft for its `email` recipient.

pub mod map;
pub mod verify;

use super::{NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError};
use schemas::ProviderId;
use sha2::{Digest, Sha256};

pub struct Sendgrid;

impl Provider for Sendgrid {
    fn id(&self) -> ProviderId {
        ProviderId::Sendgrid
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[verify::HEADER_SIGNATURE, verify::HEADER_TIMESTAMP]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials) -> Result<Verified, VerifyError> {
        verify::verify(req, creds)?;
        // All events of one message share the stripped sg_message_id: key by the first one.
        let partition_key = map::first_message_id(req.body).unwrap_or_else(|| hex::encode(Sha256::digest(req.body)));
        Ok(Verified { partition_key, control: None })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        let mut out = Normalized::default();
        for (i, draft) in map::drafts(&raw.envelope.body, opts)?.into_iter().enumerate() {
            match draft {
                Ok((draft, recipient)) => out.push(raw, opts, i, &draft, [recipient.as_str()]),
                Err(error) => out.reject(i, error),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
