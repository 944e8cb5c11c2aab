//! SendGrid's Signed Event Webhook check at the edge (ECDSA P-256 / SHA-256 over timestamp ‖
//! body; BENCHMARKS.md §7). Under `scripts/load.sh` the SendGrid provider's `verify` was 4.7 %
//! of ingest's CPU for 0.9 % of its requests: ~5× an average request, in the pure-Rust `p256`
//! crate's scalar multiplications (`primeorder`), with the tenant's key parsed again each time.
//! One run measures, on one signed POST of 50 events (the load's `--sendgrid-batch`, from
//! `fixtures/all_events.json`, 16 KB):
//! * `sendgrid_edge_verify`: the provider's whole `verify` as ingest calls it (headers,
//!   timestamp, the cached key, the signature, the partition key);
//! * `sendgrid_baseline_p256_crate`: the previous implementation's steps: the configured key
//!   parsed, the signature decoded, `p256`'s verification of timestamp ‖ body;
//! * `sendgrid_baseline_sha256`: SHA-256 of timestamp ‖ body, the floor every implementation
//!   pays.
//!
//! `cargo bench -p normalizer --features samples --bench webhook_verify` (CI: `--test`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use normalizer::providers::sendgrid::samples::{demo_key, signed_headers};
use normalizer::providers::sendgrid::verify::{public_key, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use normalizer::providers::sendgrid::Credentials;
use normalizer::providers::{registry, RawRequest, TenantCredentials, VerifyContext};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::Signature;
use p256::pkcs8::EncodePublicKey;
use schemas::{ProviderId, Route};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

const ALL_EVENTS: &[u8] = include_bytes!("../src/providers/sendgrid/fixtures/all_events.json");

fn bench(c: &mut Criterion) {
    let events: Vec<serde_json::Value> = serde_json::from_slice(ALL_EVENTS).unwrap();
    let batch: Vec<&serde_json::Value> = events.iter().cycle().take(50).collect();
    let body = serde_json::to_vec(&batch).unwrap();
    let headers: BTreeMap<String, String> = signed_headers("acme", &body).into_iter().collect();
    let console_key = STANDARD.encode(demo_key("acme").verifying_key().to_public_key_der().unwrap().as_bytes());
    let creds = TenantCredentials { sendgrid: Some(Credentials::new(console_key.clone())), ..Default::default() };
    let route = Route::Webhook;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let req = RawRequest { tenant: "acme", route: &route, url: "/webhooks/sendgrid/acme", headers: &headers, body: &body, now_ms };
    let sendgrid = registry(ProviderId::Sendgrid);
    let ctx = VerifyContext::new(Default::default(), Arc::new(|_url: &str| -> Result<Vec<u8>, String> { Err("no certificates here".into()) }));
    let key = sendgrid.verify(&req, &creds, &ctx).expect("verified").partition_key;
    let mut tampered = body.clone();
    tampered[body.len() / 2] ^= 1;
    assert!(sendgrid.verify(&RawRequest { body: &tampered, ..req }, &creds, &ctx).is_err(), "a tampered body is refused");

    // the previous implementation, on the same request
    let previous = || {
        let key = public_key(black_box(&console_key)).unwrap();
        let signature = STANDARD.decode(headers[HEADER_SIGNATURE].trim()).unwrap();
        let signature = Signature::from_der(&signature).unwrap();
        let timestamp = &headers[HEADER_TIMESTAMP];
        let mut signed = Vec::with_capacity(timestamp.len() + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.extend_from_slice(&body);
        key.verify(&signed, &signature).is_ok()
    };
    assert!(previous(), "the p256 crate verifies the same signature");

    let mut g = c.benchmark_group("webhook_verify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sendgrid_edge_verify", |b| b.iter(|| assert_eq!(sendgrid.verify(black_box(&req), &creds, &ctx).unwrap().partition_key, key)));
    g.bench_function("sendgrid_baseline_p256_crate", |b| b.iter(|| assert!(previous())));
    g.bench_function("sendgrid_baseline_sha256", |b| {
        b.iter(|| {
            let mut h = Sha256::new();
            h.update(headers[HEADER_TIMESTAMP].as_bytes());
            h.update(black_box(&body));
            h.finalize()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
