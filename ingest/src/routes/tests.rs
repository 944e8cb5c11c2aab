//! Route tests without a broker: a recording sink stands in for Kafka.

use super::*;
use crate::kafka::BoxFuture;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use normalizer::providers::TenantCredentials;
use runtime::kafka::SendError;
use std::sync::Mutex;
use std::time::Duration;
use tower::ServiceExt;

/// What the recording sink does with a record.
#[derive(Default, Clone, Copy, PartialEq)]
pub(super) enum Mode {
    #[default]
    Store,
    /// The broker is unreachable (retriable).
    Unreachable,
    /// The broker refuses the record for its size (not retriable).
    TooLarge,
    /// The broker refuses the record as invalid (not retriable).
    Invalid,
    /// Never takes the record (the producer's queue stays full).
    Hang,
    /// Takes the record; its acknowledgement never comes.
    HangAck,
}

#[derive(Default)]
pub(super) struct RecordingSink {
    pub stored: Mutex<Vec<(String, Vec<u8>)>>,
    pub mode: Mode,
    /// Calls of `enqueue`, answered or not.
    pub calls: std::sync::atomic::AtomicUsize,
}

impl RecordingSink {
    /// Waits (at most 10 s) until `enqueue` has been called `n` times; `why` names what a
    /// request that never comes means.
    pub(super) async fn wait_for_calls(&self, n: usize, why: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.calls.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(std::time::Instant::now() < deadline, "call {n} never came: {why}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl RawSink for Arc<RecordingSink> {
    fn enqueue(&self, key: String, payload: Vec<u8>, _timeout: Duration) -> BoxFuture<Result<runtime::kafka::Acknowledgement, SendError>> {
        let this = self.clone();
        this.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            let fail = |permanent, too_large| SendError { permanent, too_large, message: "broker 10.0.0.7:9092: internal detail".into() };
            let ack: runtime::kafka::Acknowledgement = match this.mode {
                Mode::Store => {
                    this.stored.lock().unwrap().push((key, payload));
                    Box::pin(async { Ok(()) })
                }
                // a broker that fails is seen in the acknowledgement; a record it can never
                // take, either way (the producer checks its size before queueing)
                Mode::Unreachable => Box::pin(async move { Err(fail(false, false)) }),
                Mode::TooLarge => return Err(fail(true, true)),
                Mode::Invalid => Box::pin(async move { Err(fail(true, false)) }),
                Mode::Hang => std::future::pending().await,
                Mode::HangAck => Box::pin(std::future::pending()),
            };
            Ok(ack)
        })
    }
}

/// Topic of the SES fixtures, pinned for tenant `acme`.
pub(super) const FIXTURE_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-events";
pub(super) const API_KEY: &str = "acme-api-key";

/// Tenant `acme`: SES via SNS pinned to the fixtures' topic (signatures off), an API key.
pub(super) fn acme() -> TenantCredentials {
    TenantCredentials {
        ses: Some(normalizer::providers::ses::Credentials { topic_arn: vec![FIXTURE_TOPIC.into()], accept_any_topic: None, verify_signature: Some(false) }),
        api_key: Some(API_KEY.into()),
        ..Default::default()
    }
}

pub(super) fn setup_with(config: Config, mode: Mode) -> (Router, Arc<RecordingSink>) {
    setup_with_context(config, mode, normalizer::providers::VerifyContext::default())
}

pub(super) fn setup_with_context(config: Config, mode: Mode, verify: normalizer::providers::VerifyContext) -> (Router, Arc<RecordingSink>) {
    let sink = Arc::new(RecordingSink { mode, ..Default::default() });
    let state = AppState { config: Arc::new(config), sink: Arc::new(sink.clone()), verify: Arc::new(verify) };
    (app(state, Health::default()), sink)
}

pub(super) fn acme_config() -> Config {
    let mut config = Config::default();
    config.tenants.insert("acme".into(), acme());
    config
}

fn setup(mode: Mode) -> (Router, Arc<RecordingSink>) {
    setup_with(acme_config(), mode)
}

pub(super) fn ses_fixture() -> (Vec<u8>, String, String) {
    ses_fixture_named("event_delivery.json")
}

fn ses_fixture_named(name: &str) -> (Vec<u8>, String, String) {
    let body = std::fs::read(format!("{}/../normalizer/src/providers/ses/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    (body.clone(), v["Type"].as_str().unwrap().into(), v["MessageId"].as_str().unwrap().into())
}

pub(super) fn ses_request(uri: &str, body: Vec<u8>, kind: &str, id: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "text/plain; charset=UTF-8")
        .header("x-amz-sns-message-type", kind)
        .header("x-amz-sns-message-id", id)
        .body(Body::from(body))
        .unwrap()
}

fn sends_request(tenant: &str, key: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut r = Request::post(format!("/v1/sends/{tenant}")).header("content-type", "application/json");
    if let Some(k) = key {
        r = r.header("x-api-key", k);
    }
    r.body(Body::from(body)).unwrap()
}

fn send_record(recipient: &str) -> serde_json::Value {
    serde_json::json!({"channel": "email", "provider": "ses", "provider_message_id": "m-1", "recipient": recipient})
}

/// The reply as problem+json: checks the media type and the RFC 9457 members, returns the body.
pub(super) async fn problem(resp: axum::response::Response) -> serde_json::Value {
    let status = resp.status().as_u16();
    assert_eq!(resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).as_deref(), Some("application/problem+json"));
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["status"], status);
    for member in ["type", "title", "detail", "error", "reason"] {
        assert!(v[member].is_string(), "member {member} in {v}");
    }
    assert_eq!(v["detail"], v["reason"]);
    assert!(v["type"].as_str().unwrap().ends_with(v["error"].as_str().unwrap()));
    v
}

#[tokio::test]
async fn valid_ses_notification_is_stored_unchanged() {
    let (app, sink) = setup(Mode::Store);
    let (body, kind, id) = ses_fixture();
    let resp = app.oneshot(ses_request("/webhooks/ses/acme", body.clone(), &kind, &id)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let stored = sink.stored.lock().unwrap();
    assert_eq!(stored.len(), 1);
    let (key, payload) = &stored[0];
    assert_eq!(key, "acme/EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000");
    let env = schemas::avro::decode_raw(payload).unwrap();
    assert_eq!(env.body, body, "body stored byte for byte");
    assert_eq!((env.tenant.as_str(), env.provider.as_str()), ("acme", "ses"));
    assert_eq!(env.headers.get("x-amz-sns-message-id"), Some(&id));
}

#[tokio::test]
async fn header_mismatch_is_403_with_reason_and_nothing_stored() {
    let (app, sink) = setup(Mode::Store);
    let (body, kind, _) = ses_fixture();
    let resp = app.oneshot(ses_request("/webhooks/ses/acme", body, &kind, "forged-id")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let r = problem(resp).await;
    assert_eq!(r["error"], "header_mismatch");
    assert!(r["reason"].as_str().unwrap().contains("x-amz-sns-message-id"));
    assert!(sink.stored.lock().unwrap().is_empty());
}

/// An unknown tenant gets exactly the reply a known tenant gets for wrong credentials, on every
/// kind of route (finding 10: before, 404 `unknown_tenant` told which tenants exist).
#[tokio::test]
async fn unknown_tenant_answers_like_wrong_credentials() {
    let (app, sink) = setup(Mode::Store);
    let body = serde_json::to_vec(&[send_record("a@example.com")]).unwrap();
    let unknown = app.clone().oneshot(sends_request("nobody", Some("guess"), body.clone())).await.unwrap();
    let wrong_key = app.clone().oneshot(sends_request("acme", Some("guess"), body.clone())).await.unwrap();
    assert_eq!((unknown.status(), wrong_key.status()), (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN));
    assert_eq!(problem(unknown).await, problem(wrong_key).await);

    // SNS: an unknown tenant, a tenant without SNS settings and a foreign topic look the same.
    let mut config = acme_config();
    config.tenants.insert("no-ses".into(), TenantCredentials { api_key: Some("k".into()), ..Default::default() });
    let (app, _) = setup_with(config, Mode::Store);
    let (body, kind, id) = ses_fixture();
    let mut foreign: serde_json::Value = serde_json::from_slice(&body).unwrap();
    foreign["TopicArn"] = "arn:aws:sns:us-east-1:666666666666:attacker".into();
    let foreign = serde_json::to_vec(&foreign).unwrap();
    let mut replies = Vec::new();
    for (uri, body) in [("/webhooks/ses/nobody", body.clone()), ("/webhooks/ses/no-ses", body), ("/webhooks/ses/acme", foreign)] {
        let resp = app.clone().oneshot(ses_request(uri, body, &kind, &id)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{uri}");
        replies.push(problem(resp).await);
    }
    assert!(replies.windows(2).all(|w| w[0] == w[1]), "{replies:?}");
    assert!(sink.stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_provider_and_path_are_404_problems() {
    let (app, sink) = setup(Mode::Store);
    let (body, kind, id) = ses_fixture();
    let resp = app.clone().oneshot(ses_request("/webhooks/carrier-pigeon/acme", body.clone(), &kind, &id)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(problem(resp).await["error"], "unknown_provider");
    let resp = app.clone().oneshot(ses_request("/nowhere", body, &kind, &id)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    problem(resp).await;
    let resp = app.oneshot(Request::get("/webhooks/ses/acme").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(problem(resp).await["error"], "method_not_allowed");
    assert!(sink.stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_body_is_400() {
    let (app, sink) = setup(Mode::Store);
    let resp = app.oneshot(ses_request("/webhooks/ses/acme", b"{nope".to_vec(), "Notification", "x")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem(resp).await["error"], "malformed");
    assert!(sink.stored.lock().unwrap().is_empty());
}

/// A broker outage is 503 with Retry-After, and the reply carries no broker detail.
#[tokio::test]
async fn store_failure_is_503_with_retry_after_and_no_internal_text() {
    let (app, _) = setup(Mode::Unreachable);
    let (body, kind, id) = ses_fixture();
    let resp = app.oneshot(ses_request("/webhooks/ses/acme", body, &kind, &id)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "5");
    let p = problem(resp).await;
    assert_eq!(p["error"], "not_stored");
    assert!(!p.to_string().contains("10.0.0.7") && !p.to_string().contains("internal"), "{p}");
}

/// A record the broker refuses for good is the caller's to change: 413 (size) or 422, never a
/// 503 the provider would retry forever (finding 2).
#[tokio::test]
async fn records_the_broker_refuses_for_good_are_4xx_not_503() {
    for (mode, status, code) in [(Mode::TooLarge, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"), (Mode::Invalid, StatusCode::UNPROCESSABLE_ENTITY, "record_refused")] {
        let (app, _) = setup(mode);
        let (body, kind, id) = ses_fixture();
        let resp = app.oneshot(ses_request("/webhooks/ses/acme", body, &kind, &id)).await.unwrap();
        assert_eq!(resp.status(), status);
        assert!(resp.headers().get("retry-after").is_none());
        assert_eq!(problem(resp).await["error"], code);
    }
}

/// The envelope (URL, kept headers) counts against the record limit: a body under
/// `max_body_bytes` whose record would still not fit the producer's `message.max.bytes` is 413 before
/// anything is sent.
#[tokio::test]
async fn envelope_over_the_record_limit_is_413_before_sending() {
    let mut config = acme_config();
    config.kafka.extra.insert("message.max.bytes".into(), (64 * 1024).to_string());
    config.envelope_reserve_bytes = 1024;
    config.max_body_bytes = 63 * 1024;
    config.validate().unwrap();
    let (app, sink) = setup_with(config, Mode::Store);
    let recipient = "r@example.com";
    let mut items = Vec::new();
    while serde_json::to_vec(&items).unwrap().len() < 60 * 1024 {
        items.push(send_record(recipient));
    }
    let body = serde_json::to_vec(&items).unwrap();
    let resp = app.clone().oneshot(sends_request("acme", Some(API_KEY), body.clone())).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "fits");
    let long_query = format!("/v1/sends/acme?pad={}", "x".repeat(8 * 1024));
    let req = Request::post(long_query).header("x-api-key", API_KEY).body(Body::from(body)).unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(problem(resp).await["detail"].as_str().unwrap().contains("65536"));
    assert_eq!(sink.stored.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn body_over_the_limit_is_413_problem() {
    let mut config = acme_config();
    config.max_body_bytes = 1000;
    let (app, sink) = setup_with(config, Mode::Store);
    let resp = app.oneshot(sends_request("acme", Some(API_KEY), vec![b' '; 1001])).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(problem(resp).await["detail"].as_str().unwrap().contains("max_body_bytes"));
    assert!(sink.stored.lock().unwrap().is_empty());
}

/// Beyond `max_concurrent_requests` a request is answered 503 with Retry-After at once.
#[tokio::test]
async fn concurrency_limit_answers_503_with_retry_after() {
    let mut config = acme_config();
    config.max_concurrent_requests = 1;
    let (app, sink) = setup_with(config, Mode::Hang);
    let body = serde_json::to_vec(&[send_record("a@example.com")]).unwrap();
    let first = tokio::spawn(app.clone().oneshot(sends_request("acme", Some(API_KEY), body.clone())));
    // Wait until the first request holds the only permit (it hangs in the sink).
    sink.wait_for_calls(1, "the first request never reached the sink").await;
    let resp = app.clone().oneshot(sends_request("acme", Some(API_KEY), body.clone())).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "1");
    assert_eq!(problem(resp).await["error"], "overloaded");
    assert_eq!(sink.calls.load(std::sync::atomic::Ordering::SeqCst), 1, "refused before verification and storing");
    first.abort();
}

/// A request waiting for the broker's acknowledgement gives its place in
/// `max_concurrent_requests` back once its record is queued, and holds one in
/// `max_awaiting_broker` instead; beyond that one, 503 naming it, before the record is queued.
#[tokio::test]
async fn requests_waiting_for_the_broker_leave_the_handling_limit_for_their_own() {
    let metrics = runtime::telemetry::metrics_handle();
    // a subscriber that takes warnings, as the service's does: the refusal's log line reads its
    // status (so the reply is built for it too)
    let _logs = tracing::subscriber::set_default(tracing_subscriber::fmt().with_writer(std::io::sink).finish());
    let mut config = acme_config();
    config.max_concurrent_requests = 1;
    config.max_awaiting_broker = 3;
    let (app, sink) = setup_with(config, Mode::HangAck);
    let body = serde_json::to_vec(&[send_record("a@example.com")]).unwrap();
    let calls = || sink.calls.load(std::sync::atomic::Ordering::SeqCst);
    let mut waiting = Vec::new();
    for n in 1..=3 {
        waiting.push(tokio::spawn(app.clone().oneshot(sends_request("acme", Some(API_KEY), body.clone()))));
        // each queues its record although the one before still waits for its acknowledgement
        sink.wait_for_calls(n, "the request never reached the sink: the handling limit was still held").await;
    }
    let resp = app.clone().oneshot(sends_request("acme", Some(API_KEY), body.clone())).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "1");
    let p = problem(resp).await;
    assert_eq!(p["error"], "overloaded");
    assert!(p["detail"].as_str().unwrap().contains("max_awaiting_broker"), "{p}");
    assert_eq!(calls(), 3, "refused before its record was queued");
    // counted once (the reply is built twice: for the log's status, then the response)
    let text = metrics.render();
    assert!(text.contains("sendtrace_ingest_overloaded_total{limit=\"max_awaiting_broker\"} 1\n"), "{text}");
    assert!(waiting.iter().all(|t| !t.is_finished()), "the three still wait for their acknowledgements");
    for t in waiting {
        t.abort();
    }
}

/// A request not handled within `request_timeout_ms` (a sink that never answers) is 408.
#[tokio::test]
async fn slow_requests_time_out_with_408() {
    let mut config = acme_config();
    config.request_timeout_ms = 200;
    config.store_timeout_ms = 60_000;
    let (app, _) = setup_with(config, Mode::Hang);
    let body = serde_json::to_vec(&[send_record("a@example.com")]).unwrap();
    let resp = app.oneshot(sends_request("acme", Some(API_KEY), body)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(problem(resp).await["error"], "request_timeout");
}

/// Item limits on API-key routes: a 400 naming the item and the limit, nothing stored (finding 3).
#[tokio::test]
async fn sender_batches_over_the_item_limits_are_400_naming_the_item() {
    let (app, sink) = setup(Mode::Store);
    let limits = normalizer::providers::edge_limits::EdgeLimits::default();
    let too_many = vec![send_record("a@example.com"); limits.max_items_per_request + 1];
    let mut labels = vec![send_record("a@example.com"); 3];
    labels[2]["labels"] = serde_json::json!((0..=limits.max_labels_per_item).map(|i| format!("l{i}")).collect::<Vec<_>>());
    let long_recipient = vec![send_record(&"r".repeat(limits.max_recipient_bytes + 1))];
    for (items, want) in [(too_many, "max_items_per_request"), (labels, "item 2: `labels`"), (long_recipient, "item 0: `recipient`")] {
        let resp = app.clone().oneshot(sends_request("acme", Some(API_KEY), serde_json::to_vec(&items).unwrap())).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let p = problem(resp).await;
        assert!(p["detail"].as_str().unwrap().contains(want), "{p}");
    }
    assert!(sink.stored.lock().unwrap().is_empty());
}

/// A SubscriptionConfirmation from a topic the tenant did not name is refused (finding 1).
#[tokio::test]
async fn subscription_confirmation_from_unexpected_topic_is_403() {
    let (app, sink) = setup(Mode::Store);
    let (body, kind, id) = ses_fixture_named("subscription_confirmation.json");
    let resp = app.oneshot(ses_request("/webhooks/ses/acme", body, &kind, &id)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    problem(resp).await;
    assert!(sink.stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn health_is_public_and_metrics_are_not() {
    let (app, _) = setup(Mode::Store);
    let resp = app.clone().oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "not ready until main says so");
    let resp = app.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "/metrics is on the admin listener only");
}

/// With signature checking on (the default), a notification whose SNS signature does not
/// verify is refused with 403 and nothing is stored. The test certificate comes from a source
/// installed by this test; a running service has no way to configure one.
#[tokio::test]
async fn bad_sns_signature_is_403_and_nothing_stored() {
    let cert_url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-00000000000000000000000000000001.pem";
    let cert = concat!(env!("CARGO_MANIFEST_DIR"), "/../normalizer/src/providers/ses/fixtures/test_signing_cert.pem");
    let source = Arc::new(move |url: &str| {
        if url == cert_url {
            std::fs::read(cert).map_err(|e| e.to_string())
        } else {
            Err("unknown".to_string())
        }
    });
    let verify = normalizer::providers::VerifyContext::new(Default::default(), source);
    let mut config = Config::default();
    let ses = normalizer::providers::ses::Credentials { topic_arn: vec![FIXTURE_TOPIC.into()], ..Default::default() };
    config.tenants.insert("acme".into(), TenantCredentials { ses: Some(ses), ..Default::default() });
    let (app, sink) = setup_with_context(config, Mode::Store, verify);
    let (body, kind, id) = ses_fixture();
    let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["SigningCertURL"] = cert_url.into();
    let body = serde_json::to_vec(&v).unwrap();
    let resp = app.oneshot(ses_request("/webhooks/ses/acme", body, &kind, &id)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(problem(resp).await["error"], "forbidden");
    assert!(sink.stored.lock().unwrap().is_empty());
}

/// A validly signed SNS notification whose certificate is not cached yet is verified on a
/// blocking thread that fetches it once; after that, verification runs inline through a context
/// that never fetches (`cached_only`), and the source is not asked again.
#[tokio::test]
async fn signed_sns_fetches_its_certificate_once_then_verifies_inline() {
    use normalizer::providers::ses::samples::{sign_sns, TEST_CERT_URL};
    use normalizer::providers::{Provider, RawRequest, VerifyError};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let fetches = Arc::new(AtomicUsize::new(0));
    let source = Arc::new({
        let fetches = fetches.clone();
        move |url: &str| {
            fetches.fetch_add(1, Ordering::SeqCst);
            assert_eq!(url, TEST_CERT_URL);
            Ok(include_bytes!("../../../normalizer/src/providers/ses/fixtures/test_signing_cert.pem").to_vec())
        }
    });
    let verify = normalizer::providers::VerifyContext::new(Default::default(), source);
    let inline = verify.cached_only();
    let mut config = Config::default();
    let ses = normalizer::providers::ses::Credentials { topic_arn: vec![FIXTURE_TOPIC.into()], ..Default::default() };
    let creds = TenantCredentials { ses: Some(ses), ..Default::default() };
    config.tenants.insert("acme".into(), creds.clone());
    let signed = |message_id: &str| {
        let (body, kind, _) = ses_fixture();
        let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["MessageId"] = message_id.into();
        (sign_sns(&serde_json::to_vec(&v).unwrap()), kind)
    };
    let direct = |body: &[u8], kind: &str, id: &str, ctx: &normalizer::providers::VerifyContext| {
        let headers: std::collections::BTreeMap<String, String> =
            [("x-amz-sns-message-type".to_string(), kind.to_string()), ("x-amz-sns-message-id".to_string(), id.to_string())].into();
        let route = schemas::Route::Webhook;
        let req = RawRequest { tenant: "acme", route: &route, url: "/webhooks/ses/acme", headers: &headers, body, now_ms: chrono::Utc::now().timestamp_millis() };
        normalizer::providers::ses::Ses.verify(&req, &creds, ctx).map(|_| ())
    };
    let (first, kind) = signed("11111111-0000-0000-0000-000000000001");
    // Cold cache, no fetching allowed: the caller is told to verify again where it may block.
    assert_eq!(direct(&first, &kind, "11111111-0000-0000-0000-000000000001", &inline), Err(VerifyError::CertificateNotCached));
    assert_eq!(fetches.load(Ordering::SeqCst), 0);
    let (app, sink) = setup_with_context(config, Mode::Store, verify);
    let resp = app.clone().oneshot(ses_request("/webhooks/ses/acme", first, &kind, "11111111-0000-0000-0000-000000000001")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the first request fetched the certificate");
    let (second, kind) = signed("11111111-0000-0000-0000-000000000002");
    assert_eq!(direct(&second, &kind, "11111111-0000-0000-0000-000000000002", &inline), Ok(()), "cached now: verified without fetching");
    let resp = app.oneshot(ses_request("/webhooks/ses/acme", second, &kind, "11111111-0000-0000-0000-000000000002")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the certificate was fetched once");
    assert_eq!(sink.stored.lock().unwrap().len(), 2);
}

/// Over a real connection, a client that writes its whole oversize body before reading (as most
/// HTTP clients do) reads the 413 and its reason, not a reset: the body is drained up to
/// `max_drain_bytes`. A body declared beyond that is refused at once, before it is sent.
#[tokio::test]
async fn oversize_body_is_drained_so_the_client_reads_the_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = acme_config();
    config.max_body_bytes = 1000;
    config.max_drain_bytes = 8 * 1024 * 1024;
    let (app, sink) = setup_with(config.clone(), Mode::Store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn({
        let stop = stop.clone();
        async move { crate::server::serve(listener, app, &config, stop).await }
    });
    let request = |len: usize| {
        format!("POST /v1/sends/acme HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n")
    };
    // 4 MB, written completely (the loopback buffers hold far less) before reading.
    let len = 4_000_000;
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client.write_all(request(len).as_bytes()).await.unwrap();
    client.write_all(&vec![b' '; len]).await.expect("the server reads the body instead of resetting");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large") && answer.contains("4000000 bytes"), "{answer}");
    // Declared beyond the drain bound: answered at once, without sending the body.
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client.write_all(request(9_000_000).as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut answer)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 413"));
    assert!(sink.stored.lock().unwrap().is_empty());
    stop.cancel();
    server.await.unwrap();
}
