use schemas::Event;
use super::*;
use crate::providers::testkit::{check_fixtures, envelope};
use schemas::{BounceClass, EventType};
use std::collections::BTreeMap;
use std::path::Path;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/ses/fixtures").join(name)).unwrap()
}

fn normalize_fixture(name: &str) -> Result<Vec<Event>, NormalizeError> {
    let env = crate::providers::testkit::fixture_envelope("ses", name, fixture(name));
    crate::providers::testkit::all_events(Ses.normalize(&RawRecord::new(&env, "raw", 1, 9), &NormalizeOptions::default()))
}

#[test]
fn every_fixture_maps_to_its_expected_events() {
    let n = check_fixtures("ses", &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/ses/fixtures"));
    assert!(n >= 17, "only {n} fixtures checked");
}

#[test]
fn multi_recipient_bounce_gives_one_event_per_recipient_with_attribution() {
    let events = normalize_fixture("event_bounce_multi.json").unwrap();
    assert_eq!(events.len(), 3);
    let keys: std::collections::HashSet<_> = events.iter().map(|e| e.delivery_key.clone()).collect();
    assert_eq!(keys.len(), 3, "distinct deliveries");
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(ids.len(), 3, "distinct event ids");
    for e in &events {
        assert_eq!(e.event_type, EventType::Bounced);
        assert_eq!(e.bounce_class, Some(BounceClass::Hard));
        assert_eq!(e.broadcast_id.as_deref(), Some("spring-sale"));
        assert_eq!(e.contact_id.as_deref(), Some("c-42"));
        assert_eq!(e.template_key.as_deref(), Some("welcome-v2"));
        assert_eq!(e.metadata.get("campaign").map(String::as_str), Some("spring"));
        assert_eq!((e.raw_topic.as_str(), e.raw_partition, e.raw_offset), ("raw", 1, 9));
        assert_eq!(e.time_source, schemas::TimeSource::Provider);
    }
}

#[test]
fn replay_gives_identical_events() {
    assert_eq!(normalize_fixture("event_delivery.json").unwrap(), normalize_fixture("event_delivery.json").unwrap());
}

#[test]
fn subscription_confirmation_gives_no_events() {
    assert!(normalize_fixture("subscription_confirmation.json").unwrap().is_empty());
}

#[test]
fn malformed_message_is_an_error_with_a_reason() {
    let err = normalize_fixture("malformed_message.json").unwrap_err();
    assert_eq!(err.code(), "invalid_json");
    assert!(err.to_string().contains("SNS Message"), "{err}");
}

#[test]
fn garbage_bodies_are_errors_not_panics() {
    for body in [&b""[..], b"{", b"[]", b"{\"Type\":\"Notification\"}", b"\xff\xfe", b"{\"Type\":\"Bogus\",\"MessageId\":\"1\",\"TopicArn\":\"a\",\"Message\":\"{}\",\"Timestamp\":\"x\"}"] {
        let env = envelope("ses", body.to_vec(), BTreeMap::new());
        assert!(crate::providers::testkit::all_events(Ses.normalize(&RawRecord::new(&env, "raw", 0, 0), &NormalizeOptions::default())).is_err());
    }
}

fn request_headers(body: &[u8]) -> BTreeMap<String, String> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    [
        (sns::HEADER_MESSAGE_TYPE.to_string(), v["Type"].as_str().unwrap().to_string()),
        (sns::HEADER_MESSAGE_ID.to_string(), v["MessageId"].as_str().unwrap().to_string()),
    ]
    .into()
}

#[test]
fn verify_checks_headers_against_the_body() {
    let body = fixture("event_delivery.json");
    let headers = request_headers(&body);
    let req = RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/webhooks/ses/acme"), url: "/webhooks/ses/acme", headers: &headers, body: &body, now_ms: 0 };
    let creds = creds_of(vec![FIXTURE_TOPIC.into()], None, Some(false));
    let ok = Ses.verify(&req, &creds, crate::providers::testkit::ctx()).unwrap();
    assert_eq!(ok.partition_key, "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000");
    assert_eq!(ok.control, None);

    let mut wrong = headers.clone();
    wrong.insert(sns::HEADER_MESSAGE_ID.into(), "other".into());
    let req2 = RawRequest { headers: &wrong, ..req };
    assert_eq!(Ses.verify(&req2, &creds, crate::providers::testkit::ctx()), Err(VerifyError::HeaderMismatch(sns::HEADER_MESSAGE_ID)));

    let mut wrong_type = headers.clone();
    wrong_type.insert(sns::HEADER_MESSAGE_TYPE.into(), "SubscriptionConfirmation".into());
    assert_eq!(Ses.verify(&RawRequest { headers: &wrong_type, ..req }, &creds, crate::providers::testkit::ctx()), Err(VerifyError::HeaderMismatch(sns::HEADER_MESSAGE_TYPE)));

    let none = BTreeMap::new();
    assert_eq!(Ses.verify(&RawRequest { headers: &none, ..req }, &creds, crate::providers::testkit::ctx()), Err(VerifyError::MissingHeader(sns::HEADER_MESSAGE_TYPE)));

    let pinned = creds_of(vec!["arn:aws:sns:us-east-1:1:other".into()], None, Some(false));
    assert!(matches!(Ses.verify(&req, &pinned, crate::providers::testkit::ctx()), Err(VerifyError::WrongTopic(_))));
    let several = creds_of(vec!["arn:aws:sns:us-east-1:1:other".into(), FIXTURE_TOPIC.into()], None, Some(false));
    assert!(Ses.verify(&req, &several, crate::providers::testkit::ctx()).is_ok());
    let any = creds_of(vec![], Some(true), Some(false));
    assert!(Ses.verify(&req, &any, crate::providers::testkit::ctx()).is_ok());
}

/// A tenant without SNS settings has no SNS route, whatever the signature (finding 1: before,
/// every tenant accepted SNS notifications from any topic).
#[test]
fn sns_route_needs_a_topic_pin() {
    let body = fixture("event_delivery.json");
    let headers = request_headers(&body);
    let req = RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/webhooks/ses/acme"), url: "/webhooks/ses/acme", headers: &headers, body: &body, now_ms: 0 };
    for creds in [
        TenantCredentials::default(),
        creds_of(vec![], None, Some(false)),
        creds_of(vec![], Some(false), Some(false)),
        TenantCredentials { api_key: Some("k".into()), ..Default::default() },
    ] {
        assert_eq!(Ses.verify(&req, &creds, crate::providers::testkit::ctx()), Err(VerifyError::NotConfigured), "{creds:?}");
    }
}

/// A subscription confirmation from a topic the tenant did not name is refused, not reported
/// as something to confirm.
#[test]
fn subscription_confirmation_from_another_topic_is_refused() {
    let body = fixture("subscription_confirmation.json");
    let headers = request_headers(&body);
    let req = RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/"), url: "/", headers: &headers, body: &body, now_ms: 0 };
    let creds = creds_of(vec![FIXTURE_TOPIC.into()], None, Some(false));
    let err = Ses.verify(&req, &creds, crate::providers::testkit::ctx()).unwrap_err();
    assert!(matches!(&err, VerifyError::WrongTopic(t) if t == CONFIRMATION_TOPIC), "{err:?}");
    assert_eq!(err.http_status(), 403);
}

/// Topic of the SES fixtures and of the subscription confirmation fixture.
const FIXTURE_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-events";
const CONFIRMATION_TOPIC: &str = "arn:aws:sns:us-west-2:123456789012:MyTopic";

fn both_topics() -> Vec<String> {
    vec![FIXTURE_TOPIC.into(), CONFIRMATION_TOPIC.into()]
}

#[test]
fn subscription_confirmation_is_reported_as_control() {
    let body = fixture("subscription_confirmation.json");
    let headers = request_headers(&body);
    let req = RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/"), url: "/", headers: &headers, body: &body, now_ms: 0 };
    let creds = creds_of(both_topics(), None, Some(false));
    let v = Ses.verify(&req, &creds, crate::providers::testkit::ctx()).unwrap();
    assert!(v.control.unwrap().contains("SubscribeURL https://sns."));
}

// ---- SNS signatures -------------------------------------------------------------------------

mod signed {
    //! Envelopes signed in the test with the fixed test key (`fixtures/test_signing_key.pem`),
    //! whose self-signed certificate (`fixtures/test_signing_cert.pem`) a local source serves.

    use super::*;
    use crate::providers::ses::signature::{CertificateCache, CertificateSource};
    use base64::Engine;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::RsaPrivateKey;
    use serde_json::Value;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// 2030-01-01, inside the test certificate's validity window.
    pub const NOW_MS: i64 = 1_893_456_000_000;
    pub const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";

    pub fn key(name: &str) -> RsaPrivateKey {
        RsaPrivateKey::from_pkcs8_pem(&String::from_utf8(fixture(name)).unwrap()).unwrap()
    }

    /// Serves the test certificate for every URL and counts fetches.
    #[derive(Default)]
    pub struct LocalSource {
        pub fetches: AtomicUsize,
    }

    impl CertificateSource for LocalSource {
        fn fetch(&self, _url: &str) -> Result<Vec<u8>, String> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(fixture("test_signing_cert.pem"))
        }
    }


    /// The documented string to sign, built here independently of `signature::string_to_sign`.
    fn string_to_sign(v: &Value) -> String {
        let keys: &[&str] = if v["Type"] == "Notification" {
            &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        } else {
            &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        };
        keys.iter()
            .filter_map(|k| v.get(*k).and_then(Value::as_str).map(|val| format!("{k}\n{val}\n")))
            .collect()
    }

    /// `fixture` re-signed with `key_name` under `version`, pointing at `cert_url`.
    pub fn sign(fixture_name: &str, version: &str, key_name: &str, cert_url: &str) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(&fixture(fixture_name)).unwrap();
        v["SignatureVersion"] = version.into();
        v["SigningCertURL"] = cert_url.into();
        let text = string_to_sign(&v);
        let key = key(key_name);
        let sig = match version {
            "1" => rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key).sign(text.as_bytes()).to_vec(),
            _ => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key).sign(text.as_bytes()).to_vec(),
        };
        v["Signature"] = base64::engine::general_purpose::STANDARD.encode(sig).into();
        serde_json::to_vec_pretty(&v).unwrap()
    }

    pub fn envelope_of(body: &[u8]) -> sns::Envelope {
        sns::parse(body).unwrap()
    }

    pub fn new_cache() -> (Arc<LocalSource>, CertificateCache) {
        let source = Arc::new(LocalSource::default());
        (source.clone(), CertificateCache::new(source))
    }
}

use signed::{sign, CERT_URL, NOW_MS};

fn verify_signed(body: &[u8]) -> Result<Verified, VerifyError> {
    let headers = request_headers(body);
    let req = RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/webhooks/ses/acme"), url: "/webhooks/ses/acme", headers: &headers, body, now_ms: NOW_MS };
    // Signature checking is on unless turned off.
    Ses.verify(&req, &creds_of(both_topics(), None, None), crate::providers::testkit::ctx())
}

#[test]
fn signed_notifications_are_accepted_in_both_signature_versions() {
    for version in ["1", "2"] {
        for name in ["event_delivery.json", "notification_bounce.json"] {
            let body = sign(name, version, "test_signing_key.pem", CERT_URL);
            assert!(verify_signed(&body).is_ok(), "{name} v{version}: {:?}", verify_signed(&body));
        }
    }
}

#[test]
fn signed_subscription_confirmation_is_accepted() {
    let url = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";
    for version in ["1", "2"] {
        let body = sign("subscription_confirmation.json", version, "test_signing_key.pem", url);
        assert!(verify_signed(&body).unwrap().control.is_some());
    }
}

#[test]
fn tampered_message_is_rejected() {
    for version in ["1", "2"] {
        let body = sign("event_delivery.json", version, "test_signing_key.pem", CERT_URL);
        let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["Message"] = v["Message"].as_str().unwrap().replace("recipient@example.com", "attacker@example.com").into();
        assert_eq!(verify_signed(&serde_json::to_vec(&v).unwrap()), Err(VerifyError::BadSignature));

        // Dropping the signed Subject changes the string to sign too.
        let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v.as_object_mut().unwrap().remove("Subject");
        assert_eq!(verify_signed(&serde_json::to_vec(&v).unwrap()), Err(VerifyError::BadSignature));
    }
}

#[test]
fn signature_version_swap_is_rejected() {
    let body = sign("event_delivery.json", "1", "test_signing_key.pem", CERT_URL);
    let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["SignatureVersion"] = "2".into();
    assert_eq!(verify_signed(&serde_json::to_vec(&v).unwrap()), Err(VerifyError::BadSignature));
    v["SignatureVersion"] = "3".into();
    assert!(matches!(verify_signed(&serde_json::to_vec(&v).unwrap()), Err(VerifyError::Malformed(_))));
}

#[test]
fn signature_from_another_key_is_rejected() {
    for version in ["1", "2"] {
        let body = sign("event_delivery.json", version, "test_other_key.pem", CERT_URL);
        assert_eq!(verify_signed(&body), Err(VerifyError::BadSignature));
    }
}

#[test]
fn certificate_urls_off_amazon_sns_are_rejected() {
    for url in [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
        "https://evil.example.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
    ] {
        let body = sign("event_delivery.json", "1", "test_signing_key.pem", url);
        assert!(matches!(verify_signed(&body), Err(VerifyError::CertificateNotAllowed(_))), "{url}");
    }
}

#[test]
fn missing_signature_fields_are_rejected() {
    let body = sign("event_delivery.json", "2", "test_signing_key.pem", CERT_URL);
    for field in ["Signature", "SigningCertURL", "SignatureVersion"] {
        let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v.as_object_mut().unwrap().remove(field);
        let err = verify_signed(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(&err, VerifyError::Malformed(m) if m.contains(field)), "{field}: {err}");
    }
    let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["Signature"] = "not base64!".into();
    assert_eq!(verify_signed(&serde_json::to_vec(&v).unwrap()), Err(VerifyError::BadSignature));
}

#[test]
fn unsigned_fixtures_are_rejected_when_checking_is_on() {
    // The stored fixtures carry fake signatures.
    assert_eq!(verify_signed(&fixture("event_delivery.json")), Err(VerifyError::BadSignature));
}

#[test]
fn certificate_is_fetched_once_then_cached() {
    let (source, cache) = signed::new_cache();
    let v1 = signed::envelope_of(&sign("event_delivery.json", "1", "test_signing_key.pem", CERT_URL));
    let v2 = signed::envelope_of(&sign("event_bounce_multi.json", "2", "test_signing_key.pem", CERT_URL));
    for env in [&v1, &v2, &v1] {
        cache.verify(env, NOW_MS).unwrap();
    }
    assert_eq!(source.fetches.load(std::sync::atomic::Ordering::SeqCst), 1);

    let other = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";
    let v3 = signed::envelope_of(&sign("event_delivery.json", "1", "test_signing_key.pem", other));
    cache.verify(&v3, NOW_MS).unwrap();
    assert_eq!(source.fetches.load(std::sync::atomic::Ordering::SeqCst), 2, "one fetch per URL");
}

#[test]
fn failed_fetches_are_unavailable_and_remembered_for_a_while() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let cache = signature::CertificateCache::new(std::sync::Arc::new(move |_: &str| -> Result<Vec<u8>, String> {
        counted.fetch_add(1, Ordering::SeqCst);
        Err("connection refused".into())
    }));
    let env = signed::envelope_of(&sign("event_delivery.json", "1", "test_signing_key.pem", CERT_URL));
    assert!(matches!(cache.verify(&env, NOW_MS), Err(VerifyError::CertificateUnavailable(m)) if m.contains("refused")));
    // Within FAILURE_TTL the failure is answered from memory: no second fetch.
    assert!(matches!(cache.verify(&env, NOW_MS), Err(VerifyError::CertificateUnavailable(m)) if m.contains("recent fetch")));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let garbage = signature::CertificateCache::new(std::sync::Arc::new(|_: &str| -> Result<Vec<u8>, String> { Ok(b"<html>".to_vec()) }));
    assert!(matches!(garbage.verify(&env, NOW_MS), Err(VerifyError::CertificateUnavailable(_))));
}

#[test]
fn certificate_outside_its_validity_window_is_rejected() {
    let (_, cache) = signed::new_cache();
    let env = signed::envelope_of(&sign("event_delivery.json", "1", "test_signing_key.pem", CERT_URL));
    assert!(matches!(cache.verify(&env, 0), Err(VerifyError::CertificateNotAllowed(_))));
    assert!(matches!(cache.verify(&env, i64::MAX), Err(VerifyError::CertificateNotAllowed(_))));
    assert!(cache.verify(&env, NOW_MS).is_ok());
}

// ---- EventBridge ----------------------------------------------------------------------------

const EVENTBRIDGE_URL: &str = "/webhooks/ses/acme/eventbridge";
static EVENTBRIDGE_ROUTE: Route = Route::WebhookVariant(std::borrow::Cow::Borrowed(eventbridge::VARIANT));

fn eventbridge_request<'a>(url: &'a str, headers: &'a BTreeMap<String, String>, body: &'a [u8]) -> RawRequest<'a> {
    RawRequest { tenant: "acme", route: &EVENTBRIDGE_ROUTE, url, headers, body, now_ms: NOW_MS }
}

fn api_key_headers(key: &str) -> BTreeMap<String, String> {
    [(crate::providers::signature::API_KEY_HEADER.to_string(), key.to_string())].into()
}

#[test]
fn eventbridge_route_takes_the_api_key() {
    let body = fixture("eventbridge_bounce.json");
    let creds = TenantCredentials { api_key: Some("k-123".into()), ..Default::default() };
    let good = api_key_headers("k-123");
    for url in [EVENTBRIDGE_URL, "/webhooks/ses/acme/eventbridge?src=eb", "/webhooks/ses/acme/eventbridge/"] {
        let ok = Ses.verify(&eventbridge_request(url, &good, &body), &creds, crate::providers::testkit::ctx()).unwrap();
        assert_eq!(ok.partition_key, "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000", "{url}");
        assert_eq!(ok.control, None);
    }

    let wrong = api_key_headers("nope");
    assert_eq!(Ses.verify(&eventbridge_request(EVENTBRIDGE_URL, &wrong, &body), &creds, crate::providers::testkit::ctx()), Err(VerifyError::BadCredentials));
    let none = BTreeMap::new();
    assert_eq!(
        Ses.verify(&eventbridge_request(EVENTBRIDGE_URL, &none, &body), &creds, crate::providers::testkit::ctx()),
        Err(VerifyError::MissingHeader(crate::providers::signature::API_KEY_HEADER))
    );
    assert_eq!(Ses.verify(&eventbridge_request(EVENTBRIDGE_URL, &good, &body), &TenantCredentials::default(), crate::providers::testkit::ctx()), Err(VerifyError::NotConfigured));
}

/// SES accepts exactly its two routes: the plain webhook (SNS) and `webhook/eventbridge`.
#[test]
fn ses_routes_are_sns_and_eventbridge() {
    assert_eq!(Ses.routes(), &[Route::Webhook, EVENTBRIDGE_ROUTE.clone()]);
    assert_eq!(EVENTBRIDGE_ROUTE.path(schemas::ProviderId::Ses, "acme"), EVENTBRIDGE_URL);
}

#[test]
fn eventbridge_route_rejects_other_bodies() {
    let creds = TenantCredentials { api_key: Some("k".into()), ..Default::default() };
    let headers = api_key_headers("k");
    let sns_body = fixture("event_delivery.json");
    assert!(matches!(Ses.verify(&eventbridge_request(EVENTBRIDGE_URL, &headers, &sns_body), &creds, crate::providers::testkit::ctx()), Err(VerifyError::Malformed(_))));
    let other_source = br#"{"version":"0","id":"1","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{}}"#;
    assert!(matches!(Ses.verify(&eventbridge_request(EVENTBRIDGE_URL, &headers, other_source), &creds, crate::providers::testkit::ctx()), Err(VerifyError::Malformed(_))));
}

#[test]
fn eventbridge_body_on_the_sns_route_is_malformed() {
    let body = fixture("eventbridge_delivery.json");
    let headers = api_key_headers("k");
    let creds = TenantCredentials { api_key: Some("k".into()), ..creds_of(both_topics(), None, Some(false)) };
    let req = RawRequest { tenant: "acme", route: crate::providers::testkit::route_of("/webhooks/ses/acme"), url: "/webhooks/ses/acme", headers: &headers, body: &body, now_ms: NOW_MS };
    assert!(matches!(Ses.verify(&req, &creds, crate::providers::testkit::ctx()), Err(VerifyError::Malformed(m)) if m.contains("eventbridge")));
}

#[test]
fn eventbridge_events_use_the_eventbridge_id() {
    let events = normalize_fixture("eventbridge_delivery.json").unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].provider_event_id.as_deref(), Some("31dd090c-ddea-53d6-b4bf-77dbe3ab44a0"));
    assert_eq!(events[0].event_type, EventType::Delivered);
    // Same SES event through SNS: same delivery, different report.
    let via_sns = normalize_fixture("event_bounce_permanent.json").unwrap();
    let via_eb = normalize_fixture("eventbridge_bounce.json").unwrap();
    assert_eq!(via_sns[0].delivery_key, via_eb[0].delivery_key);
    assert_ne!(via_sns[0].event_id, via_eb[0].event_id);
    assert_eq!(normalize_fixture("eventbridge_bounce.json").unwrap(), via_eb, "replay gives identical events");
}

#[test]
fn eventbridge_events_without_mail_are_unsupported() {
    let body = br#"{"version":"0","id":"1","detail-type":"Sending Status Disabled","source":"aws.ses","account":"123456789012","time":"2024-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{}}"#;
    let mut env = envelope("ses", body.to_vec(), BTreeMap::new());
    env.route = EVENTBRIDGE_ROUTE.clone();
    let err = crate::providers::testkit::all_events(Ses.normalize(&RawRecord::new(&env, "raw", 0, 0), &NormalizeOptions::default())).unwrap_err();
    assert_eq!(err.code(), "unsupported");
    assert!(err.to_string().contains("Sending Status Disabled"));
}

/// The SES table of a tenant's credentials.
fn creds_of(topic_arn: Vec<String>, accept_any_topic: Option<bool>, verify_signature: Option<bool>) -> TenantCredentials {
    TenantCredentials { ses: Some(super::Credentials { topic_arn, accept_any_topic, verify_signature }), ..Default::default() }
}

/// Issue 14: the borrowed mapping (`map.rs`) agrees with the `Value` mapping it replaced
/// (`map_before.rs`) on every fixture and on every fixture with any one field of the SES event
/// replaced by a value of another JSON type, or repeated: same drafts, recipients and errors.
#[test]
fn the_borrowed_mapping_agrees_with_the_value_mapping_on_odd_inputs() {
    use crate::providers::testkit::{json_at_mut, json_paths};
    use serde_json::{json, Value};
    let opts = NormalizeOptions::default();
    let same = |message: &str| {
        let got = map::drafts(message, "report-1", &opts).map(|d| format!("{d:?}")).map_err(|e| e.to_string());
        let want = map_before::drafts(message, "report-1", &opts).map(|d| format!("{d:?}")).map_err(|e| e.to_string());
        assert_eq!(got, want, "{message}");
        let v: Result<Value, _> = serde_json::from_str(message);
        if let Ok(v) = v {
            let got = map::drafts_of(&v, "r", &opts).map(|d| format!("{d:?}")).map_err(|e| e.to_string());
            assert_eq!(got, map_before::drafts_of(&v, "r", &opts).map(|d| format!("{d:?}")).map_err(|e| e.to_string()));
            assert_eq!(map::message_id_in(&v), map_before::message_id_in(&v));
        }
        assert_eq!(map::message_id_of(message), map_before::message_id_of(message));
    };
    let odd = [json!(null), json!(7), json!(-1.5), json!(true), json!("x@y.io"), json!("not a time"), json!([]), json!({}),
        json!(["a@x.io", 3, null, "b@x.io"]), json!([{"emailAddress": "z@x.io", "diagnosticCode": 5}, 1, {"emailAddress": 2}]),
        json!({"name": "X-Metadata-Odd", "value": "v"}), json!([{"name": "X-METADATA-Up", "value": "1"}, {"name": 1, "value": "2"}])];
    let mut checked = 0;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/ses/fixtures");
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
    names.sort();
    for name in names.iter().filter(|n| n.ends_with(".json")) {
        let body: Value = serde_json::from_slice(&fixture(name)).unwrap();
        let message = match (body.get("Message").and_then(Value::as_str), body.get("detail")) {
            (Some(m), _) => m.to_string(),
            (None, Some(d)) => d.to_string(),
            _ => continue,
        };
        same(&message);
        let Ok(event) = serde_json::from_str::<Value>(&message) else { continue };
        let mut all = Vec::new();
        json_paths(&event, &mut Vec::new(), &mut all);
        for path in &all {
            for value in &odd {
                let mut e = event.clone();
                *json_at_mut(&mut e, path).unwrap() = value.clone();
                same(&e.to_string());
                checked += 1;
            }
        }
        // A repeated key: the last one counts, as in a `Value` map.
        let text = event.to_string();
        for key in ["eventType", "mail", "bounce", "delivery", "tags", "messageId", "destination"] {
            let first = format!("{{\"{key}\":\"early\",");
            same(&text.replacen('{', &first, 1));
            same(&format!("{},\"{key}\":{{\"late\":1}}}}", &text[..text.len() - 1]));
        }
        for bad in [&text[..text.len() / 2], "[1,2]", "3", "\"s\"", "{\"eventType\":\"Send\",\"mail\":{\"messageId\":\"m\",\"destination\":[\"\\ud800\"]}}"] {
            same(bad);
        }
    }
    assert!(checked > 5_000, "{checked}");
}

/// Issue 14: the borrowed SNS notification fails exactly where and as the owned envelope does.
#[test]
fn the_borrowed_notification_parses_like_the_envelope() {
    use serde_json::{json, Value};
    let body: Value = serde_json::from_slice(&fixture("event_delivery.json")).unwrap();
    let mut bodies = vec![serde_json::to_vec(&body).unwrap(), b"{".to_vec(), b"[]".to_vec(), b"\"x\"".to_vec()];
    for key in ["Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp", "Token", "SubscribeURL", "SignatureVersion", "Signature", "SigningCertURL", "Other"] {
        for value in [json!(null), json!(1), json!("Notification"), json!("Odd"), json!({}), json!("a\\/b\n")] {
            let mut b = body.clone();
            b[key] = value;
            bodies.push(serde_json::to_vec(&b).unwrap());
        }
        let mut b = body.clone();
        b.as_object_mut().unwrap().remove(key);
        bodies.push(serde_json::to_vec(&b).unwrap());
        let text = serde_json::to_string(&body).unwrap();
        bodies.push(format!("{{\"{key}\":\"dup\",{}", &text[1..]).into_bytes());
    }
    for b in bodies {
        let want = sns::parse_with_serde(&b).map(|e| (e.kind, e.message_id, e.message)).map_err(|e| e.to_string());
        let got = sns::parse_notification(&b).map(|(k, n)| (k, n.message_id.0.to_string(), n.message.0.to_string())).map_err(|e| e.to_string());
        assert_eq!(got, want, "{}", String::from_utf8_lossy(&b));
        // and the edge's owned envelope, every field, as serde_json alone reads it
        let want = sns::parse_with_serde(&b).map(|e| format!("{e:?}")).map_err(|e| e.to_string());
        assert_eq!(sns::parse(&b).map(|e| format!("{e:?}")).map_err(|e| e.to_string()), want, "{}", String::from_utf8_lossy(&b));
    }
}

/// Issue 14: the EventBridge body read in place (`eventbridge::parse`, `detail` straight into
/// the SES event) gives what the owned envelope with a `Value` detail and the `Value` mapping
/// gave: the same drafts or the same error, and the same partition key, on both fixtures and
/// every variant of them with one value replaced or a key repeated.
#[test]
fn the_borrowed_eventbridge_body_agrees_with_the_value_envelope() {
    use serde_json::Value;
    mod before {
        /// The envelope as it was (`eventbridge.rs` before issue 14; its name is in its errors).
        #[derive(serde::Deserialize)]
        pub struct Envelope {
            pub id: String,
            #[serde(rename = "detail-type")]
            pub detail_type: String,
            pub source: String,
            pub detail: serde_json::Value,
        }
    }
    fn before(body: &[u8], opts: &NormalizeOptions) -> (Result<String, String>, Option<String>) {
        let parsed = serde_json::from_slice::<before::Envelope>(body).map_err(|e| NormalizeError::InvalidJson(e.to_string())).and_then(|env| {
            if env.source != eventbridge::SOURCE {
                return Err(NormalizeError::InvalidField { field: "source", reason: format!("`{}` is not `{}`", env.source, eventbridge::SOURCE) });
            }
            if !env.detail.is_object() {
                return Err(NormalizeError::InvalidField { field: "detail", reason: "not an object".into() });
            }
            Ok(env)
        });
        let key = parsed.as_ref().ok().map(|env| map_before::message_id_in(&env.detail).unwrap_or(env.id.clone()));
        let drafts = parsed.and_then(|env| {
            if env.detail.get("mail").is_none() {
                return Err(NormalizeError::Unsupported(env.detail_type));
            }
            map_before::drafts_of(&env.detail, &env.id, opts)
        });
        (drafts.map(|d| format!("{d:?}")).map_err(|e| e.to_string()), key)
    }
    fn after(body: &[u8], opts: &NormalizeOptions) -> (Result<String, String>, Option<String>) {
        let parsed = eventbridge::parse(body);
        let key = parsed.as_ref().ok().map(|env| env.detail.get().and_then(|d| d.message_id()).map_or_else(|| env.id.0.to_string(), str::to_string));
        let drafts = parsed.and_then(|env| {
            let detail = env.detail.get().filter(|d| d.mail.present).ok_or_else(|| NormalizeError::Unsupported(env.detail_type.0.to_string()))?;
            map::drafts_of_event(detail, &env.id.0, opts)
        });
        (drafts.map(|d| format!("{d:?}")).map_err(|e| e.to_string()), key)
    }
    let opts = NormalizeOptions::default();
    let mut checked = 0;
    for name in ["eventbridge_bounce.json", "eventbridge_delivery.json"] {
        let doc: Value = serde_json::from_slice(&fixture(name)).unwrap();
        let mut docs = vec![doc.clone()];
        for key in ["id", "detail-type", "source", "detail"] {
            let mut d = doc.clone();
            d.as_object_mut().unwrap().remove(key);
            docs.push(d);
        }
        let mut no_mail = doc.clone();
        no_mail["detail"].as_object_mut().unwrap().remove("mail");
        docs.push(no_mail);
        checked += crate::providers::testkit::differential(&docs, |b| after(b, &opts), |b| before(b, &opts));
    }
    assert!(checked > 1_000, "{checked}");
}

/// Issue 14: the SNS scan (`sns_scan`, the fast path of `parse_notification`) reads every SNS
/// fixture itself, and on each fixture's odd variants (values of every JSON type, odd strings
/// in every field, repeated keys, malformed texts) `parse_notification` gives what serde_json
/// alone gives: the same notification or the same error.
#[test]
fn the_sns_scan_reads_bodies_as_serde_json() {
    use serde_json::Value;
    fn serde_only(body: &[u8]) -> Result<String, String> {
        sns::parse_notification_with_serde(body).map(|(k, n)| format!("{k:?} {n:?}")).map_err(|e| e.to_string())
    }
    let odd_strings = ["\\ud800", "\\udc00\\ud800", "\\ud83d\\ude00", "\\u00e9\\/\\b\\f\\n\\r\\t\\\"\\\\", "\\x", "\u{1}", "é😀", "\\u12"];
    let mut checked = 0;
    for name in ["event_bounce_multi.json", "event_delivery.json", "event_click.json", "notification_bounce.json", "subscription_confirmation.json", "malformed_message.json"] {
        let body = fixture(name);
        let scanned = sns_scan::scan(&body).unwrap_or_else(|| panic!("{name}: not read by the scan"));
        assert_eq!(format!("{scanned:?}"), format!("{:?}", serde_json::from_slice::<sns::Notification>(&body).unwrap()), "{name}");
        let doc: Value = serde_json::from_slice(&body).unwrap();
        let text = doc.to_string();
        let mut variants = crate::providers::testkit::odd_variants(&doc);
        for key in doc.as_object().unwrap().keys() {
            let raw_key = format!("\"{key}\":\"");
            for odd in odd_strings {
                // the odd text at the start of the key's string value, raw (not re-escaped)
                variants.push(text.replacen(&raw_key, &format!("{raw_key}{odd}"), 1));
            }
        }
        let mut bytes: Vec<Vec<u8>> = variants.into_iter().map(String::into_bytes).collect();
        let mut invalid = text.clone().into_bytes();
        invalid.insert(text.find("\"Message\":\"").unwrap() + 12, 0xff);
        bytes.push(invalid);
        for b in bytes {
            let got = sns::parse_notification(&b).map(|(k, n)| format!("{k:?} {n:?}")).map_err(|e| e.to_string());
            assert_eq!(got, serde_only(&b), "{}", String::from_utf8_lossy(&b));
            checked += 1;
        }
    }
    assert!(checked > 1_000, "{checked}");
}
