use schemas::Event;
use super::*;
use crate::providers::testkit::envelope;
use schemas::{EventType, RawEnvelope};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/sender/fixtures")
}

/// A raw record as ingest stores it for `/v1/sends/{tenant}` or `/v1/events/{tenant}`.
fn sender_envelope(route: &str, body: Vec<u8>) -> RawEnvelope {
    let mut env = envelope("sender", body, BTreeMap::new());
    env.url = route.replace("{tenant}", "acme");
    env.route = crate::providers::testkit::route_of(&env.url).clone();
    env
}

fn route_of(name: &str) -> &'static str {
    if name.starts_with("sends_") {
        "/v1/sends/{tenant}"
    } else {
        "/v1/events/{tenant}"
    }
}

fn normalize(route: &str, body: &[u8]) -> Result<Vec<Event>, NormalizeError> {
    let env = sender_envelope(route, body.to_vec());
    crate::providers::testkit::all_events(Sender.normalize(&RawRecord::new(&env, "raw", 0, 7), &NormalizeOptions::default()))
}

/// Like `testkit::check_fixtures`, but with the route in the envelope and the provider
/// taken from each item (these events carry the delivery provider, not `sender`).
#[test]
fn every_fixture_maps_to_its_expected_events() {
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(fixtures()).unwrap().flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".expected.jsonl") else { continue };
        let body = std::fs::read(fixtures().join(format!("{stem}.json"))).unwrap();
        let items: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        let events = normalize(route_of(stem), &body).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let expected: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), expected.len(), "{stem}: number of events");
        for (i, ((event, want), item)) in events.iter().zip(&expected).zip(&items).enumerate() {
            let got = serde_json::to_value(event).unwrap();
            for (field, value) in want.as_object().unwrap() {
                assert_eq!(&got[field], value, "{stem}: event {i}, field `{field}`");
            }
            assert_eq!(Some(event.provider.as_str()), item["provider"].as_str(), "{stem}: event {i} provider");
            assert_eq!(
                event.delivery_key,
                ids::delivery_key("acme", &event.provider, &event.provider_message_id, &event.recipient),
                "{stem}: event {i} joins its provider's delivery"
            );
        }
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} fixtures checked");
}

#[test]
fn a_send_record_joins_the_providers_own_events() {
    // The SES fixture `event_delivery.json` reports this message to this recipient.
    let sends = normalize("/v1/sends/{tenant}", &std::fs::read(fixtures().join("sends_email.json")).unwrap()).unwrap();
    let ses_key = ids::delivery_key("acme", "ses", "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000", "recipient@example.com");
    assert_eq!(sends[0].delivery_key, ses_key);
    assert_eq!(sends[0].event_type, EventType::Queued);
}

#[test]
fn replay_gives_identical_events_and_items_distinct_ids() {
    let body = std::fs::read(fixtures().join("events_app.json")).unwrap();
    let a = normalize("/v1/events/{tenant}", &body).unwrap();
    assert_eq!(a, normalize("/v1/events/{tenant}", &body).unwrap());
    let ids: std::collections::HashSet<_> = a.iter().map(|e| &e.event_id).collect();
    assert_eq!(ids.len(), a.len());
}

fn req<'a>(url: &'a str, headers: &'a BTreeMap<String, String>, body: &'a [u8]) -> RawRequest<'a> {
    RawRequest { tenant: "acme", route: crate::providers::testkit::route_of(url), url, headers, body, now_ms: 0 }
}

fn key(k: &str) -> BTreeMap<String, String> {
    [(API_KEY_HEADER.to_string(), k.to_string())].into()
}

#[test]
fn verify_checks_the_api_key() {
    let body = std::fs::read(fixtures().join("sends_email.json")).unwrap();
    let creds = TenantCredentials { api_key: Some("acme-key".into()), ..Default::default() };
    let good = key("acme-key");
    let ok = Sender.verify(&req("/v1/sends/acme", &good, &body), &creds, crate::providers::testkit::ctx()).unwrap();
    assert_eq!(ok.partition_key, "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000");

    let wrong = key("globex-key");
    let err = Sender.verify(&req("/v1/sends/acme", &wrong, &body), &creds, crate::providers::testkit::ctx()).unwrap_err();
    assert_eq!(err.http_status(), 401);
    assert_eq!(err, VerifyError::BadCredentials);
    let none = BTreeMap::new();
    assert_eq!(Sender.verify(&req("/v1/sends/acme", &none, &body), &creds, crate::providers::testkit::ctx()), Err(VerifyError::MissingHeader(API_KEY_HEADER)));
    assert_eq!(Sender.verify(&req("/v1/sends/acme", &good, &body), &TenantCredentials::default(), crate::providers::testkit::ctx()), Err(VerifyError::NotConfigured));

    // Send records are not app events.
    assert!(matches!(Sender.verify(&req("/v1/events/acme", &good, &body), &creds, crate::providers::testkit::ctx()), Err(VerifyError::Malformed(_))));
    assert!(matches!(Sender.verify(&req("/webhooks/sender/acme", &good, &body), &creds, crate::providers::testkit::ctx()), Err(VerifyError::Malformed(_))));
}

fn malformed(url: &str, body: &str) -> String {
    let creds = TenantCredentials { api_key: Some("k".into()), ..Default::default() };
    let h = key("k");
    match Sender.verify(&req(url, &h, body.as_bytes()), &creds, crate::providers::testkit::ctx()) {
        Err(VerifyError::Malformed(reason)) => reason,
        other => panic!("{body}: {other:?}"),
    }
}

#[test]
fn verify_names_the_first_bad_item() {
    let ok = r#"{"channel":"email","provider":"ses","provider_message_id":"m","recipient":"a@example.com"}"#;
    let sends = |bad: &str| malformed("/v1/sends/acme", &format!("[{ok},{ok},{ok},{bad}]"));
    assert_eq!(sends(r#"{"channel":"email","provider":"ses","provider_message_id":"m"}"#), "item 3: missing field `recipient`");
    assert!(sends(r#"{"channel":"fax","provider":"ses","provider_message_id":"m","recipient":"a"}"#).starts_with("item 3: unknown variant `fax`"));
    assert_eq!(
        sends(r#"{"channel":"email","provider":"pigeon","provider_message_id":"m","recipient":"a"}"#),
        "item 3: `provider` is not a delivery provider: pigeon"
    );
    assert_eq!(
        sends(r#"{"channel":"email","provider":"ses","provider_message_id":"m","recipient":"a","sent_at":"2024-13-01"}"#),
        "item 3: `sent_at` is not an RFC 3339 time: 2024-13-01"
    );
    assert!(sends(r#"{"channel":"email","provider":"ses","provider_message_id":"m","recipient":"a","cost":{"amount":0.0075,"unit":"USD"}}"#)
        .contains("decimal string"));
    assert!(sends(r#"{"channel":"email","provider":"ses","provider_message_id":"m","recipient":"a","message_class":"spam"}"#)
        .starts_with("item 3: unknown variant `spam`"));
    assert_eq!(sends(r#"{"channel":"email","provider":"ses","provider_message_id":"m","recipient":" "}"#), "item 3: `recipient` must not be empty");
    assert_eq!(sends(r#"{"channel":"email","provider":"ses","provider_message_id":"m","recipient":"a","costs":1}"#), "item 3: unknown field `costs`");

    let event = r#"{"event":"opened","channel":"email","provider":"ses","provider_message_id":"m","recipient":"a@example.com"}"#;
    let events = |bad: &str| malformed("/v1/events/acme", &format!("[{event},{bad}]"));
    assert_eq!(events(r#"{"channel":"email","provider":"ses","provider_message_id":"m","recipient":"a"}"#), "item 1: missing field `event`");
    assert_eq!(
        events(r#"{"event":"opened","channel":"email","provider":"ses","provider_message_id":"m","recipient":"a","occurred_at":"later"}"#),
        "item 1: `occurred_at` is not an RFC 3339 time: later"
    );
    assert_eq!(malformed("/v1/events/acme", "{}"), "body must be a JSON array of items");
}

#[test]
fn garbage_bodies_are_errors_not_panics() {
    for route in ["/v1/sends/{tenant}", "/v1/events/{tenant}"] {
        for body in [&b""[..], b"[]", b"{", b"[1,2]", b"\xff", b"[{}]", b"[null]"] {
            assert!(normalize(route, body).is_err(), "{route} {}", String::from_utf8_lossy(body));
        }
    }
    // A record stored on a route the sender does not have is the envelope's fault.
    let mut env = envelope("sender", b"[]".to_vec(), BTreeMap::new());
    env.route = schemas::Route::Webhook;
    let err = crate::providers::testkit::all_events(Sender.normalize(&RawRecord::new(&env, "raw", 0, 0), &NormalizeOptions::default())).unwrap_err();
    assert_eq!(err.code(), "bad_envelope");
}

/// The published JSON Schemas and the parsers accept the same keys, and every fixture
/// fits its schema's keys (a full schema validation of the fixtures was run with Python
/// `jsonschema` when they were written; see fixtures/SOURCES.md).
#[test]
fn published_schemas_match_the_parsers() {
    use items::Item;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/json");
    for (file, def, fields, required, fixtures_prefix) in [
        ("send_records.schema.json", "send_record", records::SendRecord::FIELDS, &["channel", "provider", "provider_message_id", "recipient"][..], "sends_"),
        ("app_events.schema.json", "app_event", app_events::AppEvent::FIELDS, &["event", "channel", "provider", "provider_message_id", "recipient"][..], "events_"),
    ] {
        let schema: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join(file)).unwrap()).unwrap();
        let item = &schema["$defs"][def];
        let mut props: Vec<&str> = item["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut want: Vec<&str> = fields.to_vec();
        props.sort();
        want.sort();
        assert_eq!(props, want, "{file}: properties");
        let req: Vec<&str> = item["required"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(req, required, "{file}: required");
        assert_eq!(item["additionalProperties"], false, "{file}");

        for entry in std::fs::read_dir(fixtures()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !(name.starts_with(fixtures_prefix) && name.ends_with(".json")) {
                continue;
            }
            let body: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
            for (i, it) in body.iter().enumerate() {
                assert!(it.keys().all(|k| fields.contains(&k.as_str())), "{name}: item {i} has a key outside {file}");
                assert!(required.iter().all(|k| it.contains_key(*k)), "{name}: item {i} lacks a required key");
            }
        }
    }
}
