//! Apple Push Notification service. APNs has no delivery webhooks: the sender posts
//! what APNs answered to `/v1/push-results/{tenant}/apns`
//! (format and checks in [`super::sender::push_results`]).
//!
//! * `map`: an APNs status and response body → outcome.

pub mod map;

use super::sender::push_results;
use super::{NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError};
use schemas::ProviderId;

pub struct Apns;

impl Provider for Apns {
    fn id(&self) -> ProviderId {
        ProviderId::Apns
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
