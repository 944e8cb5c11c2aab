//! Apple Push Notification service. APNs has no delivery webhooks: the sender posts
//! what APNs answered to `/v1/push-results/{tenant}/apns`
//! (format and checks in [`super::sender::push_results`]).
//!
//! * `map`: an APNs status and response body → outcome.

pub mod map;

use super::sender::push_results;
use super::{NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyContext, VerifyError};
use schemas::{ProviderId, Route};

/// The tenant's `api_key` authenticates its push results: `[tenants.<tenant>.apns]` takes no keys.
pub type Credentials = super::credentials::NoCredentials;

pub struct Apns;

impl Provider for Apns {
    fn id(&self) -> ProviderId {
        ProviderId::Apns
    }

    fn routes(&self) -> &'static [Route] {
        &[Route::PushResults]
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials, ctx: &VerifyContext) -> Result<Verified, VerifyError> {
        push_results::verify(req, creds, ctx)
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        push_results::normalize(raw, opts, map::classify)
    }

    #[cfg(any(test, feature = "samples"))]
    fn demo_credentials(&self, _ctx: &super::samples::Context, _creds: &mut TenantCredentials) {}

    #[cfg(any(test, feature = "samples"))]
    fn samples(&self, ctx: &super::samples::Context) -> Vec<super::samples::Sample> {
        super::samples::api_key_samples(ctx, self.id(), |_| Route::PushResults)
    }
}

#[cfg(test)]
mod tests;
