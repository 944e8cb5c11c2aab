//! Apns: not implemented yet (placeholder so the registry compiles).

use super::{NormalizeError, NormalizeOptions, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError};
use schemas::{Event, ProviderId};

pub struct Apns;

impl Provider for Apns {
    fn id(&self) -> ProviderId {
        ProviderId::Apns
    }
    fn kept_headers(&self) -> &'static [&'static str] {
        &[]
    }
    fn verify(&self, _req: &RawRequest<'_>, _creds: &TenantCredentials) -> Result<Verified, VerifyError> {
        Err(VerifyError::NotConfigured)
    }
    fn normalize(&self, _raw: &RawRecord<'_>, _opts: &NormalizeOptions) -> Result<Vec<Event>, NormalizeError> {
        Err(NormalizeError::Unsupported("apns".into()))
    }
}
