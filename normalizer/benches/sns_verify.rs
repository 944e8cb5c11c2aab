//! SNS signature verification, the edge's hottest CPU path (issue 14: 40 % of ingest's CPU was
//! `num_bigint_dig::monty` in the pure-Rust `rsa` crate). One run measures, on the same signed
//! SES notification (SignatureVersion 2, SHA256withRSA, 2048-bit test key):
//! * `verify`: the production path, `CertificateCache::verify` (parse checks, string to sign,
//!   cached key, RSA) — what ingest runs per request;
//! * `baseline_rsa_crate`: the RSA step alone with the pure-Rust `rsa` crate (the previous
//!   implementation);
//! * `baseline_string_to_sign`: parsing the envelope and building the string to sign (the
//!   floor any implementation pays);
//! * `edge_verify_unsigned`: what ingest runs per SES request of a tenant that pins its topic
//!   and does not check signatures (the local stack's, `scripts/load.sh`): the provider's whole
//!   `verify` (the body read as SNS, headers and topic checked, the partition key read from the
//!   SES event);
//! * `edge_verify_signed`: the same with the signature checked (from the cached certificate).
//!
//! `cargo bench -p normalizer --features samples --bench sns_verify` (CI: `-- --quick`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use normalizer::providers::ses::samples::sign_sns;
use normalizer::providers::ses::signature::{string_to_sign, CertificateCache};
use normalizer::providers::ses::sns;
use normalizer::providers::{registry, RawRequest, TenantCredentials, VerifyContext};
use schemas::{ProviderId, Route};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

const CERT: &[u8] = include_bytes!("../src/providers/ses/fixtures/test_signing_cert.pem");
const NOTIFICATION: &[u8] = include_bytes!("../src/providers/ses/fixtures/event_delivery.json");
/// Inside the test certificate's validity window.
const NOW_MS: i64 = 1_893_456_000_000;

fn bench(c: &mut Criterion) {
    let body = sign_sns(NOTIFICATION);
    let env = sns::parse(&body).expect("a signed notification");
    let cache = CertificateCache::new(Arc::new(|_url: &str| -> Result<Vec<u8>, String> { Ok(CERT.to_vec()) }));
    cache.verify(&env, NOW_MS).expect("the signature holds");

    // The previous implementation's RSA step: the `rsa` crate on the same key and signature.
    use base64::Engine;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    use x509_cert::der::{DecodePem, Encode};
    let cert = x509_cert::Certificate::from_pem(CERT).unwrap();
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().unwrap();
    let key = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
    let sig = base64::engine::general_purpose::STANDARD.decode(env.signature.as_deref().unwrap()).unwrap();
    let sig = Signature::try_from(sig.as_slice()).unwrap();
    let text = string_to_sign(&env).unwrap();
    VerifyingKey::<sha2::Sha256>::new(key.clone()).verify(text.as_bytes(), &sig).expect("same signature");

    let mut g = c.benchmark_group("sns_verify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify", |b| b.iter(|| cache.verify(black_box(&env), NOW_MS).unwrap()));
    g.bench_function("baseline_rsa_crate", |b| {
        b.iter(|| VerifyingKey::<sha2::Sha256>::new(black_box(key.clone())).verify(text.as_bytes(), &sig).unwrap())
    });
    g.bench_function("baseline_string_to_sign", |b| b.iter(|| string_to_sign(&sns::parse(black_box(&body)).unwrap()).unwrap()));

    // the provider's whole check, as ingest calls it
    let headers: BTreeMap<String, String> = [
        ("content-type", "text/plain; charset=UTF-8".to_string()),
        ("x-amz-sns-message-type", env.kind_name.clone()),
        ("x-amz-sns-message-id", env.message_id.clone()),
        ("x-amz-sns-topic-arn", env.topic_arn.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let route = Route::Webhook;
    let req = RawRequest { tenant: "acme", route: &route, url: "/webhooks/ses/acme", headers: &headers, body: &body, now_ms: NOW_MS };
    let ses = registry(ProviderId::Ses);
    let ctx = VerifyContext::new(Default::default(), Arc::new(|_url: &str| -> Result<Vec<u8>, String> { Ok(CERT.to_vec()) }));
    let creds = |verify_signature| TenantCredentials {
        ses: Some(normalizer::providers::ses::Credentials { topic_arn: vec![env.topic_arn.clone()], accept_any_topic: None, verify_signature: Some(verify_signature) }),
        ..Default::default()
    };
    let (unsigned, signed) = (creds(false), creds(true));
    let key = ses.verify(&req, &signed, &ctx).expect("verified").partition_key;
    assert_eq!(ses.verify(&req, &unsigned, &ctx).expect("verified").partition_key, key);
    g.bench_function("edge_verify_unsigned", |b| b.iter(|| ses.verify(black_box(&req), &unsigned, &ctx).unwrap()));
    g.bench_function("edge_verify_signed", |b| b.iter(|| ses.verify(black_box(&req), &signed, &ctx).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
