//! Route tests without ClickHouse: auth, parameter errors and problem+json happen before any
//! query; ClickHouse points at a closed port, so reaching it answers 503.

use super::*;
use crate::config::{Config, KeyConfig, TenantKeys};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn config() -> Config {
    let mut c = Config::default();
    c.clickhouse.url = format!("http://127.0.0.1:{}", closed_port());
    c.clickhouse.max_execution_time_secs = 1;
    c.reporting_time_zones = vec!["Europe/Berlin".into()];
    for (tenant, key, scopes) in [("acme", "acme-all", vec!["stats", "messages"]), ("acme", "acme-stats", vec!["stats"]), ("beta", "beta-all", vec!["stats", "messages"])] {
        let keys = c.tenants.entry(tenant.into()).or_insert_with(TenantKeys::default);
        keys.keys.insert(key.into(), KeyConfig { key: format!("{key}-secret"), scopes: scopes.into_iter().map(String::from).collect() });
    }
    c.validate().unwrap();
    c
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn get(uri: &str, key: Option<&str>) -> (StatusCode, String, serde_json::Value) {
    let app = app(AppState::new(config()));
    let mut req = Request::get(uri);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

fn params_of(body: &serde_json::Value) -> Vec<String> {
    body["errors"].as_array().map(|a| a.iter().map(|e| e["parameter"].as_str().unwrap_or_default().to_string()).collect()).unwrap_or_default()
}

const ENDPOINTS: &[&str] = &["/v1/stats", "/v1/stats/summary", "/v1/stats/bounces", "/v1/stats/latency", "/v1/recipients/a@x.io/events", "/v1/suppressions/a@x.io", "/v1/stream", "/v1/messages", "/v1/messages/k1", "/v1/broadcasts/b1/report", "/v1/events", "/v1/broadcasts", "/v1/sequences", "/v1/templates", "/v1/suppressions", "/v1/senders/health", "/v1/recipients/a@x.io/engagement"];

#[tokio::test]
async fn missing_or_wrong_key_is_401_problem_on_every_endpoint() {
    for uri in ENDPOINTS {
        for key in [None, Some("nope"), Some("")] {
            let (status, ct, body) = get(uri, key).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} {key:?}");
            assert_eq!(ct, "application/problem+json", "{uri}");
            assert_eq!(body["status"], 401);
            assert_eq!(body["type"], "urn:sendtrace:problem:unauthorized");
        }
    }
}

#[tokio::test]
async fn another_tenant_or_missing_scope_is_403() {
    for uri in ENDPOINTS {
        let sep = if uri.contains('?') { '&' } else { '?' };
        let (status, ct, body) = get(&format!("{uri}{sep}tenant=acme"), Some("beta-all-secret")).await;
        assert_eq!((status, ct.as_str()), (StatusCode::FORBIDDEN, "application/problem+json"), "{uri}");
        assert!(body["detail"].as_str().unwrap().contains("another tenant"));
    }
    for uri in ["/v1/messages", "/v1/messages/k1", "/v1/events", "/v1/suppressions", "/v1/broadcasts/b1/report", "/v1/recipients/a@x.io/engagement", "/v1/recipients/a@x.io/events", "/v1/suppressions/a@x.io", "/v1/stream"] {
        let (status, _, body) = get(uri, Some("acme-stats-secret")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: personal data needs `messages`");
        assert!(body["detail"].as_str().unwrap().contains("`messages`"));
    }
}

#[tokio::test]
async fn bad_parameters_are_400_naming_each() {
    let cases: &[(&str, &[&str])] = &[
        ("/v1/stats?granularity=hour", &["granularity"]),
        ("/v1/stats?tz=Mars/Olympus", &["tz"]),
        ("/v1/stats?from=2026-02-01&to=2026-01-01", &["from"]),
        ("/v1/stats?from=2020-01-01&to=2026-01-01", &["from"]),
        ("/v1/stats?group_by=channel,provider,event_type", &["group_by"]),
        ("/v1/stats?group_by=recipient&compare=next", &["group_by", "compare"]),
        ("/v1/stats?channel=fax&colour=red", &["colour", "channel"]),
        ("/v1/stats?from=yesterday", &["from"]),
        ("/v1/stats/summary?days=0", &["days"]),
        ("/v1/stats/summary?days=abc", &["days"]),
        ("/v1/messages?page_size=1001", &["page_size"]),
        ("/v1/messages?page_size=0", &["page_size"]),
        ("/v1/messages?page_size=x", &["page_size"]),
        ("/v1/messages?status=lost", &["status"]),
        ("/v1/messages?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", &["since"]),
        ("/v1/messages?page_token=garbage", &["page_token"]),
        ("/v1/messages?broadcast=a&broadcast=b", &["broadcast"]),
        ("/v1/messages/k1?provider_message_id=m", &["recipient"]),
        ("/v1/events?event_type=teleported", &["event_type"]),
        ("/v1/events?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", &["from"]),
        ("/v1/suppressions?reason=bored&scope=moon", &["scope", "reason"]),
        ("/v1/broadcasts?page_token=%25%25", &["page_token"]),
        ("/v1/senders/health?flagged=maybe", &["flagged"]),
        ("/v1/stats/bounces?tz=Mars/Olympus&channel=fax", &["tz", "channel"]),
        ("/v1/stats/bounces?from=2026-02-01&to=2026-01-01", &["from"]),
        ("/v1/stats/latency?granularity=hour&from=2020-01-01&to=2026-01-01", &["granularity", "from"]),
        ("/v1/recipients/a@x.io/events?recipient=b@x.io&event_type=x", &["recipient", "event_type"]),
        ("/v1/stream?event_type=teleported&channel=fax", &["channel", "event_type"]),
        ("/v1/suppressions/has%20space", &["address"]),
    ];
    for (uri, want) in cases {
        let (status, ct, body) = get(uri, Some("acme-all-secret")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(ct, "application/problem+json");
        assert_eq!(params_of(&body), want.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{uri}");
        assert!(body["errors"][0]["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // the unknown zone error names the available ones
    let (_, _, body) = get("/v1/stats?tz=Asia/Tokyo", Some("acme-all-secret")).await;
    assert!(body["errors"][0]["detail"].as_str().unwrap().contains("UTC, Europe/Berlin"), "{body}");
}

#[tokio::test]
async fn a_page_token_of_other_filters_is_400() {
    let fp = crate::page_token::fingerprint("messages", &crate::db::messages::MessageFilter { broadcast: Some("b1".into()), ..Default::default() });
    let token = crate::page_token::encode(&fp, 1, "k");
    let (status, _, body) = get(&format!("/v1/messages?broadcast=b2&page_token={token}"), Some("acme-all-secret")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(params_of(&body), vec!["page_token"]);
    assert!(body["errors"][0]["detail"].as_str().unwrap().contains("other filters"));
}

#[tokio::test]
async fn clickhouse_down_is_503_problem_not_a_hang() {
    for uri in ["/v1/stats", "/v1/messages"] {
        let (status, ct, body) = get(uri, Some("acme-all-secret")).await;
        assert_eq!((status, ct.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "application/problem+json"), "{uri}");
        assert_eq!(body["type"], "urn:sendtrace:problem:clickhouse_unavailable");
    }
}

/// `/readyz` is 503 naming the `clickhouse` condition once the probe found ClickHouse away
/// (within a bound); `/healthz` stays 200.
#[tokio::test]
async fn readyz_lists_clickhouse_once_the_probe_fails() {
    let mut cfg = config();
    cfg.readiness = runtime::readiness::ReadinessConfig { probe_interval_ms: 50, probe_timeout_ms: 500 };
    let state = AppState::new(cfg);
    let stop = runtime::shutdown::CancellationToken::new();
    let probe = health::spawn_clickhouse_probe(&state, stop.clone());
    let app = app(state);
    let call = |uri: &'static str| {
        let app = app.clone();
        async move {
            let resp = app.oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or(serde_json::Value::Null))
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let body = loop {
        let (status, body) = call("/readyz").await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "still ready: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(body["ready"], false);
    assert_eq!(body["failing"][0]["condition"], "clickhouse", "{body}");
    assert_eq!(call("/healthz").await.0, StatusCode::OK);
    stop.cancel();
    probe.await.unwrap();
}

#[tokio::test]
async fn health_metrics_openapi_and_unknown_routes() {
    let (status, _, _) = get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, ct, body) = get("/nope", None).await;
    assert_eq!((status, ct.as_str()), (StatusCode::NOT_FOUND, "application/problem+json"));
    assert_eq!(body["status"], 404);
    let (status, _, doc) = get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for uri in ENDPOINTS {
        let path = uri.replace("/k1", "/{id}").replace("/b1/", "/{id}/").replace("a@x.io", "{address}");
        assert!(doc["paths"][&path]["get"].is_object(), "{path} documented");
        let op = &doc["paths"][&path]["get"];
        for code in ["200", "400", "401", "403", "503"] {
            assert!(op["responses"][code].is_object(), "{path} documents {code}");
        }
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    // a request shows up in /metrics by route template and status
    let app = app(AppState::new(config()));
    let _ = app.clone().oneshot(Request::get("/v1/stats?granularity=hour").header("authorization", "Bearer acme-all-secret").body(Body::empty()).unwrap()).await.unwrap();
    let resp = app.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    let text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.contains("sendtrace_api_requests_total{route=\"/v1/stats\",status=\"400\"}"), "{text}");
    assert!(text.contains("sendtrace_api_request_duration_seconds_bucket{route=\"/v1/stats\""), "{text}");
}

#[test]
fn documented_parameters_are_the_accepted_ones() {
    // Params::of takes the names from the IntoParams types the document is generated from;
    // every documented query parameter of every operation is accepted by its parser.
    let doc = serde_json::to_value(openapi()).unwrap();
    let messages: Vec<String> = doc["paths"]["/v1/messages"]["get"]["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    let mut accepted = crate::params::names::<messages::MessageParams>();
    accepted.push("tenant".into());
    assert_eq!(messages, accepted);
}

async fn send(method: &str, uri: &str, key: &str, body: Vec<u8>) -> (StatusCode, String, serde_json::Value) {
    let mut cfg = config();
    cfg.max_body_bytes = 4096;
    cfg.max_suppression_addresses = 3;
    cfg.tenants.get_mut("acme").unwrap().keys.insert("ops".into(), KeyConfig { key: "acme-ops-secret".into(), scopes: vec!["messages".into(), "suppressions:write".into()] });
    let app = app(AppState::new(cfg));
    let req = Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {key}")).header("content-type", "application/json");
    let resp = app.oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = resp.status();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn suppression_changes_refuse_bad_input_before_any_write() {
    let post = |key: &'static str, body: &str| {
        let body = body.as_bytes().to_vec();
        async move { send("POST", "/v1/suppressions", key, body).await }
    };
    // the scope
    assert_eq!(post("acme-all-secret", r#"{"addresses":["a@x.io"],"reason":"r"}"#).await.0, StatusCode::FORBIDDEN);
    // bodies that are not the documented object
    for body in ["", "[]", "{", r#"{"addresses":"a@x.io","reason":"r"}"#, r#"{"addresses":["a@x.io"],"reason":"r","colour":"red"}"#] {
        let (status, ct, b) = post("acme-ops-secret", body).await;
        assert_eq!((status, ct.as_str()), (StatusCode::BAD_REQUEST, "application/problem+json"), "{body}");
        assert_eq!(params_of(&b), vec!["body"], "{body}");
    }
    // each bad field named
    let (status, _, b) = post("acme-ops-secret", r#"{"addresses":["ok@x.io","","a b@x.io"],"reason":"","scope":"moon"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(params_of(&b), vec!["addresses[1]", "addresses[2]", "reason", "scope"]);
    let (_, _, b) = post("acme-ops-secret", r#"{"addresses":["a@x.io","b@x.io","c@x.io","d@x.io"],"reason":"r"}"#).await;
    assert_eq!(params_of(&b), vec!["addresses"], "over max_suppression_addresses");
    let long = format!(r#"{{"addresses":["{}@x.io"],"reason":"{}"}}"#, "a".repeat(400), "r".repeat(501));
    let (_, _, b) = post("acme-ops-secret", &long).await;
    assert_eq!(params_of(&b), vec!["addresses[0]", "reason"]);
    // over the body limit
    let big = format!(r#"{{"addresses":["a@x.io"],"reason":"{}"}}"#, "r".repeat(5000));
    let (status, ct, _) = post("acme-ops-secret", &big).await;
    assert_eq!((status, ct.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "application/problem+json"));
    // a removal needs a reason and the scope
    let (status, _, b) = send("DELETE", "/v1/suppressions/a@x.io", "acme-ops-secret", Vec::new()).await;
    assert_eq!((status, params_of(&b)), (StatusCode::BAD_REQUEST, vec!["reason".to_string()]));
    assert_eq!(send("DELETE", "/v1/suppressions/a@x.io?reason=r", "acme-all-secret", Vec::new()).await.0, StatusCode::FORBIDDEN);
    // valid, but Kafka and ClickHouse are unreachable: 503, never a hang or a 5xx other than 503
    let (status, ct, _) = send("DELETE", "/v1/suppressions/a@x.io?reason=r", "acme-ops-secret", Vec::new()).await;
    assert_eq!((status, ct.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "application/problem+json"));
}

#[tokio::test]
async fn exports_negotiate_the_media_type() {
    let app = app(AppState::new(config()));
    let req = Request::get("/v1/events").header("authorization", "Bearer acme-all-secret").header("accept", "image/png").body(Body::empty()).unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
    let app = app_for_csv();
    let req = Request::get("/v1/messages?status=lost").header("authorization", "Bearer acme-all-secret").header("accept", "text/csv").body(Body::empty()).unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "parameters are checked before an export starts");
}

fn app_for_csv() -> axum::Router {
    app(AppState::new(config()))
}
