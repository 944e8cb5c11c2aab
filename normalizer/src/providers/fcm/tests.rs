use super::*;
use crate::providers::signature::API_KEY_HEADER;
use crate::providers::testkit::{check_fixtures, envelope};
use std::collections::BTreeMap;
use std::path::Path;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/fcm/fixtures")
}

#[test]
fn every_fixture_maps_to_its_expected_events() {
    let n = check_fixtures("fcm", &fixtures());
    assert!(n >= 9, "only {n} fixtures checked");
}

#[test]
fn verify_checks_the_api_key_and_every_item() {
    let body = std::fs::read(fixtures().join("success.json")).unwrap();
    let creds = TenantCredentials { api_key: Some("acme-key".into()), ..Default::default() };
    let headers: BTreeMap<String, String> = [(API_KEY_HEADER.to_string(), "acme-key".to_string())].into();
    let req = RawRequest { tenant: "acme", url: "/v1/push-results/acme/fcm", headers: &headers, body: &body, now_ms: 0 };
    assert!(Fcm.verify(&req, &creds).is_ok());

    let other: BTreeMap<String, String> = [(API_KEY_HEADER.to_string(), "globex-key".to_string())].into();
    assert_eq!(Fcm.verify(&RawRequest { headers: &other, ..req }, &creds), Err(VerifyError::BadCredentials));
    let none = BTreeMap::new();
    assert_eq!(Fcm.verify(&RawRequest { headers: &none, ..req }, &creds), Err(VerifyError::MissingHeader(API_KEY_HEADER)));

    let bad = br#"[{"token":"t","message_id":"m","http_status":200},{"message_id":"m","http_status":200}]"#;
    let err = Fcm.verify(&RawRequest { body: bad, ..req }, &creds).unwrap_err();
    assert_eq!(err, VerifyError::Malformed("item 1: missing field `token`".into()));
    assert_eq!(err.http_status(), 400);
}

#[test]
fn garbage_bodies_are_errors_not_panics() {
    for body in [&b""[..], b"[]", b"{}", b"[null]", br#"[{"token":"t","message_id":"m","http_status":"200"}]"#, br#"[{"token":"t","message_id":"m","http_status":200,"sent_at":"now"}]"#] {
        let env = envelope("fcm", body.to_vec(), BTreeMap::new());
        let raw = RawRecord { envelope: &env, topic: "raw", partition: 0, offset: 0 };
        assert!(Fcm.normalize(&raw, &NormalizeOptions::default()).is_err(), "{}", String::from_utf8_lossy(body));
    }
}
