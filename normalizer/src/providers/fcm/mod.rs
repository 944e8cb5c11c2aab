//! Firebase Cloud Messaging (HTTP v1). FCM has no delivery webhooks: the sender posts
//! what `projects.messages.send` answered to `/v1/push-results/{tenant}/fcm`
//! (format and checks in [`super::sender::push_results`]).
//!
//! * `map`: an FCM v1 response body → outcome.

pub mod map;

use super::sender::push_results;
use super::{NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError};
use schemas::ProviderId;

pub struct Fcm;

impl Provider for Fcm {
    fn id(&self) -> ProviderId {
        ProviderId::Fcm
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials) -> Result<Verified, VerifyError> {
        push_results::verify(req, creds)
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        push_results::normalize(raw, opts, map::classify)
    }
}

#[cfg(test)]
mod tests;
