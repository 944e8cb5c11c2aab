//! Route tests without a broker: a recording sink stands in for Kafka.

use super::*;
use crate::kafka::BoxFuture;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use normalizer::providers::TenantCredentials;
use std::sync::Mutex;
use std::time::Duration;
use tower::ServiceExt;

#[derive(Default)]
struct RecordingSink {
    stored: Mutex<Vec<(String, Vec<u8>)>>,
    fail: bool,
}

impl RawSink for Arc<RecordingSink> {
    fn store(&self, key: String, payload: Vec<u8>, _timeout: Duration) -> BoxFuture<Result<(), String>> {
        let this = self.clone();
        Box::pin(async move {
            if this.fail {
                return Err("broker unreachable".into());
            }
            this.stored.lock().unwrap().push((key, payload));
            Ok(())
        })
    }
}

fn setup(fail: bool) -> (Router, Arc<RecordingSink>) {
    let mut config = Config::default();
    config.tenants.insert("acme".into(), TenantCredentials { ses_verify_signature: Some(false), ..Default::default() });
    let sink = Arc::new(RecordingSink { fail, ..Default::default() });
    let state = AppState { config: Arc::new(config), sink: Arc::new(sink.clone()) };
    (app(state, Health::default()), sink)
}

fn ses_fixture() -> (Vec<u8>, String, String) {
    let body = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../normalizer/src/providers/ses/fixtures/event_delivery.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    (body.clone(), v["Type"].as_str().unwrap().into(), v["MessageId"].as_str().unwrap().into())
}

fn ses_request(uri: &str, body: Vec<u8>, kind: &str, id: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "text/plain; charset=UTF-8")
        .header("x-amz-sns-message-type", kind)
        .header("x-amz-sns-message-id", id)
        .body(Body::from(body))
        .unwrap()
}

async fn reason(resp: axum::response::Response) -> serde_json::Value {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn valid_ses_notification_is_stored_unchanged() {
    let (app, sink) = setup(false);
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
    let (app, sink) = setup(false);
    let (body, kind, _) = ses_fixture();
    let resp = app.oneshot(ses_request("/webhooks/ses/acme", body, &kind, "forged-id")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let r = reason(resp).await;
    assert_eq!(r["error"], "header_mismatch");
    assert!(r["reason"].as_str().unwrap().contains("x-amz-sns-message-id"));
    assert!(sink.stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_tenant_and_provider_are_404() {
    let (app, sink) = setup(false);
    let (body, kind, id) = ses_fixture();
    let resp = app.clone().oneshot(ses_request("/webhooks/ses/nobody", body.clone(), &kind, &id)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(reason(resp).await["error"], "unknown_tenant");
    let resp = app.oneshot(ses_request("/webhooks/carrier-pigeon/acme", body, &kind, &id)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(sink.stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_body_is_400() {
    let (app, sink) = setup(false);
    let resp = app.oneshot(ses_request("/webhooks/ses/acme", b"{nope".to_vec(), "Notification", "x")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(reason(resp).await["error"], "malformed");
    assert!(sink.stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn store_failure_is_503_with_retry_after() {
    let (app, _) = setup(true);
    let (body, kind, id) = ses_fixture();
    let resp = app.oneshot(ses_request("/webhooks/ses/acme", body, &kind, &id)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "5");
    assert_eq!(reason(resp).await["error"], "not_stored");
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let (app, _) = setup(false);
    let resp = app.clone().oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "not ready until main says so");
    let resp = app.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// With signature checking on (the default), a notification whose SNS signature does not
/// verify is refused with 403 and nothing is stored. The certificate comes from a local file.
#[tokio::test]
async fn bad_sns_signature_is_403_and_nothing_stored() {
    let cert_url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ingest-test.pem";
    let cert = concat!(env!("CARGO_MANIFEST_DIR"), "/../normalizer/src/providers/ses/fixtures/test_signing_cert.pem");
    crate::certificates::install([(cert_url.to_string(), cert.to_string())].into());
    let mut config = Config::default();
    config.tenants.insert("acme".into(), TenantCredentials::default());
    let sink = Arc::new(RecordingSink::default());
    let app = app(AppState { config: Arc::new(config), sink: Arc::new(sink.clone()) }, Health::default());
    let (body, kind, id) = ses_fixture();
    let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["SigningCertURL"] = cert_url.into();
    let body = serde_json::to_vec(&v).unwrap();
    let resp = app.oneshot(ses_request("/webhooks/ses/acme", body, &kind, &id)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(reason(resp).await["error"], "bad_signature");
    assert!(sink.stored.lock().unwrap().is_empty());
}
