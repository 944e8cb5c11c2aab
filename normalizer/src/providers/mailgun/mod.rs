//! Mailgun webhooks: one JSON event per POST, `{"signature": {..}, "event-data": {..}}`.
//!
//! * `verify`: the HMAC in the body's `signature` object (it covers timestamp and token only).
//! * `map`: `event-data` → a draft for its `recipient`.

pub mod map;
pub mod verify;

use super::{NormalizeError, Normalized, NormalizeOptions, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError};
use schemas::ProviderId;
use sha2::{Digest, Sha256};

pub struct Mailgun;

impl Provider for Mailgun {
    fn id(&self) -> ProviderId {
        ProviderId::Mailgun
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        // The signature travels in the body.
        &[]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials) -> Result<Verified, VerifyError> {
        verify::verify(req, creds)?;
        // Events of one message share its Message-Id: key by it so they stay in order.
        let partition_key = map::message_id_of(req.body).unwrap_or_else(|| hex::encode(Sha256::digest(req.body)));
        Ok(Verified { partition_key, control: None })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        let mut out = Normalized::default();
        if let Some((draft, recipients)) = map::draft(&raw.envelope.body, opts)? {
            out.push(raw, opts, 0, &draft, recipients.iter().map(String::as_str));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
