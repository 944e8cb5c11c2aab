//! What verification keeps between requests. The service (ingest) owns one [`VerifyContext`]
//! and passes it to every `verify`: nothing is process-wide, so tests build their own
//! (with a test certificate source) beside a running service's.

use super::edge_limits::EdgeLimits;
use super::ses::signature::{CertificateCache, CertificateSource, Fetch};
use super::signature::ReplayGuard;
use std::sync::{Arc, Mutex, PoisonError};

pub struct VerifyContext {
    /// Bounds on what one request may carry (ingest's `[limits]`).
    pub limits: EdgeLimits,
    /// Signing certificates by URL (SNS), fetched through the source the service chose.
    pub certificates: Arc<CertificateCache>,
    /// Tokens of accepted requests, for schemes whose signature does not cover the whole body
    /// (Mailgun): a token is accepted once within its window.
    replay: Arc<Mutex<ReplayGuard>>,
    /// Whether a verification through this context may fetch a missing certificate (block).
    fetch: Fetch,
}

impl VerifyContext {
    pub fn new(limits: EdgeLimits, certificates: Arc<dyn CertificateSource>) -> Self {
        VerifyContext {
            limits,
            certificates: Arc::new(CertificateCache::new(certificates)),
            replay: Arc::new(Mutex::new(ReplayGuard::new())),
            fetch: Fetch::Allowed,
        }
    }

    /// The same caches, but a verification through the returned context never blocks: a
    /// certificate it would have to fetch is answered [`super::VerifyError::CertificateNotCached`],
    /// and nothing else has been recorded by then (the certificate check is every provider's
    /// last step; only SNS has one). ingest verifies through it on its async workers (~30 µs for
    /// an SNS signature) and moves only those rare misses to a blocking thread, instead of
    /// handing every request to one (BENCHMARKS.md §7).
    pub fn cached_only(&self) -> VerifyContext {
        VerifyContext { limits: self.limits.clone(), certificates: self.certificates.clone(), replay: self.replay.clone(), fetch: Fetch::Never }
    }

    /// Whether verifications through this context may fetch certificates.
    pub fn fetch(&self) -> Fetch {
        self.fetch
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
