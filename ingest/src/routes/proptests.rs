//! Property tests of the whole HTTP app, via `oneshot` with a recording sink: whatever the method,
//! path, headers, content type and body, the reply is a 2xx or a 4xx problem+json, never a 5xx,
//! and nothing is stored unless the request authenticated.

use super::tests::{acme_config, problem, Mode, RecordingSink, API_KEY};
use super::{app, AppState};
use runtime::telemetry::Health;
use std::sync::Arc;
use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tower::ServiceExt;

const PROVIDERS: &[&str] = &["ses", "sendgrid", "mailgun", "resend", "postmark", "twilio", "fcm", "apns", "sender", "pigeon", ""];
const HEADERS: &[&str] = &[
    "content-type",
    "x-api-key",
    "authorization",
    "x-amz-sns-message-type",
    "x-amz-sns-message-id",
    "x-amz-sns-topic-arn",
    "x-twilio-signature",
    "x-twilio-email-event-webhook-signature",
    "x-twilio-email-event-webhook-timestamp",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-anything",
];
const CONTENT_TYPES: &[&str] = &["application/json", "text/plain; charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/octet-stream"];

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![Just("acme".to_string()), Just("nobody".to_string()), "[a-zA-Z0-9%._~-]{0,12}"]
}

fn path() -> impl Strategy<Value = String> {
    let provider = prop_oneof![proptest::sample::select(PROVIDERS).prop_map(str::to_string), "[a-z%0-9]{0,8}"];
    prop_oneof![
        (provider.clone(), segment()).prop_map(|(p, t)| format!("/webhooks/{p}/{t}")),
        (provider.clone(), segment(), segment()).prop_map(|(p, t, v)| format!("/webhooks/{p}/{t}/{v}")),
        segment().prop_map(|t| format!("/v1/sends/{t}")),
        segment().prop_map(|t| format!("/v1/events/{t}")),
        (segment(), provider).prop_map(|(t, p)| format!("/v1/push-results/{t}/{p}")),
        Just("/healthz".to_string()),
        Just("/metrics".to_string()),
        "/[a-zA-Z0-9/%._~-]{0,30}",
    ]
    .prop_flat_map(|p| (Just(p), proptest::option::of("[a-z0-9=&%]{0,20}")))
    .prop_map(|(p, q)| match q {
        Some(q) => format!("{p}?{q}"),
        None => p,
    })
}

/// Bodies: random bytes, JSON-shaped text, and near-valid sender batches (to get past parsing).
fn body() -> impl Strategy<Value = Vec<u8>> {
    let item = (
        proptest::sample::select(&["email", "sms", "push", "bogus"][..]),
        proptest::sample::select(&["ses", "twilio", "fcm", "sender", "x"][..]),
        "[ -~]{0,20}",
        "[ -~]{0,40}",
        proptest::option::of(proptest::collection::vec("[a-z]{0,5}", 0..5)),
        proptest::option::of("[ -~]{0,30}"),
    )
        .prop_map(|(channel, provider, id, recipient, labels, sent_at)| {
            let mut v = serde_json::json!({"channel": channel, "provider": provider, "provider_message_id": id, "recipient": recipient});
            if let Some(l) = labels {
                v["labels"] = l.into();
            }
            if let Some(t) = sent_at {
                v["sent_at"] = t.into();
            }
            v
        });
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        "[\\[\\]{}\",:a-z0-9 ]{0,200}".prop_map(String::into_bytes),
        proptest::collection::vec(item, 0..5).prop_map(|items| serde_json::to_vec(&items).unwrap()),
        Just(std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../normalizer/src/providers/ses/fixtures/event_delivery.json")).unwrap()),
    ]
}

fn header() -> impl Strategy<Value = (String, String)> {
    (proptest::sample::select(HEADERS), prop_oneof![Just(API_KEY.to_string()), "[ -~]{0,40}"]).prop_map(|(k, v)| (k.to_string(), v))
}

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    path: String,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn case() -> impl Strategy<Value = Case> {
    let arbitrary = (
        proptest::sample::select(&["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"][..]),
        path(),
        proptest::sample::select(CONTENT_TYPES),
        proptest::collection::vec(header(), 0..4),
        body(),
    )
        .prop_map(|(method, path, content_type, headers, body)| Case { method, path, content_type, headers, body });
    // Authenticated sender batches, valid or nearly so, with stray extra headers.
    let item = ("[a-z0-9]{1,10}", "[a-z]{1,10}@example\\.com", proptest::option::of(proptest::collection::vec("[a-z]{1,5}", 0..4)), any::<bool>())
        .prop_map(|(id, recipient, labels, stray)| {
            let mut v = serde_json::json!({"channel": "email", "provider": "ses", "provider_message_id": id, "recipient": recipient});
            if let Some(l) = labels {
                v["labels"] = l.into();
            }
            if stray {
                v["unexpected"] = 1.into();
            }
            v
        });
    let authenticated = (
        proptest::sample::select(&["/v1/sends/acme", "/v1/sends/acme?x=1"][..]),
        proptest::sample::select(CONTENT_TYPES),
        proptest::collection::vec(header(), 0..2),
        proptest::collection::vec(item, 1..4),
    )
        .prop_map(|(path, content_type, extra, items)| {
            let mut headers = vec![("x-api-key".to_string(), API_KEY.to_string())];
            headers.extend(extra);
            Case { method: "POST", path: path.to_string(), content_type, headers, body: serde_json::to_vec(&items).unwrap() }
        });
    prop_oneof![3 => arbitrary, 1 => authenticated]
}

/// Routes authenticated by the API key, and the only ones a random request can pass.
fn api_key_route(path: &str) -> bool {
    path.starts_with("/v1/sends/acme") || path.starts_with("/v1/events/acme") || path.starts_with("/v1/push-results/acme/")
        || path.starts_with("/webhooks/ses/acme/eventbridge")
}

/// One case: the reply's status, and whether it stored the request.
fn check(case: &Case) -> Result<bool, TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut config = acme_config();
    // Signatures on: no certificate can be fetched here, and none is needed to refuse.
    config.tenants.get_mut("acme").unwrap().ses.as_mut().unwrap().verify_signature = None;
    let sink = Arc::new(RecordingSink { mode: Mode::Store, ..Default::default() });
    let health = Health::default();
    health.set_ready(true);
    let app = app(AppState { config: Arc::new(config), sink: Arc::new(sink.clone()), verify: Default::default() }, health);
    let mut req = Request::builder().method(case.method).uri(&case.path);
    if !case.content_type.is_empty() {
        req = req.header("content-type", case.content_type);
    }
    for (k, v) in &case.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let Ok(req) = req.body(Body::from(case.body.clone())) else { return Ok(false) };
    let resp = rt.block_on(app.oneshot(req)).unwrap();
    let status = resp.status().as_u16();
    prop_assert!(status < 500, "{status} for {case:?}");
    let stored = sink.stored.lock().unwrap().len();
    if (200..300).contains(&status) {
        if case.path.starts_with("/healthz") {
            prop_assert_eq!(stored, 0);
        } else {
            prop_assert!(api_key_route(&case.path), "stored without authenticating: {case:?}");
            let key_ok = case.headers.iter().rev().find(|(k, _)| k == "x-api-key").is_some_and(|(_, v)| v == API_KEY);
            prop_assert!(key_ok, "stored without the API key: {case:?}");
            prop_assert_eq!(stored, 1);
        }
    } else {
        prop_assert_eq!(stored, 0);
        if status >= 400 && case.method != "HEAD" {
            rt.block_on(problem(resp));
        }
    }
    Ok(stored > 0)
}

/// Runs [`check`] on generated cases, and makes sure some of them did get stored (so the
/// property covers the accepting path too, not only refusals).
#[test]
fn every_request_gets_2xx_or_a_4xx_problem_and_only_verified_ones_are_stored() {
    let stored = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 600, ..ProptestConfig::default() });
    runner
        .run(&case(), |case| {
            if check(&case)? {
                stored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    assert!(stored.load(std::sync::atomic::Ordering::Relaxed) > 0, "no generated request was accepted");
}
