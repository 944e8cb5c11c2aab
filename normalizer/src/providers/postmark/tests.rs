use schemas::Event;
use super::*;
use crate::providers::testkit::{check_fixtures, envelope};
use base64::Engine;
use schemas::{BounceClass, EventType};
use std::collections::BTreeMap;
use std::path::Path;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/postmark/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap()
}

fn normalize_body(body: &[u8]) -> Result<Vec<Event>, NormalizeError> {
    let env = envelope("postmark", body.to_vec(), BTreeMap::new());
    crate::providers::testkit::all_events(Postmark.normalize(&RawRecord::new(&env, "raw", 0, 0), &NormalizeOptions::default()))
}

#[test]
fn every_fixture_maps_to_its_expected_events() {
    let n = check_fixtures("postmark", &fixtures());
    assert!(n >= 10, "only {n} fixtures checked");
}

#[test]
fn bounce_types_follow_the_documented_table() {
    use map::{bounce_meaning, BounceMeaning::*};
    assert_eq!(bounce_meaning(Some("HardBounce"), false), Bounce(BounceClass::Hard));
    assert_eq!(bounce_meaning(Some("BadEmailAddress"), false), Bounce(BounceClass::Hard));
    assert_eq!(bounce_meaning(Some("ManuallyDeactivated"), false), Bounce(BounceClass::Hard));
    assert_eq!(bounce_meaning(Some("SoftBounce"), false), Bounce(BounceClass::Soft));
    assert_eq!(bounce_meaning(Some("Transient"), false), Bounce(BounceClass::Soft));
    assert_eq!(bounce_meaning(Some("DnsError"), false), Bounce(BounceClass::Soft));
    assert_eq!(bounce_meaning(Some("AutoResponder"), false), Bounce(BounceClass::Soft));
    assert_eq!(bounce_meaning(Some("TemplateRenderingFailed"), false), SendFailure);
    assert_eq!(bounce_meaning(Some("Unknown"), true), Bounce(BounceClass::Undetermined));
    assert_eq!(bounce_meaning(Some("SomethingNew"), true), Bounce(BounceClass::Hard));
    assert_eq!(bounce_meaning(None, false), Bounce(BounceClass::Undetermined));
    let codes: std::collections::HashSet<_> = map::BOUNCE_TYPES.iter().map(|(_, c, _)| c).collect();
    assert_eq!(codes.len(), map::BOUNCE_TYPES.len(), "type codes are unique");
}

#[test]
fn template_rendering_failure_is_a_failed_send() {
    let body = br#"{"RecordType":"Bounce","ID":7,"Type":"TemplateRenderingFailed","TypeCode":100010,"MessageID":"m","Email":"a@example.com","BouncedAt":"2019-11-05T16:33:54Z"}"#;
    let events = normalize_body(body).unwrap();
    assert_eq!(events[0].event_type, EventType::Failed);
    assert_eq!(events[0].bounce_class, None);
    assert_eq!(events[0].error_code.as_deref(), Some("TemplateRenderingFailed"));
}

#[test]
fn missing_optional_fields_do_not_fail_a_record() {
    let events = normalize_body(br#"{"RecordType":"Open","MessageID":"m","Recipient":"a@example.com","Geo":{},"Metadata":null}"#).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].time_source, schemas::TimeSource::Received);
    assert_eq!(events[0].ip, None);
}

#[test]
fn garbage_bodies_are_errors_not_panics() {
    for body in [
        &b""[..],
        b"[]",
        b"{",
        b"\xff",
        b"{\"MessageID\":\"m\"}",
        b"{\"RecordType\":\"Delivery\",\"Recipient\":\"a@example.com\"}",
        b"{\"RecordType\":\"Delivery\",\"MessageID\":\"m\"}",
        b"{\"RecordType\":\"Delivery\",\"MessageID\":\"m\",\"Recipient\":\"a@x\",\"DeliveredAt\":\"yesterday\"}",
        b"{\"RecordType\":7}",
    ] {
        assert!(normalize_body(body).is_err(), "{}", String::from_utf8_lossy(body));
    }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

fn creds(user: &str, password: &str) -> TenantCredentials {
    TenantCredentials { postmark: Some(super::Credentials { user: user.into(), password: password.into() }), ..Default::default() }
}

#[test]
fn verify_checks_basic_auth() {
    let body = fixture("bounce_hard.json");
    let acme = creds("acme-hook", "s3cret:with-colon");
    let with = |auth: Option<String>| -> BTreeMap<String, String> { auth.map(|a| (HEADER_AUTHORIZATION.to_string(), a)).into_iter().collect() };

    let good = with(Some(basic("acme-hook", "s3cret:with-colon")));
    let req = RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/webhooks/postmark/acme"), url: "/webhooks/postmark/acme", headers: &good, body: &body, now_ms: 0 };
    let ok = Postmark.verify(&req, &acme, crate::providers::testkit::ctx()).unwrap();
    assert_eq!(ok.partition_key, "883953f4-6105-42a2-a16a-77a8eac79483");

    let wrong = with(Some(basic("acme-hook", "guess")));
    let err = Postmark.verify(&RawRequest { headers: &wrong, ..req }, &acme, crate::providers::testkit::ctx()).unwrap_err();
    let status = err.http_status();
    assert_eq!((err, status), (VerifyError::BadCredentials, 401));

    // Another tenant's (valid) credentials are not this tenant's.
    let other = with(Some(basic("globex-hook", "globex-pass")));
    assert_eq!(Postmark.verify(&RawRequest { headers: &other, ..req }, &acme, crate::providers::testkit::ctx()), Err(VerifyError::BadCredentials));

    let none = with(None);
    let err = Postmark.verify(&RawRequest { headers: &none, ..req }, &acme, crate::providers::testkit::ctx()).unwrap_err();
    let status = err.http_status();
    assert_eq!((err, status), (VerifyError::MissingHeader(HEADER_AUTHORIZATION), 401));

    for bad in ["Bearer abc", "Basic !!!", "Basic", "Basic YWNtZS1ob29r"] {
        let h = with(Some(bad.to_string()));
        assert_eq!(Postmark.verify(&RawRequest { headers: &h, ..req }, &acme, crate::providers::testkit::ctx()), Err(VerifyError::BadCredentials), "{bad}");
    }

    assert_eq!(Postmark.verify(&req, &TenantCredentials::default(), crate::providers::testkit::ctx()), Err(VerifyError::NotConfigured));

    let tampered = b"{\"RecordType\":".to_vec();
    let err = Postmark.verify(&RawRequest { body: &tampered, ..req }, &acme, crate::providers::testkit::ctx()).unwrap_err();
    assert_eq!(err.http_status(), 400);
}

/// Issue 14: the borrowed mapping (`map.rs`) agrees with the `Value` mapping it replaced
/// (`map_before.rs`) on every fixture and on every fixture with any one value replaced by one
/// of another JSON type, or a key repeated: same draft, recipient and errors, same partition key.
#[test]
fn the_borrowed_mapping_agrees_with_the_value_mapping_on_odd_inputs() {
    use crate::providers::testkit::{differential, fixture_docs, shown};
    use serde_json::json;
    let opts = NormalizeOptions::default();
    let mut docs = Vec::new();
    for doc in fixture_docs(&fixtures()) {
        for (key, value) in [("ID", json!(-3)), ("ID", json!(1.0)), ("ID", json!("")), ("Metadata", json!({"broadcast": 1, "k": true, "n": null, "f": 2.5}))] {
            let mut d = doc.clone();
            d[key] = value;
            docs.push(d);
        }
        docs.push(doc);
    }
    let checked = differential(
        &docs,
        |b| (shown(map::parse(b).and_then(|r| map::draft(&r, &opts))), map::parse(b).ok().map(|r| map::message_id(&r).map(str::to_string))),
        |b| (shown(map_before::parse(b).and_then(|r| map_before::draft(&r, &opts))), map_before::parse(b).ok().map(|r| map_before::message_id(&r).map(str::to_string))),
    );
    assert!(checked > 5_000, "{checked}");
}
