use schemas::Event;
use super::*;
use crate::providers::testkit::{check_fixtures, envelope};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use schemas::{BounceClass, EventType, MessageClass};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/sendgrid/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap()
}

fn normalize_body(body: Vec<u8>) -> Result<Vec<Event>, NormalizeError> {
    let env = envelope("sendgrid", body, BTreeMap::new());
    crate::providers::testkit::all_events(Sendgrid.normalize(&RawRecord::new(&env, "raw", 2, 5), &NormalizeOptions::default()))
}

#[test]
fn every_fixture_maps_to_its_expected_events() {
    let n = check_fixtures("sendgrid", &fixtures());
    assert!(n >= 15, "only {n} fixtures checked");
}

#[test]
fn custom_args_become_attribution_and_metadata_categories_labels() {
    let events = normalize_body(fixture("custom_args.json")).unwrap();
    let [e] = events.as_slice() else { panic!("one event expected") };
    assert_eq!(e.broadcast_id.as_deref(), Some("spring-sale"));
    assert_eq!(e.contact_id.as_deref(), Some("c-42"));
    assert_eq!(e.template_key.as_deref(), Some("welcome-v2"));
    assert_eq!(e.message_class, Some(MessageClass::Marketing));
    assert_eq!(e.metadata, BTreeMap::from([("campaign".to_string(), "spring".to_string())]));
    assert_eq!(e.labels, vec!["cat facts".to_string(), "newsletter".to_string()]);
    assert_eq!(e.provider_event_id.as_deref(), Some("rWVYmVk90MjZJ9iohOBa3w=="));
    assert_eq!(e.error_reason, None, "a delivery's `response` is not an error");
}

#[test]
fn documented_fields_reach_the_event() {
    let events = normalize_body(fixture("click.json")).unwrap();
    let [e] = events.as_slice() else { panic!("one event expected") };
    assert_eq!(e.ip.as_deref(), Some("255.255.255.255"));
    assert!(e.user_agent.as_deref().unwrap_or_default().starts_with("Mozilla/4.0"));
    assert_eq!(e.labels, vec!["cat facts".to_string()]);
    assert!(e.metadata.is_empty(), "SendGrid's own keys are not custom args: {:?}", e.metadata);
    assert_eq!(e.time_source, schemas::TimeSource::Provider);

    let bounce = normalize_body(fixture("bounce.json")).unwrap();
    assert_eq!(bounce[0].error_code.as_deref(), Some("5.0.0"));
    let async_bounce = normalize_body(fixture("bounce_async.json")).unwrap();
    assert_eq!(async_bounce[0].metadata.get("bounce_classification").map(String::as_str), Some("Invalid Address"));
}

#[test]
fn a_batch_gives_one_event_per_item_with_distinct_ids() {
    let events = normalize_body(fixture("all_events.json")).unwrap();
    assert_eq!(events.len(), 11);
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(ids.len(), 11);
    // One message, one recipient: one delivery.
    assert!(events.iter().all(|e| e.delivery_key == events[0].delivery_key));
}

#[test]
fn events_without_sg_event_id_are_identified_by_position() {
    let body = br#"[{"email":"a@x.com","event":"dropped","reason":"Invalid","smtp-id":"<4FB29F5D.5080404@sendgrid.com>","timestamp":1386636115},
                   {"email":"a@x.com","event":"dropped","reason":"Invalid","smtp-id":"<4FB29F5D.5080404@sendgrid.com>","timestamp":1386636115}]"#;
    let events = normalize_body(body.to_vec()).unwrap();
    assert_eq!(events.len(), 2);
    assert_ne!(events[0].event_id, events[1].event_id);
    assert_eq!(events[0].provider_message_id, "4FB29F5D");
    assert_eq!(events[0].provider_event_id, None);
    assert_eq!(events, normalize_body(body.to_vec()).unwrap(), "replay gives identical events");
}

#[test]
fn unknown_and_extra_fields_are_kept_or_ignored() {
    let body = br#"[{"email":"a@x.com","event":"machine_opened","sg_message_id":"abc.def","new_field":{"x":1},"timestamp":1513299569}]"#;
    let events = normalize_body(body.to_vec()).unwrap();
    assert_eq!(events[0].event_type, EventType::Unknown);
    assert_eq!(events[0].provider_event_name, "machine_opened");
    assert_eq!(events[0].provider_message_id, "abc");
    // A bounce without `type` or classification is undetermined, not guessed.
    let body = br#"[{"email":"a@x.com","event":"bounce","sg_message_id":"abc"}]"#;
    let events = normalize_body(body.to_vec()).unwrap();
    assert_eq!(events[0].bounce_class, Some(BounceClass::Undetermined));
    assert_eq!(events[0].time_source, schemas::TimeSource::Received);
}

#[test]
fn garbage_bodies_are_errors_not_panics() {
    let bodies: &[&[u8]] = &[
        b"",
        b"[",
        b"{}",
        b"[]",
        b"[1]",
        b"[null]",
        b"[{}]",
        b"\xff\xfe",
        br#"[{"event":"open","sg_message_id":"a"}]"#,
        br#"[{"email":"a@x.com","sg_message_id":"a"}]"#,
        br#"[{"email":"a@x.com","event":"open"}]"#,
        br#"[{"email":"a@x.com","event":"open","sg_message_id":"."}]"#,
        br#"[{"email":"a@x.com","event":"open","sg_message_id":"a","timestamp":"soon"}]"#,
        br#"[{"email":"a@x.com","event":"open","sg_message_id":"a","timestamp":9223372036854775807}]"#,
        br#"[{"email":7,"event":[],"sg_message_id":{}}]"#,
    ];
    for body in bodies {
        assert!(normalize_body(body.to_vec()).is_err(), "{}", String::from_utf8_lossy(body));
    }
}

// ---- verification ----

const NOW_SECS: i64 = 1_700_000_000;

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

/// The key as the SendGrid console shows it: base64 of the DER SubjectPublicKeyInfo.
fn console_key(key: &SigningKey) -> String {
    STANDARD.encode(key.verifying_key().to_public_key_der().unwrap().as_bytes())
}

fn creds_for(key: &SigningKey) -> TenantCredentials {
    TenantCredentials { sendgrid: Some(super::Credentials::new(console_key(key))), ..Default::default() }
}

fn signed_headers(key: &SigningKey, timestamp: &str, body: &[u8]) -> BTreeMap<String, String> {
    let signature: Signature = key.sign(&[timestamp.as_bytes(), body].concat());
    BTreeMap::from([
        (verify::HEADER_SIGNATURE.to_string(), STANDARD.encode(signature.to_der().as_bytes())),
        (verify::HEADER_TIMESTAMP.to_string(), timestamp.to_string()),
    ])
}

fn request<'a>(headers: &'a BTreeMap<String, String>, body: &'a [u8]) -> RawRequest<'a> {
    RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/webhooks/sendgrid/acme"), url: "/webhooks/sendgrid/acme", headers, body, now_ms: NOW_SECS * 1000 }
}

#[test]
fn a_signed_request_is_accepted_and_keyed_by_message() {
    let key = signing_key(7);
    let body = fixture("all_events.json");
    let headers = signed_headers(&key, &NOW_SECS.to_string(), &body);
    let ok = Sendgrid.verify(&request(&headers, &body), &creds_for(&key), crate::providers::testkit::ctx()).unwrap();
    assert_eq!(ok, Verified { partition_key: "sg_message_id".into(), control: None });

    let body = fixture("delivered.json");
    let headers = signed_headers(&key, &NOW_SECS.to_string(), &body);
    assert_eq!(Sendgrid.verify(&request(&headers, &body), &creds_for(&key), crate::providers::testkit::ctx()).unwrap().partition_key, "14c5d75ce93");

    // PEM keys are accepted too.
    let pem = key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
    let creds = TenantCredentials { sendgrid: Some(super::Credentials::new(pem)), ..Default::default() };
    assert!(Sendgrid.verify(&request(&headers, &body), &creds, crate::providers::testkit::ctx()).is_ok());
}

#[test]
fn sendgrid_sdk_test_vector_verifies() {
    // The vector every SendGrid helper library tests its Event Webhook verifier with.
    let body = br#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;
    let headers = BTreeMap::from([
        (verify::HEADER_SIGNATURE.to_string(), "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=".to_string()),
        (verify::HEADER_TIMESTAMP.to_string(), "1588788367".to_string()),
    ]);
    let creds = TenantCredentials {
        sendgrid: Some(super::Credentials::new("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==")),
        ..Default::default()
    };
    let req = RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/"), url: "/", headers: &headers, body, now_ms: 1_588_788_367_000 };
    let ok = Sendgrid.verify(&req, &creds, crate::providers::testkit::ctx()).unwrap();
    assert_eq!(ok.partition_key.len(), 64, "not an event array: keyed by the body hash");
    assert_eq!(Sendgrid.verify(&RawRequest { body: b"payload", ..req }, &creds, crate::providers::testkit::ctx()), Err(VerifyError::BadSignature));
}

fn assert_refused(result: Result<Verified, VerifyError>, want: VerifyError, status: u16) {
    let err = result.unwrap_err();
    assert_eq!(err.http_status(), status, "{err}");
    assert_eq!(err, want);
}

#[test]
fn a_tampered_body_is_refused() {
    let key = signing_key(7);
    let body = fixture("delivered.json");
    let headers = signed_headers(&key, &NOW_SECS.to_string(), &body);
    let tampered = String::from_utf8(body).unwrap().replace("delivered", "bounce").into_bytes();
    assert_refused(Sendgrid.verify(&request(&headers, &tampered), &creds_for(&key), crate::providers::testkit::ctx()), VerifyError::BadSignature, 403);
}

#[test]
fn a_wrong_key_or_another_tenants_key_is_refused() {
    let body = fixture("delivered.json");
    let acme = signing_key(7);
    let globex = signing_key(9);
    // Signed with a key SendGrid never gave acme.
    let headers = signed_headers(&signing_key(3), &NOW_SECS.to_string(), &body);
    assert_refused(Sendgrid.verify(&request(&headers, &body), &creds_for(&acme), crate::providers::testkit::ctx()), VerifyError::BadSignature, 403);
    // A request genuinely signed for globex, sent to acme's endpoint.
    let headers = signed_headers(&globex, &NOW_SECS.to_string(), &body);
    assert!(Sendgrid.verify(&request(&headers, &body), &creds_for(&globex), crate::providers::testkit::ctx()).is_ok());
    assert_refused(Sendgrid.verify(&request(&headers, &body), &creds_for(&acme), crate::providers::testkit::ctx()), VerifyError::BadSignature, 403);
    // The signed timestamp cannot be swapped.
    let mut moved = headers.clone();
    moved.insert(verify::HEADER_TIMESTAMP.into(), (NOW_SECS + 1).to_string());
    assert_refused(Sendgrid.verify(&request(&moved, &body), &creds_for(&globex), crate::providers::testkit::ctx()), VerifyError::BadSignature, 403);
}

#[test]
fn missing_headers_are_refused() {
    let key = signing_key(7);
    let body = fixture("delivered.json");
    let headers = signed_headers(&key, &NOW_SECS.to_string(), &body);
    for name in [verify::HEADER_SIGNATURE, verify::HEADER_TIMESTAMP] {
        let mut partial = headers.clone();
        partial.remove(name);
        assert_refused(Sendgrid.verify(&request(&partial, &body), &creds_for(&key), crate::providers::testkit::ctx()), VerifyError::MissingHeader(name), 401);
    }
}

#[test]
fn stale_and_future_timestamps_are_refused() {
    let key = signing_key(7);
    let body = fixture("delivered.json");
    for ts in [NOW_SECS - 301, NOW_SECS + 301] {
        let headers = signed_headers(&key, &ts.to_string(), &body);
        assert_refused(Sendgrid.verify(&request(&headers, &body), &creds_for(&key), crate::providers::testkit::ctx()), VerifyError::StaleTimestamp(300), 403);
    }
    let headers = signed_headers(&key, &(NOW_SECS - 299).to_string(), &body);
    assert!(Sendgrid.verify(&request(&headers, &body), &creds_for(&key), crate::providers::testkit::ctx()).is_ok());
}

/// The previous check (the `p256` crate's verification), the oracle of `verify::verifies`.
fn p256_verifies(key: &p256::ecdsa::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    let Ok(signature) = Signature::from_der(signature).or_else(|_| Signature::from_slice(signature)) else { return false };
    key.verify(message, &signature).is_ok()
}

#[test]
fn ring_accepts_and_refuses_what_the_p256_crate_does() {
    // Keys, messages and signatures in every form the check reads (DER, raw r ‖ s, the other
    // s of the pair, which ECDSA accepts too), and each tampered with: `ring`'s answer is the
    // `p256` crate's every time (the crate that checked before, BENCHMARKS.md §7).
    let mut checked = 0;
    for seed in 1..=24u8 {
        let key = signing_key(seed);
        let point = verify::point(&console_key(&key)).expect("a console key reads");
        let public = key.verifying_key();
        for len in [0usize, 1, 63, 64, 1000] {
            let message: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(len as u8)).collect();
            let sig: Signature = key.sign(&message);
            let other_s = Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
            for sig in [sig, other_s] {
                let der = sig.to_der().as_bytes().to_vec();
                let raw = sig.to_bytes().to_vec();
                let mut forms = vec![der.clone(), raw.clone()];
                for bytes in [&der, &raw] {
                    for at in [0, bytes.len() / 2, bytes.len() - 1] {
                        let mut t = bytes.clone();
                        t[at] ^= 0x01;
                        forms.push(t);
                    }
                    forms.push(bytes[..bytes.len() - 1].to_vec());
                }
                let mut other_message = message.clone();
                other_message.push(b'x');
                for form in &forms {
                    for m in [&message, &other_message] {
                        assert_eq!(verify::verifies(&point, m, form), p256_verifies(public, m, form), "seed {seed}, {len}-byte message, signature {form:02x?}");
                        checked += 1;
                    }
                }
                assert!(verify::verifies(&point, &message, &der) && verify::verifies(&point, &message, &raw), "seed {seed}: a good signature refused");
            }
        }
    }
    assert!(checked > 2000, "{checked}");
}

#[test]
fn a_compressed_key_is_read_into_the_point_ring_takes() {
    let key = signing_key(9);
    let der = key.verifying_key().to_public_key_der().unwrap();
    let uncompressed = der.as_bytes();
    assert_eq!((uncompressed.len(), uncompressed[26]), (91, 0x04), "SubjectPublicKeyInfo of an uncompressed point");
    // the same key info with the 33-byte compressed point (ASN.1 lengths adjusted)
    let compressed_point = key.verifying_key().to_encoded_point(true);
    let mut compressed = vec![0x30, 0x39];
    compressed.extend_from_slice(&uncompressed[2..23]);
    compressed.extend_from_slice(&[0x03, 0x22, 0x00]);
    compressed.extend_from_slice(compressed_point.as_bytes());
    let from_compressed = verify::point(&STANDARD.encode(&compressed)).expect("a compressed key reads");
    assert_eq!(from_compressed, verify::point(&console_key(&key)).unwrap());
    let body = fixture("delivered.json");
    let headers = signed_headers(&key, &NOW_SECS.to_string(), &body);
    let creds = TenantCredentials { sendgrid: Some(super::Credentials::new(STANDARD.encode(&compressed))), ..Default::default() };
    assert!(Sendgrid.verify(&request(&headers, &body), &creds, crate::providers::testkit::ctx()).is_ok());
}

#[test]
fn credentials_compare_by_their_configured_key() {
    let (a, b) = (super::Credentials::new(console_key(&signing_key(3))), super::Credentials::new(console_key(&signing_key(3))));
    let body = fixture("delivered.json");
    let headers = signed_headers(&signing_key(3), &NOW_SECS.to_string(), &body);
    let creds = TenantCredentials { sendgrid: Some(a.clone()), ..Default::default() };
    assert!(Sendgrid.verify(&request(&headers, &body), &creds, crate::providers::testkit::ctx()).is_ok());
    // one has read its key (the copy in `creds`), the other not: still equal
    assert_eq!(creds.sendgrid.as_ref().unwrap(), &b);
    assert_ne!(a, super::Credentials::new(console_key(&signing_key(4))));
}

#[test]
fn bad_configuration_and_unreadable_headers_are_refused() {
    let key = signing_key(7);
    let body = fixture("delivered.json");
    let headers = signed_headers(&key, &NOW_SECS.to_string(), &body);
    let req = request(&headers, &body);
    assert_refused(Sendgrid.verify(&req, &TenantCredentials::default(), crate::providers::testkit::ctx()), VerifyError::NotConfigured, 401);
    let bad = TenantCredentials { sendgrid: Some(super::Credentials::new("not a key")), ..Default::default() };
    assert_refused(Sendgrid.verify(&req, &bad, crate::providers::testkit::ctx()), VerifyError::NotConfigured, 401);

    let mut garbled = headers.clone();
    garbled.insert(verify::HEADER_SIGNATURE.into(), "%%%".into());
    assert_refused(Sendgrid.verify(&request(&garbled, &body), &creds_for(&key), crate::providers::testkit::ctx()), VerifyError::BadSignature, 403);
    garbled.insert(verify::HEADER_SIGNATURE.into(), STANDARD.encode(b"not DER"));
    assert_refused(Sendgrid.verify(&request(&garbled, &body), &creds_for(&key), crate::providers::testkit::ctx()), VerifyError::BadSignature, 403);
    let mut no_number = headers.clone();
    no_number.insert(verify::HEADER_TIMESTAMP.into(), "yesterday".into());
    assert!(matches!(Sendgrid.verify(&request(&no_number, &body), &creds_for(&key), crate::providers::testkit::ctx()), Err(VerifyError::Malformed(_))));
}

/// Issue 14: the borrowed mapping (`map.rs`) agrees with the `Value` mapping it replaced
/// (`map_before.rs`) on every fixture and on every fixture with any one value replaced by one
/// of another JSON type, or a key repeated: same drafts, recipients and errors, same partition key.
#[test]
fn the_borrowed_mapping_agrees_with_the_value_mapping_on_odd_inputs() {
    use crate::providers::testkit::{differential, fixture_docs, shown};
    let opts = NormalizeOptions::default();
    // custom args of every kind, as top-level keys and as legacy `unique_args`
    let extra = br#"[{"email":"a@x.com","event":"bounce","sg_message_id":"m.1","broadcast":7,"contact":"c","n":1.5e3,"b":false,"z":null,"o":{"a":1},"type":"blocked","unique_args":{"broadcast":"late","k":[1],"m":2},"category":["a","",3,"a"]}]"#;
    let mut docs: Vec<serde_json::Value> = vec![serde_json::from_slice(extra).unwrap()];
    docs.extend(fixture_docs(&fixtures()));
    let checked = differential(
        &docs,
        |b| (shown(map::drafts(b, &opts)), map::first_message_id(b)),
        |b| (shown(map_before::drafts(b, &opts)), map_before::first_message_id(b)),
    );
    assert!(checked > 2_000, "{checked}");
}
