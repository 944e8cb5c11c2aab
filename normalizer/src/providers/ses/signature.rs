//! SNS message signatures, as in "Verifying the signatures of Amazon SNS messages"
//! (<https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html>):
//!
//! * the string to sign, rebuilt from the envelope's fields;
//! * the signing-certificate URL, accepted only on `https://sns.<region>.amazonaws.com[.cn]/…pem`;
//! * the certificate's RSA key, fetched once through a pluggable [`CertificateSource`] and kept
//!   in a [`CertificateCache`] the service owns (in its `VerifyContext`);
//! * SHA1withRSA (`SignatureVersion` "1") or SHA256withRSA ("2"), PKCS#1 v1.5.
//!
//! Everything here is synchronous because [`crate::providers::Provider::verify`] is: a cache miss
//! blocks on the source. The running service gives its cache a real HTTPS fetcher at startup.

use super::sns::{Envelope, MessageKind};
use crate::providers::VerifyError;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, VerificationAlgorithm, RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256};
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;

/// Where signing certificates come from.
pub trait CertificateSource: Send + Sync {
    /// The PEM certificate served at `url` (already checked by [`check_certificate_url`]).
    fn fetch(&self, url: &str) -> Result<Vec<u8>, String>;
}

/// Any `Fn(&str) -> Result<Vec<u8>, String>`, e.g. a blocking HTTPS GET, is a source.
impl<F> CertificateSource for F
where
    F: Fn(&str) -> Result<Vec<u8>, String> + Send + Sync,
{
    fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        self(url)
    }
}

/// A source that fetches nothing (the default context's): every fetch fails, so verification
/// answers `CertificateUnavailable` (503) rather than accepting unsigned requests.
pub struct Unconfigured;

impl CertificateSource for Unconfigured {
    fn fetch(&self, _url: &str) -> Result<Vec<u8>, String> {
        Err("no certificate source configured".into())
    }
}

/// Keys kept at most; SNS uses a handful of certificates, so reaching this means churn
/// and the cache simply starts over.
const MAX_CACHED_KEYS: usize = 256;

/// The public key of one signing certificate and its validity window (ms since the epoch).
/// The key is kept as its PKCS#1 `RSAPublicKey` DER, the form `ring` verifies with (an `Arc`:
/// taking it from the cache per request is a reference count, not a copy of the modulus).
#[derive(Clone)]
struct SigningKey {
    key: Arc<[u8]>,
    not_before_ms: i64,
    not_after_ms: i64,
}

/// How long a failed fetch of one URL is remembered: requests naming it meanwhile are answered
/// at once (503, retry later) instead of fetching again.
pub const FAILURE_TTL: Duration = Duration::from_secs(60);

/// Fetches in flight at most; a miss beyond that is answered 503 at once (SNS retries), so
/// forged URLs cannot tie up every blocking thread.
pub const MAX_CONCURRENT_FETCHES: usize = 4;

/// Signing keys by certificate URL, recent failures, and the source that fills misses.
pub struct CertificateCache {
    source: RwLock<Arc<dyn CertificateSource>>,
    keys: RwLock<HashMap<String, SigningKey>>,
    failures: Mutex<HashMap<String, Instant>>,
    fetching: AtomicUsize,
}

impl CertificateCache {
    pub fn new(source: Arc<dyn CertificateSource>) -> Self {
        CertificateCache {
            source: RwLock::new(source),
            keys: RwLock::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            fetching: AtomicUsize::new(0),
        }
    }

    /// Replaces the source and forgets every key fetched through the old one.
    pub fn set_source(&self, source: Arc<dyn CertificateSource>) {
        // A poisoned lock only means a panic elsewhere mid-write of a plain value: keep going.
        *self.source.write().unwrap_or_else(PoisonError::into_inner) = source;
        self.keys.write().unwrap_or_else(PoisonError::into_inner).clear();
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Checks the signature of `env` at time `now_ms`, fetching its certificate if needed.
    pub fn verify(&self, env: &Envelope, now_ms: i64) -> Result<(), VerifyError> {
        self.verify_with(env, now_ms, Fetch::Allowed)
    }

    /// Checks the signature of `env` at time `now_ms`; with [`Fetch::Never`], a certificate
    /// not in the cache is answered [`VerifyError::CertificateNotCached`] instead of fetched,
    /// so the check never blocks (ingest verifies inline on its async workers that way and
    /// moves only a miss to a blocking thread).
    pub fn verify_with(&self, env: &Envelope, now_ms: i64, fetch: Fetch) -> Result<(), VerifyError> {
        let version = env.signature_version.as_deref().ok_or_else(|| missing("SignatureVersion"))?;
        let signature = env.signature.as_deref().ok_or_else(|| missing("Signature"))?;
        let url = env.signing_cert_url.as_deref().ok_or_else(|| missing("SigningCertURL"))?;
        let digest = match version {
            "1" => Digest::Sha1,
            "2" => Digest::Sha256,
            other => return Err(VerifyError::Malformed(format!("unsupported SignatureVersion `{other}`"))),
        };
        check_certificate_url(url)?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| VerifyError::BadSignature)?;
        let text = string_to_sign(env)?;

        let signing = self.key(url, fetch)?;
        if now_ms < signing.not_before_ms || now_ms > signing.not_after_ms {
            return Err(VerifyError::CertificateNotAllowed("certificate outside its validity window".into()));
        }
        // RSASSA-PKCS1-v1_5 with `ring` (constant-time, assembly big-number arithmetic): the
        // whole check is ~6.8x faster than the pure-Rust `rsa` crate's RSA step alone, which
        // this used before (BENCHMARKS.md §7).
        let algorithm: &'static dyn VerificationAlgorithm = match digest {
            Digest::Sha1 => &RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            Digest::Sha256 => &RSA_PKCS1_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(algorithm, &*signing.key).verify(text.as_bytes(), &signature).map_err(|_| VerifyError::BadSignature)
    }

    /// The key for `url`, from the cache or fetched and parsed once.
    fn key(&self, url: &str, fetch: Fetch) -> Result<SigningKey, VerifyError> {
        if let Some(k) = self.keys.read().unwrap_or_else(PoisonError::into_inner).get(url) {
            return Ok(k.clone());
        }
        if fetch == Fetch::Never {
            return Err(VerifyError::CertificateNotCached);
        }
        if let Some(at) = self.failures.lock().unwrap_or_else(PoisonError::into_inner).get(url) {
            if at.elapsed() < FAILURE_TTL {
                return Err(VerifyError::CertificateUnavailable("a recent fetch of this certificate failed".into()));
            }
        }
        if self.fetching.fetch_add(1, Ordering::SeqCst) >= MAX_CONCURRENT_FETCHES {
            self.fetching.fetch_sub(1, Ordering::SeqCst);
            return Err(VerifyError::CertificateUnavailable("too many certificate fetches in flight".into()));
        }
        // Clone the Arc so a slow fetch does not hold the lock.
        let source = self.source.read().unwrap_or_else(PoisonError::into_inner).clone();
        let fetched = source.fetch(url).map_err(VerifyError::CertificateUnavailable);
        self.fetching.fetch_sub(1, Ordering::SeqCst);
        let signing = match fetched.and_then(|pem| parse_certificate(&pem)) {
            Ok(k) => k,
            Err(e) => {
                let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
                if failures.len() >= MAX_CACHED_KEYS {
                    failures.retain(|_, at| at.elapsed() < FAILURE_TTL);
                    if failures.len() >= MAX_CACHED_KEYS {
                        failures.clear();
                    }
                }
                failures.insert(url.to_string(), Instant::now());
                return Err(e);
            }
        };
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if keys.len() >= MAX_CACHED_KEYS {
            keys.clear();
        }
        keys.insert(url.to_string(), signing.clone());
        Ok(signing)
    }
}

/// Whether a verification may fetch a certificate the cache lacks (a blocking HTTPS GET).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetch {
    Allowed,
    Never,
}

#[derive(Clone, Copy)]
enum Digest {
    Sha1,
    Sha256,
}

fn missing(field: &str) -> VerifyError {
    VerifyError::Malformed(format!("missing `{field}`"))
}

/// Accepts only `https://sns.<region>.amazonaws.com/SimpleNotificationService-<32 hex>.pem`
/// (or `.amazonaws.com.cn`), the only form SNS uses, so a forged message can point us neither
/// at a certificate of its own nor at any other object on the host.
pub fn check_certificate_url(url: &str) -> Result<(), VerifyError> {
    let refuse = |why: &str| Err(VerifyError::CertificateNotAllowed(format!("{why}: {url}")));
    let Some(rest) = url.strip_prefix("https://") else { return refuse("not https") };
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if !is_sns_host(host) {
        return refuse("not an Amazon SNS host");
    }
    let name = path.strip_prefix("/SimpleNotificationService-").and_then(|p| p.strip_suffix(".pem"));
    if !name.is_some_and(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit())) {
        return refuse("not an SNS certificate path (/SimpleNotificationService-<32 hex>.pem)");
    }
    Ok(())
}

/// `sns.` + region (`us-east-1`, `us-gov-west-1`, `cn-north-1`…) + `.amazonaws.com` or `.amazonaws.com.cn`.
/// Anything else in the authority (user info, port, upper case) is refused.
fn is_sns_host(host: &str) -> bool {
    let Some(rest) = host.strip_prefix("sns.") else { return false };
    let Some(region) = rest.strip_suffix(".amazonaws.com").or_else(|| rest.strip_suffix(".amazonaws.com.cn")) else {
        return false;
    };
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts.first().is_some_and(|p| p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// The documented string to sign: selected fields as `Key\nvalue\n`, in byte order of the keys.
pub fn string_to_sign(env: &Envelope) -> Result<String, VerifyError> {
    let mut fields: Vec<(&str, &str)> = vec![("Message", &env.message), ("MessageId", &env.message_id)];
    match env.kind {
        MessageKind::Notification => {
            if let Some(subject) = &env.subject {
                fields.push(("Subject", subject));
            }
            fields.push(("Timestamp", &env.timestamp));
        }
        MessageKind::SubscriptionConfirmation | MessageKind::UnsubscribeConfirmation => {
            fields.push(("SubscribeURL", env.subscribe_url.as_deref().ok_or_else(|| missing("SubscribeURL"))?));
            fields.push(("Timestamp", &env.timestamp));
            fields.push(("Token", env.token.as_deref().ok_or_else(|| missing("Token"))?));
        }
    }
    fields.push(("TopicArn", &env.topic_arn));
    fields.push(("Type", &env.kind_name));
    Ok(fields.iter().map(|(k, v)| format!("{k}\n{v}\n")).collect())
}

/// The RSA key and validity window of a PEM certificate.
fn parse_certificate(pem: &[u8]) -> Result<SigningKey, VerifyError> {
    let unreadable = |e: String| VerifyError::CertificateUnavailable(format!("unreadable certificate: {e}"));
    let cert = Certificate::from_pem(pem).map_err(|e| unreadable(e.to_string()))?;
    let tbs = &cert.tbs_certificate;
    let spki = tbs.subject_public_key_info.to_der().map_err(|e| unreadable(e.to_string()))?;
    // Checked to be an RSA key once, here; verification then uses its PKCS#1 form.
    RsaPublicKey::from_public_key_der(&spki).map_err(|e| unreadable(format!("not an RSA key: {e}")))?;
    let key: Arc<[u8]> = tbs.subject_public_key_info.subject_public_key.raw_bytes().into();
    let ms = |t: &x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_millis()).unwrap_or(i64::MAX);
    Ok(SigningKey { key, not_before_ms: ms(&tbs.validity.not_before), not_after_ms: ms(&tbs.validity.not_after) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_urls() {
        for ok in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f14264b8bc266f8934e6db08d875a5f7.pem",
            "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789ABCDEF.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-f14264b8bc266f8934e6db08d875a5f7.pem",
        ] {
            assert_eq!(check_certificate_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://evil.example.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example.com/x.pem",
            "https://sns.us-east-1.amazonaws.com@evil.example.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://sns.evil.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com/",
            "https://sns.us-east-1.amazonaws.com/x.pem?y=.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com/any/other/object.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f14264b8bc266f8934e6db08d875a5f7.pem?x",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f14264b8bc266f8934e6db08d875a5f.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f14264b8bc266f8934e6db08d875a5f7z.pem",
            "https://sns.us-east-1.amazonaws.com/x/../SimpleNotificationService-f14264b8bc266f8934e6db08d875a5f7.pem",
            "https://SNS.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com",
            "",
        ] {
            assert!(matches!(check_certificate_url(bad), Err(VerifyError::CertificateNotAllowed(_))), "{bad}");
        }
    }

    struct Failing(std::sync::atomic::AtomicUsize);

    impl CertificateSource for Failing {
        fn fetch(&self, _url: &str) -> Result<Vec<u8>, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err("connection refused".into())
        }
    }

    const URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f14264b8bc266f8934e6db08d875a5f7.pem";

    /// A failed fetch is remembered: the next requests naming the URL do not fetch again.
    #[test]
    fn fetch_failures_are_cached() {
        let source = Arc::new(Failing(AtomicUsize::new(0)));
        let cache = CertificateCache::new(source.clone());
        for _ in 0..5 {
            assert!(matches!(cache.key(URL, Fetch::Allowed), Err(VerifyError::CertificateUnavailable(_))));
        }
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
    }

    /// Fetches beyond MAX_CONCURRENT_FETCHES are refused at once instead of blocking a thread each.
    #[test]
    fn concurrent_fetches_are_bounded() {
        struct Slow(std::sync::Barrier, AtomicUsize);
        impl CertificateSource for Slow {
            fn fetch(&self, _url: &str) -> Result<Vec<u8>, String> {
                self.1.fetch_add(1, Ordering::SeqCst);
                self.0.wait();
                Err("slow".into())
            }
        }
        let source = Arc::new(Slow(std::sync::Barrier::new(MAX_CONCURRENT_FETCHES + 1), AtomicUsize::new(0)));
        let cache = Arc::new(CertificateCache::new(source.clone()));
        let handles: Vec<_> = (0..MAX_CONCURRENT_FETCHES)
            .map(|i| {
                let c = cache.clone();
                std::thread::spawn(move || c.key(&format!("{}{i:02}.pem", &URL[..URL.len() - 6]), Fetch::Allowed))
            })
            .collect();
        while source.1.load(Ordering::SeqCst) < MAX_CONCURRENT_FETCHES {
            std::thread::yield_now();
        }
        let refused = cache.key(URL, Fetch::Allowed).err().expect("refused");
        assert!(matches!(&refused, VerifyError::CertificateUnavailable(m) if m.contains("in flight")), "{refused:?}");
        source.0.wait();
        for h in handles {
            assert!(h.join().unwrap().is_err());
        }
        assert_eq!(source.1.load(Ordering::SeqCst), MAX_CONCURRENT_FETCHES);
    }

    fn envelope(json: &str) -> Envelope {
        super::super::sns::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn notification_string_to_sign_includes_subject_only_when_present() {
        let with = envelope(r#"{"Type":"Notification","MessageId":"m","TopicArn":"t","Subject":"s","Message":"x","Timestamp":"ts"}"#);
        assert_eq!(string_to_sign(&with).unwrap(), "Message\nx\nMessageId\nm\nSubject\ns\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n");
        let without = envelope(r#"{"Type":"Notification","MessageId":"m","TopicArn":"t","Message":"x","Timestamp":"ts"}"#);
        assert_eq!(string_to_sign(&without).unwrap(), "Message\nx\nMessageId\nm\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n");
    }

    #[test]
    fn confirmation_string_to_sign() {
        let env = envelope(
            r#"{"Type":"SubscriptionConfirmation","MessageId":"m","TopicArn":"t","Message":"x","Timestamp":"ts","Token":"k","SubscribeURL":"u"}"#,
        );
        assert_eq!(
            string_to_sign(&env).unwrap(),
            "Message\nx\nMessageId\nm\nSubscribeURL\nu\nTimestamp\nts\nToken\nk\nTopicArn\nt\nType\nSubscriptionConfirmation\n"
        );
        let no_token = envelope(r#"{"Type":"UnsubscribeConfirmation","MessageId":"m","TopicArn":"t","Message":"x","Timestamp":"ts","SubscribeURL":"u"}"#);
        assert!(matches!(string_to_sign(&no_token), Err(VerifyError::Malformed(_))));
    }
}
