use schemas::Event;
use super::*;
use crate::providers::testkit::{check_fixtures, envelope};
use schemas::{Channel, EventType};
use std::collections::BTreeMap;
use std::path::Path;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/twilio/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap()
}

fn normalize_body(body: &[u8]) -> Result<Vec<Event>, NormalizeError> {
    let env = envelope("twilio", body.to_vec(), BTreeMap::new());
    crate::providers::testkit::all_events(Twilio.normalize(&RawRecord::new(&env, "raw", 0, 0), &NormalizeOptions::default()))
}

#[test]
fn every_fixture_maps_to_its_expected_events() {
    let n = check_fixtures("twilio", &fixtures());
    assert!(n >= 13, "only {n} fixtures checked");
}

/// The worked example of Twilio's "Webhooks security" page.
#[test]
fn signature_matches_twilios_published_example() {
    let params: Vec<(String, String)> = [
        ("To", "+18005551212"),
        ("CallSid", "CA1234567890ABCDE"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("Caller", "+12349013030"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = signed_url("https://mycompany.com/myapp.php", "/webhooks/twilio/acme?foo=1&bar=2");
    assert_eq!(url, "https://mycompany.com/myapp.php?foo=1&bar=2");
    assert_eq!(signature("12345", &url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    // A configured URL with its own query is used as is.
    assert_eq!(signed_url("https://x.io/a?k=1", "/webhooks/twilio/acme?foo=1"), "https://x.io/a?k=1");
    assert_eq!(signed_url("https://x.io/a", "/webhooks/twilio/acme"), "https://x.io/a");
}

const PUBLIC_URL: &str = "https://hooks.example.com/webhooks/twilio/acme";

fn creds(token: &str) -> TenantCredentials {
    TenantCredentials { twilio: Some(super::Credentials { auth_token: token.into(), public_url: PUBLIC_URL.into() }), ..Default::default() }
}

fn signed_headers(token: &str, url: &str, body: &[u8]) -> BTreeMap<String, String> {
    let params = map::parse(body).unwrap();
    [(HEADER_SIGNATURE.to_string(), signature(token, url, &params))].into()
}

#[test]
fn verify_checks_the_signature() {
    let body = fixture("sms_delivered.txt");
    let acme = creds("acme-token");
    let headers = signed_headers("acme-token", &format!("{PUBLIC_URL}?tag=x"), &body);
    let req = RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/webhooks/twilio/acme?tag=x"), url: "/webhooks/twilio/acme?tag=x", headers: &headers, body: &body, now_ms: 0 };
    let ok = Twilio.verify(&req, &acme, crate::providers::testkit::ctx()).unwrap();
    assert_eq!(ok.partition_key, "SM3ba1e3dca6b8e7a0ca9c1e0b0c8d7e6f");

    let tampered = String::from_utf8(body.clone()).unwrap().replace("delivered", "failed").into_bytes();
    let err = Twilio.verify(&RawRequest { body: &tampered, ..req }, &acme, crate::providers::testkit::ctx()).unwrap_err();
    let status = err.http_status();
    assert_eq!((err, status), (VerifyError::BadSignature, 403));

    // Another query string than the one signed.
    assert_eq!(Twilio.verify(&RawRequest { url: "/webhooks/twilio/acme?tag=y", ..req }, &acme, crate::providers::testkit::ctx()), Err(VerifyError::BadSignature));

    assert_eq!(Twilio.verify(&req, &creds("wrong-token"), crate::providers::testkit::ctx()), Err(VerifyError::BadSignature));

    // Signed with another tenant's token.
    let other = signed_headers("globex-token", &format!("{PUBLIC_URL}?tag=x"), &body);
    assert_eq!(Twilio.verify(&RawRequest { headers: &other, ..req }, &acme, crate::providers::testkit::ctx()), Err(VerifyError::BadSignature));

    let none = BTreeMap::new();
    let err = Twilio.verify(&RawRequest { headers: &none, ..req }, &acme, crate::providers::testkit::ctx()).unwrap_err();
    let status = err.http_status();
    assert_eq!((err, status), (VerifyError::MissingHeader(HEADER_SIGNATURE), 401));

    assert_eq!(Twilio.verify(&req, &TenantCredentials::default(), crate::providers::testkit::ctx()), Err(VerifyError::NotConfigured));
}

#[test]
fn whatsapp_recipient_loses_its_prefix() {
    let events = normalize_body(&fixture("whatsapp_read.txt")).unwrap();
    assert_eq!(events[0].channel, Channel::Whatsapp);
    assert_eq!(events[0].recipient, "+15558675310");
    assert_eq!(events[0].event_type, EventType::Read);
}

#[test]
fn every_status_has_a_distinct_event_id_for_one_message() {
    let ids: std::collections::HashSet<_> = ["sms_queued.txt", "sms_sent.txt", "sms_delivered.txt"]
        .iter()
        .map(|f| normalize_body(&fixture(f)).unwrap()[0].event_id.clone())
        .collect();
    assert_eq!(ids.len(), 3);
    let keys: std::collections::HashSet<_> = ["sms_queued.txt", "sms_sent.txt", "sms_delivered.txt"]
        .iter()
        .map(|f| normalize_body(&fixture(f)).unwrap()[0].delivery_key.clone())
        .collect();
    assert_eq!(keys.len(), 1, "one delivery");
}

#[test]
fn unknown_status_and_bad_price_are_kept() {
    let events = normalize_body(b"MessageSid=SM1&MessageStatus=canceled&To=%2B1555&Price=abc&PriceUnit=USD").unwrap();
    assert_eq!(events[0].event_type, EventType::Unknown);
    assert_eq!(events[0].provider_event_name, "canceled");
    assert_eq!(events[0].cost, None);
}

#[test]
fn garbage_bodies_are_errors_not_panics() {
    for body in [&b""[..], b"MessageStatus=sent&To=%2B1", b"MessageSid=SM1&To=%2B1", b"MessageSid=SM1&MessageStatus=sent", b"%ff%fe=\xff", b"{}"] {
        assert!(normalize_body(body).is_err(), "{}", String::from_utf8_lossy(body));
    }
}

/// A body with more fields than `max_form_fields` is refused before it is parsed or checked.
#[test]
fn too_many_form_fields_are_refused_before_parsing() {
    let limit = crate::providers::edge_limits::EdgeLimits::default().max_form_fields;
    let body: Vec<u8> = (0..=limit).map(|i| format!("f{i}=x")).collect::<Vec<_>>().join("&").into_bytes();
    let headers = signed_headers("acme-token", PUBLIC_URL, &body);
    let req = RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/webhooks/twilio/acme"), url: "/webhooks/twilio/acme", headers: &headers, body: &body, now_ms: 0 };
    let err = Twilio.verify(&req, &creds("acme-token"), crate::providers::testkit::ctx()).unwrap_err();
    assert!(matches!(&err, VerifyError::Malformed(m) if m.contains("max_form_fields")), "{err:?}");
    // One field fewer is read and checked (and fails only for its missing MessageSid).
    let body: Vec<u8> = (0..limit).map(|i| format!("f{i}=x")).collect::<Vec<_>>().join("&").into_bytes();
    let headers = signed_headers("acme-token", PUBLIC_URL, &body);
    let err = Twilio.verify(&RawRequest { body: &body, headers: &headers, ..req }, &creds("acme-token"), crate::providers::testkit::ctx()).unwrap_err();
    assert!(matches!(&err, VerifyError::Malformed(m) if m.contains("MessageSid")), "{err:?}");
}
