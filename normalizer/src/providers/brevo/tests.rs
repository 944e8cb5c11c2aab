use super::*;
use crate::providers::testkit::{check_fixtures, ctx, envelope, route_of};
use base64::Engine;
use schemas::EventType;
use std::collections::BTreeMap;
use std::path::Path;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/brevo/fixtures")
}

fn creds(user: Option<&str>, password: Option<&str>, token: Option<&str>) -> TenantCredentials {
    let c = Credentials { user: user.map(Into::into), password: password.map(Into::into), token: token.map(Into::into) };
    TenantCredentials { brevo: Some(c), ..Default::default() }
}

fn verify(auth: Option<&str>, creds: &TenantCredentials) -> Result<Verified, VerifyError> {
    let body = std::fs::read(fixtures().join("delivered.json")).unwrap();
    let headers: BTreeMap<String, String> = auth.map(|a| (HEADER_AUTHORIZATION.to_string(), a.to_string())).into_iter().collect();
    let req = RawRequest { tenant: "acme", route: route_of("/webhooks/brevo/acme"), url: "/webhooks/brevo/acme", headers: &headers, body: &body, now_ms: 0 };
    Brevo.verify(&req, creds, ctx())
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[test]
fn every_fixture_maps_to_its_expected_events() {
    let n = check_fixtures("brevo", &fixtures());
    assert!(n >= 10, "only {n} fixtures checked");
}

/// Basic auth (the webhook URL's user:password) or the bearer token; anything else is refused
/// like wrong credentials, and a tenant without a Brevo table is not configured.
#[test]
fn basic_auth_or_bearer_token() {
    let both = creds(Some("u"), Some("p"), Some("tok"));
    let ok = verify(Some(&basic("u", "p")), &both).unwrap();
    assert_eq!(ok.partition_key, "<202010091527.12345678901@smtp-relay.mailin.fr>");
    assert!(verify(Some("Bearer tok"), &both).is_ok());
    assert_eq!(verify(Some(&basic("u", "x")), &both), Err(VerifyError::BadCredentials));
    assert_eq!(verify(Some("Bearer nope"), &both), Err(VerifyError::BadCredentials));
    assert_eq!(verify(Some("Bearer tok"), &creds(Some("u"), Some("p"), None)), Err(VerifyError::BadCredentials));
    assert_eq!(verify(Some(&basic("u", "p")), &creds(None, None, Some("tok"))), Err(VerifyError::BadCredentials));
    assert_eq!(verify(None, &both), Err(VerifyError::MissingHeader(HEADER_AUTHORIZATION)));
    assert_eq!(verify(Some("Bearer tok"), &TenantCredentials::default()), Err(VerifyError::NotConfigured));
}

#[test]
fn credentials_need_a_pair_or_a_token() {
    use crate::providers::ProviderCredentials;
    assert!(Credentials { user: Some("u".into()), password: Some("p".into()), token: None }.validate().is_ok());
    assert!(Credentials { token: Some("t".into()), ..Default::default() }.validate().is_ok());
    assert!(Credentials::default().validate().is_err());
    assert!(Credentials { user: Some("u".into()), ..Default::default() }.validate().unwrap_err().contains("go together"));
    assert!(Credentials { token: Some(" ".into()), ..Default::default() }.validate().unwrap_err().contains("empty"));
}

#[test]
fn unknown_events_are_kept_and_bad_bodies_are_errors() {
    let normalize = |body: &[u8]| {
        let env = envelope("brevo", body.to_vec(), BTreeMap::new());
        crate::providers::testkit::all_events(Brevo.normalize(&RawRecord::new(&env, "raw", 0, 0), &NormalizeOptions::default()))
    };
    let e = normalize(br#"{"event":"something_new","email":"a@b.c","message-id":"<m@x>","ts_event":"1604933654"}"#).unwrap();
    assert_eq!((e[0].event_type, e[0].provider_event_name.as_str(), e[0].occurred_at), (EventType::Unknown, "something_new", 1_604_933_654_000));
    assert_eq!(normalize(br#"{"email":"a@b.c","message-id":"<m@x>"}"#).unwrap_err().code(), "missing_field");
    assert_eq!(normalize(br#"{"event":"delivered","email":"a@b.c"}"#).unwrap_err().code(), "missing_field");
    assert_eq!(normalize(br#"{"event":"delivered","message-id":"<m@x>"}"#).unwrap_err().code(), "no_recipients");
    assert_eq!(normalize(br#"{"event":"delivered","email":"a@b.c","message-id":"<m@x>","ts_event":"soon"}"#).unwrap_err().code(), "invalid_field");
    assert!(normalize(b"[1]").is_err());
}

/// Issue 14: the borrowed mapping (`map.rs`) agrees with the `Value` mapping it replaced
/// (`map_before.rs`) on every fixture and on every fixture with any one value replaced by one
/// of another JSON type, or a key repeated: same draft, recipient and errors, same partition key.
#[test]
fn the_borrowed_mapping_agrees_with_the_value_mapping_on_odd_inputs() {
    use crate::providers::testkit::{differential, fixture_docs, shown};
    use serde_json::json;
    let opts = crate::providers::NormalizeOptions::default();
    let mut docs = Vec::new();
    for doc in fixture_docs(&fixtures()) {
        for (key, value) in [("tags", json!(["broadcast:b", "x", 3, "k:v:w"])), ("tag", json!("contact:c")), ("template_id", json!(" 12 ")), ("ts_event", json!(1.5))] {
            let mut d = doc.clone();
            d[key] = value;
            docs.push(d);
        }
        docs.push(doc);
    }
    let checked = differential(
        &docs,
        |b| (shown(map::parse(b).and_then(|e| map::draft(&e, &opts))), map::parse(b).ok().map(|e| map::message_id(&e).map(str::to_string))),
        |b| (shown(map_before::parse(b).and_then(|e| map_before::draft(&e, &opts))), map_before::parse(b).ok().map(|e| map_before::message_id(&e).map(str::to_string))),
    );
    assert!(checked > 3_000, "{checked}");
}
