use schemas::Event;
use super::*;
use crate::providers::signature::hmac_sha256;
use crate::providers::testkit::{check_fixtures, envelope};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use schemas::EventType;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/resend/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap()
}

fn normalize_with(body: Vec<u8>, headers: BTreeMap<String, String>) -> Result<Vec<Event>, NormalizeError> {
    let env = envelope("resend", body, headers);
    crate::providers::testkit::all_events(Resend.normalize(&RawRecord::new(&env, "raw", 0, 11), &NormalizeOptions::default()))
}

fn normalize_body(body: Vec<u8>) -> Result<Vec<Event>, NormalizeError> {
    normalize_with(body, BTreeMap::new())
}

#[test]
fn every_fixture_maps_to_its_expected_events() {
    let n = check_fixtures("resend", &fixtures());
    assert!(n >= 13, "only {n} fixtures checked");
}

#[test]
fn svix_id_is_the_event_identity_when_ingest_kept_it() {
    let body = fixture("email_delivered.json");
    let with_id = |id: &str| BTreeMap::from([(svix::HEADER_ID.to_string(), id.to_string())]);
    let a = normalize_with(body.clone(), with_id("msg_a")).unwrap();
    let a_again = normalize_with(body.clone(), with_id("msg_a")).unwrap();
    let b = normalize_with(body.clone(), with_id("msg_b")).unwrap();
    let bare = normalize_body(body).unwrap();
    assert_eq!(a[0].provider_event_id.as_deref(), Some("msg_a"));
    assert_eq!(a, a_again, "a retry of the same message gives the same event");
    assert_ne!(a[0].event_id, b[0].event_id);
    assert_eq!(bare[0].provider_event_id, None);
    assert_ne!(a[0].event_id, bare[0].event_id);
    assert_eq!(a[0].delivery_key, bare[0].delivery_key);
}

#[test]
fn one_event_per_recipient_with_tags_as_attribution() {
    let events = normalize_body(fixture("email_sent_multi.json")).unwrap();
    assert_eq!(events.len(), 2);
    assert_ne!(events[0].delivery_key, events[1].delivery_key);
    assert_ne!(events[0].event_id, events[1].event_id);
    for e in &events {
        assert_eq!(e.broadcast_id.as_deref(), Some("spring-sale"));
        assert_eq!(e.contact_id.as_deref(), Some("c-42"));
        assert_eq!(e.labels, vec!["category:confirm_email".to_string()]);
        assert_eq!(e.metadata.get("message_id").map(String::as_str), Some("<111-222-333@email.example.com>"));
        assert_eq!(e.metadata.get("resend_broadcast_id").map(String::as_str), Some("8b146471-e88e-4322-86af-016cd36fd216"));
    }
    // The documented object form of tags.
    let events = normalize_body(fixture("email_sent.json")).unwrap();
    assert_eq!(events[0].labels, vec!["category:confirm_email".to_string()]);
}

#[test]
fn documented_fields_reach_the_event() {
    let click = normalize_body(fixture("email_clicked.json")).unwrap();
    assert_eq!(click[0].ip.as_deref(), Some("122.115.53.11"));
    assert!(click[0].user_agent.as_deref().unwrap_or_default().contains("Safari"));
    let bounce = normalize_body(fixture("email_bounced.json")).unwrap();
    assert_eq!(bounce[0].error_code.as_deref(), Some("Suppressed"));
    let suppressed = normalize_body(fixture("email_suppressed.json")).unwrap();
    assert_eq!(suppressed[0].error_code.as_deref(), Some("OnAccountSuppressionList"));
}

#[test]
fn optional_fields_may_be_missing_and_extra_fields_are_ignored() {
    let body = json!({"type": "email.bounced", "data": {"email_id": "e1", "to": "a@x.com", "bounce": {"diagnosticCode": ["smtp; 550 5.5.0 mailbox unavailable"]}, "later": {"x": 1}}});
    let events = normalize_body(body.to_string().into_bytes()).unwrap();
    assert_eq!(events[0].event_type, EventType::Bounced);
    assert_eq!(events[0].bounce_class, Some(schemas::BounceClass::Hard));
    assert_eq!(events[0].error_reason.as_deref(), Some("smtp; 550 5.5.0 mailbox unavailable"));
    assert_eq!(events[0].time_source, schemas::TimeSource::Received);
    let body = json!({"type": "email.something_new", "data": {"email_id": "e1", "to": ["a@x.com"], "tags": [{"name": "n"}, 5]}});
    let events = normalize_body(body.to_string().into_bytes()).unwrap();
    assert_eq!(events[0].event_type, EventType::Unknown);
    assert_eq!(events[0].provider_event_name, "email.something_new");
}

#[test]
fn garbage_bodies_are_errors_not_panics() {
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        b"\xff".to_vec(),
        b"{}".to_vec(),
        json!({"type": "email.sent"}).to_string().into_bytes(),
        json!({"type": "email.sent", "data": {"email_id": "e1"}}).to_string().into_bytes(),
        json!({"type": "email.sent", "data": {"email_id": "e1", "to": [" ", 3]}}).to_string().into_bytes(),
        json!({"type": 4, "data": {"email_id": "e1", "to": ["a@x.com"]}}).to_string().into_bytes(),
        json!({"type": "email.sent", "created_at": "yesterday", "data": {"email_id": "e1", "to": ["a@x.com"]}}).to_string().into_bytes(),
    ];
    for body in bodies {
        assert!(normalize_body(body.clone()).is_err(), "{}", String::from_utf8_lossy(&body));
    }
}

// ---- verification ----

const NOW_SECS: i64 = 1_700_000_000;
const SECRET_BYTES: &[u8] = b"acme resend secret, 24 by";

fn secret(bytes: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(bytes))
}

fn creds(bytes: &[u8]) -> TenantCredentials {
    TenantCredentials { resend: Some(super::Credentials { secret: secret(bytes) }), ..Default::default() }
}

fn signed_headers(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> BTreeMap<String, String> {
    let ts = timestamp.to_string();
    let sig = STANDARD.encode(hmac_sha256(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]));
    BTreeMap::from([
        (svix::HEADER_ID.to_string(), id.to_string()),
        (svix::HEADER_TIMESTAMP.to_string(), ts),
        (svix::HEADER_SIGNATURE.to_string(), format!("v1,{sig}")),
    ])
}

fn verify_with(headers: &BTreeMap<String, String>, body: &[u8], creds: &TenantCredentials) -> Result<Verified, VerifyError> {
    Resend.verify(&RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/webhooks/resend/acme"), url: "/webhooks/resend/acme", headers, body, now_ms: NOW_SECS * 1000 }, creds, crate::providers::testkit::ctx())
}

fn assert_refused(result: Result<Verified, VerifyError>, want: VerifyError, status: u16) {
    let err = result.unwrap_err();
    assert_eq!(err.http_status(), status, "{err}");
    assert_eq!(err, want);
}

#[test]
fn a_signed_request_is_accepted_and_keyed_by_email() {
    let body = fixture("email_delivered.json");
    let headers = signed_headers(SECRET_BYTES, "msg_1", NOW_SECS, &body);
    let ok = verify_with(&headers, &body, &creds(SECRET_BYTES)).unwrap();
    assert_eq!(ok, Verified { partition_key: "56761188-7520-42d8-8898-ff6fc54ce618".into(), control: None });
    // While a secret rotates Svix sends several signatures; any one may match.
    let mut rotated = headers.clone();
    let current = rotated[svix::HEADER_SIGNATURE].clone();
    rotated.insert(svix::HEADER_SIGNATURE.into(), format!("v1,{} v1a,xyz {current}", STANDARD.encode([0u8; 32])));
    assert!(verify_with(&rotated, &body, &creds(SECRET_BYTES)).is_ok());
}

#[test]
fn svix_documented_example_verifies() {
    // The example in Svix's "verifying payloads manually" guide.
    let body = br#"{"test": 2432232314}"#;
    let headers = BTreeMap::from([
        (svix::HEADER_ID.to_string(), "msg_p5jXN8AQM9LWM0D4loKWxJek".to_string()),
        (svix::HEADER_TIMESTAMP.to_string(), "1614265330".to_string()),
        (svix::HEADER_SIGNATURE.to_string(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_string()),
    ]);
    let creds = TenantCredentials { resend: Some(super::Credentials { secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into() }), ..Default::default() };
    let req = RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/"), url: "/", headers: &headers, body, now_ms: 1_614_265_330_000 };
    assert_eq!(Resend.verify(&req, &creds, crate::providers::testkit::ctx()).unwrap().partition_key, "msg_p5jXN8AQM9LWM0D4loKWxJek");
}

#[test]
fn a_tampered_body_or_id_is_refused() {
    let body = fixture("email_delivered.json");
    let headers = signed_headers(SECRET_BYTES, "msg_1", NOW_SECS, &body);
    let tampered = String::from_utf8(body.clone()).unwrap().replace("email.delivered", "email.bounced").into_bytes();
    assert_refused(verify_with(&headers, &tampered, &creds(SECRET_BYTES)), VerifyError::BadSignature, 403);
    let mut other_id = headers.clone();
    other_id.insert(svix::HEADER_ID.into(), "msg_2".into());
    assert_refused(verify_with(&other_id, &body, &creds(SECRET_BYTES)), VerifyError::BadSignature, 403);
}

#[test]
fn a_wrong_secret_or_another_tenants_secret_is_refused() {
    let body = fixture("email_delivered.json");
    let headers = signed_headers(b"a guessed secret", "msg_1", NOW_SECS, &body);
    assert_refused(verify_with(&headers, &body, &creds(SECRET_BYTES)), VerifyError::BadSignature, 403);
    let globex = b"globex resend secret 1234";
    let headers = signed_headers(globex, "msg_1", NOW_SECS, &body);
    assert!(verify_with(&headers, &body, &creds(globex)).is_ok());
    assert_refused(verify_with(&headers, &body, &creds(SECRET_BYTES)), VerifyError::BadSignature, 403);
    // The `whsec_` text itself is not the key.
    let headers = signed_headers(secret(SECRET_BYTES).as_bytes(), "msg_1", NOW_SECS, &body);
    assert_refused(verify_with(&headers, &body, &creds(SECRET_BYTES)), VerifyError::BadSignature, 403);
}

#[test]
fn missing_headers_are_refused() {
    let body = fixture("email_delivered.json");
    let headers = signed_headers(SECRET_BYTES, "msg_1", NOW_SECS, &body);
    for name in [svix::HEADER_ID, svix::HEADER_TIMESTAMP, svix::HEADER_SIGNATURE] {
        let mut partial = headers.clone();
        partial.remove(name);
        assert_refused(verify_with(&partial, &body, &creds(SECRET_BYTES)), VerifyError::MissingHeader(name), 401);
    }
}

#[test]
fn stale_and_future_timestamps_are_refused() {
    let body = fixture("email_delivered.json");
    for ts in [NOW_SECS - 301, NOW_SECS + 301] {
        let headers = signed_headers(SECRET_BYTES, "msg_1", ts, &body);
        assert_refused(verify_with(&headers, &body, &creds(SECRET_BYTES)), VerifyError::StaleTimestamp(300), 403);
    }
}

#[test]
fn bad_configuration_and_unreadable_headers_are_refused() {
    let body = fixture("email_delivered.json");
    let headers = signed_headers(SECRET_BYTES, "msg_1", NOW_SECS, &body);
    assert_refused(verify_with(&headers, &body, &TenantCredentials::default()), VerifyError::NotConfigured, 401);
    let bad = TenantCredentials { resend: Some(super::Credentials { secret: "whsec_%%%".into() }), ..Default::default() };
    assert_refused(verify_with(&headers, &body, &bad), VerifyError::NotConfigured, 401);
    let mut garbled = headers.clone();
    garbled.insert(svix::HEADER_SIGNATURE.into(), "v1,%%% v2,abc".into());
    assert_refused(verify_with(&garbled, &body, &creds(SECRET_BYTES)), VerifyError::BadSignature, 403);
    let mut no_number = headers.clone();
    no_number.insert(svix::HEADER_TIMESTAMP.into(), "now".into());
    assert!(matches!(verify_with(&no_number, &body, &creds(SECRET_BYTES)), Err(VerifyError::Malformed(_))));
}

/// Issue 14: the borrowed mapping (`map.rs`) agrees with the `Value` mapping it replaced
/// (`map_before.rs`) on every fixture and on every fixture with any one value replaced by one
/// of another JSON type, or a key repeated: same draft, recipients and errors, same partition key.
#[test]
fn the_borrowed_mapping_agrees_with_the_value_mapping_on_odd_inputs() {
    use crate::providers::testkit::{differential, fixture_docs, shown};
    let opts = NormalizeOptions::default();
    let mut docs = Vec::new();
    for doc in fixture_docs(&fixtures()) {
        let mut tagged = doc.clone();
        tagged["data"]["tags"] = json!([{"name": "broadcast", "value": "b"}, {"name": "x"}, {"value": "y"}, 3, {"name": "x", "value": 1}]);
        docs.push(tagged);
        let mut tagged = doc.clone();
        tagged["data"]["tags"] = json!({"broadcast": 1, "contact": "c", "k": "v", "e": ""});
        docs.push(tagged);
        docs.push(doc);
    }
    // with and without a Svix message id
    let checked = differential(
        &docs,
        |b| ([None, Some("msg_1")].map(|svix| shown(map::draft(b, svix, &opts))), map::email_id_of(b)),
        |b| ([None, Some("msg_1")].map(|svix| shown(map_before::draft(b, svix, &opts))), map_before::email_id_of(b)),
    );
    assert!(checked > 5_000, "{checked}");
}
