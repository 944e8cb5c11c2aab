use super::*;
use crate::providers::testkit::{check_fixtures, envelope};
use schemas::{BounceClass, EventType};
use std::collections::BTreeMap;
use std::path::Path;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/ses/fixtures").join(name)).unwrap()
}

fn normalize_fixture(name: &str) -> Result<Vec<Event>, NormalizeError> {
    let env = envelope("ses", fixture(name), BTreeMap::new());
    Ses.normalize(&RawRecord { envelope: &env, topic: "raw", partition: 1, offset: 9 }, &NormalizeOptions::default())
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
        assert!(Ses.normalize(&RawRecord { envelope: &env, topic: "raw", partition: 0, offset: 0 }, &NormalizeOptions::default()).is_err());
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
    let req = RawRequest { tenant: "acme", url: "/webhooks/ses/acme", headers: &headers, body: &body, now_ms: 0 };
    let creds = TenantCredentials { ses_verify_signature: Some(false), ..Default::default() };
    let ok = Ses.verify(&req, &creds).unwrap();
    assert_eq!(ok.partition_key, "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000");
    assert_eq!(ok.control, None);

    let mut wrong = headers.clone();
    wrong.insert(sns::HEADER_MESSAGE_ID.into(), "other".into());
    let req2 = RawRequest { headers: &wrong, ..req };
    assert_eq!(Ses.verify(&req2, &creds), Err(VerifyError::HeaderMismatch(sns::HEADER_MESSAGE_ID)));

    let mut wrong_type = headers.clone();
    wrong_type.insert(sns::HEADER_MESSAGE_TYPE.into(), "SubscriptionConfirmation".into());
    assert_eq!(Ses.verify(&RawRequest { headers: &wrong_type, ..req }, &creds), Err(VerifyError::HeaderMismatch(sns::HEADER_MESSAGE_TYPE)));

    let none = BTreeMap::new();
    assert_eq!(Ses.verify(&RawRequest { headers: &none, ..req }, &creds), Err(VerifyError::MissingHeader(sns::HEADER_MESSAGE_TYPE)));

    let pinned = TenantCredentials { ses_topic_arn: Some("arn:aws:sns:us-east-1:1:other".into()), ..creds.clone() };
    assert!(matches!(Ses.verify(&req, &pinned), Err(VerifyError::WrongTopic(_))));
}

#[test]
fn subscription_confirmation_is_reported_as_control() {
    let body = fixture("subscription_confirmation.json");
    let headers = request_headers(&body);
    let req = RawRequest { tenant: "acme", url: "/", headers: &headers, body: &body, now_ms: 0 };
    let creds = TenantCredentials { ses_verify_signature: Some(false), ..Default::default() };
    let v = Ses.verify(&req, &creds).unwrap();
    assert!(v.control.unwrap().contains("SubscribeURL https://sns."));
}
