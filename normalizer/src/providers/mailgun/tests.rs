use schemas::Event;
use super::*;
use crate::providers::signature::hmac_sha256;
use crate::providers::testkit::{check_fixtures, envelope};
use schemas::{EventType, MessageClass};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/mailgun/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap()
}

fn normalize_body(body: Vec<u8>) -> Result<Vec<Event>, NormalizeError> {
    let env = envelope("mailgun", body, BTreeMap::new());
    crate::providers::testkit::all_events(Mailgun.normalize(&RawRecord::new(&env, "raw", 0, 3), &NormalizeOptions::default()))
}

#[test]
fn every_fixture_maps_to_its_expected_events() {
    let n = check_fixtures("mailgun", &fixtures());
    assert!(n >= 13, "only {n} fixtures checked");
}

#[test]
fn user_variables_become_attribution_and_metadata_tags_labels() {
    let events = normalize_body(fixture("delivered_user_variables.json")).unwrap();
    let [e] = events.as_slice() else { panic!("one event expected") };
    assert_eq!(e.broadcast_id.as_deref(), Some("spring-sale"));
    assert_eq!(e.contact_id.as_deref(), Some("c-42"));
    assert_eq!(e.template_key.as_deref(), Some("welcome-v2"));
    assert_eq!(e.message_class, Some(MessageClass::Marketing));
    assert_eq!(e.metadata.get("campaign").map(String::as_str), Some("spring"));
    assert_eq!(e.labels, vec!["newsletter".to_string(), "spring".to_string()]);
    assert_eq!(e.provider_event_id.as_deref(), Some("hK7mQVt1QtqRiOfQXta4sw"));
}

#[test]
fn documented_fields_reach_the_event() {
    let events = normalize_body(fixture("opened.json")).unwrap();
    assert_eq!(events[0].ip.as_deref(), Some("111.111.111.111"));
    assert!(events[0].user_agent.as_deref().unwrap_or_default().contains("iPhone"));
    let failed = normalize_body(fixture("failed_temporary.json")).unwrap();
    assert_eq!(failed[0].error_code.as_deref(), Some("451"));
    assert_eq!(failed[0].metadata.get("reason").map(String::as_str), Some("generic"));
    let suppressed = normalize_body(fixture("failed_permanent.json")).unwrap();
    assert_eq!(suppressed[0].error_code.as_deref(), Some("605"));
}

#[test]
fn events_about_no_recipient_report_nothing() {
    assert!(normalize_body(fixture("stored.json")).unwrap().is_empty());
    let list = json!({"event-data": {"event": "list_uploaded", "id": "x", "timestamp": 1555440421.099269}});
    assert!(normalize_body(list.to_string().into_bytes()).unwrap().is_empty());
    // A delivery event without a recipient is an error, not silence.
    let delivered = json!({"event-data": {"event": "delivered", "message": {"headers": {"message-id": "a@b"}}}});
    assert_eq!(normalize_body(delivered.to_string().into_bytes()).unwrap_err().code(), "no_recipients");
}

#[test]
fn optional_fields_may_be_missing_and_brackets_are_dropped() {
    let body = json!({"event-data": {"event": "bounced-later", "recipient": "a@x.com", "message": {"headers": {"message-id": "<m@x>"}}}});
    let events = normalize_body(body.to_string().into_bytes()).unwrap();
    assert_eq!(events[0].event_type, EventType::Unknown);
    assert_eq!(events[0].provider_message_id, "m@x");
    assert_eq!(events[0].time_source, schemas::TimeSource::Received);
    assert_eq!(events[0].provider_event_id, None);
    assert_eq!(events, normalize_body(body.to_string().into_bytes()).unwrap(), "replay gives identical events");
}

#[test]
fn garbage_bodies_are_errors_not_panics() {
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        b"\xff".to_vec(),
        b"{}".to_vec(),
        json!({"event-data": []}).to_string().into_bytes(),
        json!({"event-data": {"recipient": "a@x.com"}}).to_string().into_bytes(),
        json!({"event-data": {"event": "opened", "recipient": "a@x.com"}}).to_string().into_bytes(),
        json!({"event-data": {"event": "opened", "recipient": "a@x.com", "message": {"headers": {"message-id": "<>"}}}})
            .to_string()
            .into_bytes(),
        json!({"event-data": {"event": "opened", "recipient": "a@x.com", "timestamp": "soon", "message": {"headers": {"message-id": "m"}}}})
            .to_string()
            .into_bytes(),
        json!({"event-data": {"event": "opened", "recipient": "a@x.com", "timestamp": 1e300, "message": {"headers": {"message-id": "m"}}}})
            .to_string()
            .into_bytes(),
        json!({"event-data": {"event": "rejected", "message": {"headers": {"message-id": "m"}}}}).to_string().into_bytes(),
    ];
    for body in bodies {
        assert!(normalize_body(body.clone()).is_err(), "{}", String::from_utf8_lossy(&body));
    }
}

// ---- verification ----

const NOW_SECS: i64 = 1_700_000_000;
const KEY: &str = "key-acme-signing";

/// A fixture re-signed as Mailgun would sign it now.
fn signed_body(name: &str, key: &str, timestamp: i64) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
    // A fresh token per body, as Mailgun sends: a token is accepted once (replays are refused).
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let token = format!("a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3{:03}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let token = token.as_str();
    let signature = hex::encode(hmac_sha256(key.as_bytes(), &[timestamp.to_string().as_bytes(), token.as_bytes()]));
    v["signature"] = json!({"timestamp": timestamp.to_string(), "token": token, "signature": signature});
    serde_json::to_vec(&v).unwrap()
}

fn creds(key: &str) -> TenantCredentials {
    TenantCredentials { mailgun: Some(super::Credentials { signing_key: key.into() }), ..Default::default() }
}

fn verify_body(body: &[u8], creds: &TenantCredentials) -> Result<Verified, VerifyError> {
    let headers = BTreeMap::new();
    Mailgun.verify(&RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/webhooks/mailgun/acme"), url: "/webhooks/mailgun/acme", headers: &headers, body, now_ms: NOW_SECS * 1000 }, creds, crate::providers::testkit::ctx())
}

fn assert_refused(result: Result<Verified, VerifyError>, want: VerifyError, status: u16) {
    let err = result.unwrap_err();
    assert_eq!(err.http_status(), status, "{err}");
    assert_eq!(err, want);
}

#[test]
fn a_signed_request_is_accepted_and_keyed_by_message() {
    let body = signed_body("delivered.json", KEY, NOW_SECS);
    let ok = verify_body(&body, &creds(KEY)).unwrap();
    assert_eq!(ok, Verified { partition_key: "20180622182958.1.48906CB188F1A454@exmple.org".into(), control: None });
    // A numeric timestamp is signed as its decimal text.
    let mut v: Value = serde_json::from_slice(&signed_body("delivered.json", KEY, NOW_SECS)).unwrap();
    v["signature"]["timestamp"] = json!(NOW_SECS);
    assert!(verify_body(&serde_json::to_vec(&v).unwrap(), &creds(KEY)).is_ok());
}

#[test]
fn tampered_signature_fields_are_refused() {
    // Mailgun's HMAC covers timestamp and token only, so those are what tampering can be seen in.
    let body = signed_body("delivered.json", KEY, NOW_SECS);
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    v["signature"]["token"] = json!("b8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0");
    assert_refused(verify_body(&serde_json::to_vec(&v).unwrap(), &creds(KEY)), VerifyError::BadSignature, 403);
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    v["signature"]["timestamp"] = json!((NOW_SECS - 1).to_string());
    assert_refused(verify_body(&serde_json::to_vec(&v).unwrap(), &creds(KEY)), VerifyError::BadSignature, 403);
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    v["signature"]["signature"] = json!("not hex");
    assert_refused(verify_body(&serde_json::to_vec(&v).unwrap(), &creds(KEY)), VerifyError::BadSignature, 403);
}

#[test]
fn a_wrong_key_or_another_tenants_key_is_refused() {
    let body = signed_body("delivered.json", "key-guessed", NOW_SECS);
    assert_refused(verify_body(&body, &creds(KEY)), VerifyError::BadSignature, 403);
    let for_globex = signed_body("delivered.json", "key-globex-signing", NOW_SECS);
    assert!(verify_body(&for_globex, &creds("key-globex-signing")).is_ok());
    assert_refused(verify_body(&for_globex, &creds(KEY)), VerifyError::BadSignature, 403);
}

#[test]
fn missing_signature_fields_are_refused() {
    let body = signed_body("delivered.json", KEY, NOW_SECS);
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    v.as_object_mut().unwrap().remove("signature");
    assert_refused(verify_body(&serde_json::to_vec(&v).unwrap(), &creds(KEY)), VerifyError::MissingHeader(verify::FIELD_SIGNATURE), 401);
    for (field, name) in [("timestamp", verify::FIELD_TIMESTAMP), ("token", verify::FIELD_TOKEN), ("signature", verify::FIELD_HMAC)] {
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        v["signature"].as_object_mut().unwrap().remove(field);
        assert_refused(verify_body(&serde_json::to_vec(&v).unwrap(), &creds(KEY)), VerifyError::MissingHeader(name), 401);
    }
}

#[test]
fn stale_and_future_timestamps_are_refused() {
    for ts in [NOW_SECS - 301, NOW_SECS + 301] {
        let body = signed_body("delivered.json", KEY, ts);
        assert_refused(verify_body(&body, &creds(KEY)), VerifyError::StaleTimestamp(300), 403);
    }
    // The documented example payload is from 2018.
    assert_refused(verify_body(&fixture("delivered.json"), &creds(KEY)), VerifyError::StaleTimestamp(300), 403);
}

#[test]
fn unconfigured_tenants_and_unreadable_bodies_are_refused() {
    let body = signed_body("delivered.json", KEY, NOW_SECS);
    assert_refused(verify_body(&body, &TenantCredentials::default()), VerifyError::NotConfigured, 401);
    assert!(matches!(verify_body(b"{", &creds(KEY)), Err(VerifyError::Malformed(_))));
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    v["signature"]["timestamp"] = json!("yesterday");
    assert!(matches!(verify_body(&serde_json::to_vec(&v).unwrap(), &creds(KEY)), Err(VerifyError::Malformed(_))));
}

/// Mailgun's signature does not cover `event-data`: a token already accepted is refused when it
/// comes again within its window, with the same or another body; other tenants are apart.
#[test]
fn replayed_tokens_are_refused() {
    let body = signed_body("delivered.json", KEY, NOW_SECS);
    assert!(verify_body(&body, &creds(KEY)).is_ok());
    assert_refused(verify_body(&body, &creds(KEY)), VerifyError::Replayed, 403);
    let mut forged: Value = serde_json::from_slice(&body).unwrap();
    forged["event-data"]["recipient"] = json!("someone-else@example.com");
    assert_refused(verify_body(&serde_json::to_vec(&forged).unwrap(), &creds(KEY)), VerifyError::Replayed, 403);
    let headers = BTreeMap::new();
    let other = RawRequest { tenant: "globex", route: crate::providers::testkit::route_of("/webhooks/mailgun/globex"), url: "/webhooks/mailgun/globex", headers: &headers, body: &body, now_ms: NOW_SECS * 1000 };
    assert!(Mailgun.verify(&other, &creds(KEY), crate::providers::testkit::ctx()).is_ok(), "tokens are remembered per tenant");
}

/// Before the signature check only the `signature` object is read: an `event-data` that is not
/// even an object does not stop verification (and is left to the normalizer).
#[test]
fn event_data_is_not_parsed_before_the_check() {
    let mut v: Value = serde_json::from_slice(&signed_body("delivered.json", KEY, NOW_SECS)).unwrap();
    v["event-data"] = json!([1, [2, [3]], "x"]);
    assert!(verify_body(&serde_json::to_vec(&v).unwrap(), &creds(KEY)).is_ok());
}

/// Issue 14: the borrowed mapping (`map.rs`) agrees with the `Value` mapping it replaced
/// (`map_before.rs`) on every fixture and on every fixture with any one value replaced by one
/// of another JSON type, or a key repeated: same draft, recipients and errors, same partition key.
#[test]
fn the_borrowed_mapping_agrees_with_the_value_mapping_on_odd_inputs() {
    use crate::providers::testkit::{differential, fixture_docs, shown};
    let opts = NormalizeOptions::default();
    let mut docs: Vec<Value> = Vec::new();
    for doc in fixture_docs(&fixtures()) {
        // and the event alone, so that its own keys are repeated too
        if let Some(ed) = doc.get("event-data") {
            docs.push(json!({ "event-data": ed.clone() }));
            for (key, value) in [("event", json!("rejected")), ("event", json!("failed")), ("recipient", json!(""))] {
                let mut ed = ed.clone();
                ed[key] = value;
                docs.push(json!({ "event-data": ed }));
            }
        }
        docs.push(doc);
    }
    let checked = differential(
        &docs,
        |b| (shown(map::draft(b, &opts)), map::message_id_of(b)),
        |b| (shown(map_before::draft(b, &opts)), map_before::message_id_of(b)),
    );
    assert!(checked > 5_000, "{checked}");
}
