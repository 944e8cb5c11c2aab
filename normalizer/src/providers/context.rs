//! What verification keeps between requests. The service (ingest) owns one [`VerifyContext`]
//! and passes it to every `verify`: nothing is process-wide, so tests build their own
//! (with a test certificate source) beside a running service's.

use super::edge_limits::EdgeLimits;
use super::ses::signature::{CertificateCache, CertificateSource};
use super::signature::ReplayGuard;
use std::sync::{Arc, Mutex, PoisonError};

pub struct VerifyContext {
    /// Bounds on what one request may carry (ingest's `[limits]`).
    pub limits: EdgeLimits,
    /// Signing certificates by URL (SNS), fetched through the source the service chose.
    pub certificates: CertificateCache,
    /// Tokens of accepted requests, for schemes whose signature does not cover the whole body
    /// (Mailgun): a token is accepted once within its window.
    replay: Mutex<ReplayGuard>,
}

impl VerifyContext {
    pub fn new(limits: EdgeLimits, certificates: Arc<dyn CertificateSource>) -> Self {
        VerifyContext { limits, certificates: CertificateCache::new(certificates), replay: Mutex::new(ReplayGuard::new()) }
    }

    /// Records `token` of `scope` as used until `expires_secs`; false when it was already used
    /// within its window. At most `limits.max_remembered_tokens` are kept (oldest forgotten first).
    pub fn first_use(&self, scope: &str, token: &str, expires_secs: i64, now_secs: i64) -> bool {
        let capacity = self.limits.max_remembered_tokens;
        self.replay.lock().unwrap_or_else(PoisonError::into_inner).first_use(scope, token, expires_secs, now_secs, capacity)
    }
}

impl Default for VerifyContext {
    /// Default limits, and a certificate source that fetches nothing: SNS signatures cannot be
    /// checked until a real source is given (requests that need one are answered 503).
    fn default() -> Self {
        VerifyContext::new(EdgeLimits::default(), Arc::new(super::ses::signature::Unconfigured))
    }
}
