//! Request metrics of the public edge: `sendtrace_ingest_http_requests_total{route,provider,status}`
//! and the latency histogram `sendtrace_ingest_http_request_duration_seconds{route}`. Every
//! reply is counted, refusals made before a handler runs included (503 overloaded, 408, 413,
//! 404). Labels stay bounded whatever the URLs: `route` is the matched path template
//! (`unmatched` otherwise), `provider` a known provider name from the path's `{provider}`
//! segment (`unknown` for another name, `none` on routes without one), `status` the HTTP code.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use schemas::ProviderId;
use std::time::Instant;

pub const REQUESTS: &str = "sendtrace_ingest_http_requests_total";
pub const DURATION: &str = "sendtrace_ingest_http_request_duration_seconds";

/// The `provider` label: the path segment at the template's `{provider}`, if it names a provider.
fn provider_label(template: &str, path: &str) -> &'static str {
    let Some(at) = template.split('/').position(|s| s == "{provider}") else { return "none" };
    match path.split('/').nth(at).map(str::parse::<ProviderId>) {
        Some(Ok(p)) => p.as_str(),
        _ => "unknown",
    }
}

/// The middleware (`Router::layer(axum::middleware::from_fn(track))`, outermost).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let provider = route.as_deref().map_or("none", |t| provider_label(t, req.uri().path()));
    let route = route.unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!(REQUESTS, "route" => route.clone(), "provider" => provider, "status" => status).increment(1);
    metrics::histogram!(DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    #[test]
    fn provider_comes_from_the_template_position() {
        assert_eq!(provider_label("/webhooks/{provider}/{tenant}", "/webhooks/ses/acme"), "ses");
        assert_eq!(provider_label("/v1/push-results/{tenant}/{provider}", "/v1/push-results/acme/fcm"), "fcm");
        assert_eq!(provider_label("/webhooks/{provider}/{tenant}", "/webhooks/evil%20name/acme"), "unknown");
        assert_eq!(provider_label("/v1/sends/{tenant}", "/v1/sends/acme"), "none");
    }

    #[tokio::test]
    async fn every_reply_is_counted_by_route_provider_and_status() {
        let handle = runtime::telemetry::metrics_handle();
        let app = Router::new()
            .route("/webhooks/{provider}/{tenant}", post(|| async { StatusCode::SERVICE_UNAVAILABLE }))
            .layer(axum::middleware::from_fn(track));
        for uri in ["/webhooks/sendgrid/acme", "/webhooks/sendgrid/other", "/nowhere"] {
            app.clone().oneshot(axum::http::Request::post(uri).body(Body::empty()).unwrap()).await.unwrap();
        }
        let text = handle.render();
        assert!(text.contains(r#"sendtrace_ingest_http_requests_total{route="/webhooks/{provider}/{tenant}",provider="sendgrid",status="503"} 2"#), "{text}");
        assert!(text.contains(r#"sendtrace_ingest_http_requests_total{route="unmatched",provider="none",status="404"} 1"#), "{text}");
        assert!(text.contains(r#"sendtrace_ingest_http_request_duration_seconds_bucket{route="unmatched",le="0.005"}"#), "{text}");
    }
}
