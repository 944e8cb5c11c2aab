//! Request metrics of the public edge: `sendtrace_ingest_http_requests_total{route,provider,status}`
//! and the latency histogram `sendtrace_ingest_http_request_duration_seconds{route}`. Every
//! reply is counted, refusals made before a handler runs included (503 overloaded, 408, 413,
//! 404). Labels stay bounded whatever the URLs: `route` is the matched path template
//! (`unmatched` otherwise), `provider` a known provider name from the path's `{provider}`
//! segment (`unknown` for another name, `none` on routes without one), `status` the HTTP code.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};
use runtime::telemetry::Handles;
use schemas::ProviderId;
use std::sync::Arc;
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

/// The series' handles, each registered once, when first used (`runtime::telemetry::Handles`;
/// built after the service installs its recorder). Bounded as the labels are: route templates ×
/// known providers × status codes.
#[derive(Default)]
pub struct HttpMetrics {
    routes: Handles<Box<str>, Arc<RouteMetrics>>,
}

struct RouteMetrics {
    duration: Histogram,
    /// By (provider label, status).
    requests: Handles<(&'static str, u16), Counter>,
}

impl HttpMetrics {
    pub fn new() -> Arc<HttpMetrics> {
        Arc::default()
    }

    fn route(&self, route: &str) -> Arc<RouteMetrics> {
        let register = || (route.into(), Arc::new(RouteMetrics { duration: metrics::histogram!(DURATION, "route" => route.to_string()), requests: Handles::new() }));
        self.routes.get(|r| &**r == route, register)
    }
}

impl RouteMetrics {
    fn requests(&self, route: &str, provider: &'static str, status: u16) -> Counter {
        let register = || ((provider, status), metrics::counter!(REQUESTS, "route" => route.to_string(), "provider" => provider, "status" => status.to_string()));
        self.requests.get(|k| *k == (provider, status), register)
    }
}

/// The middleware (`Router::layer(axum::middleware::from_fn_with_state(HttpMetrics::new(), track))`, outermost).
pub async fn track(State(m): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", |p| p.as_str());
    let provider = matched.as_ref().map_or("none", |t| provider_label(t.as_str(), req.uri().path()));
    let handles = m.route(route);
    let started = Instant::now();
    let resp = next.run(req).await;
    handles.requests(route, provider, resp.status().as_u16()).increment(1);
    handles.duration.record(started.elapsed().as_secs_f64());
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
            .layer(axum::middleware::from_fn_with_state(HttpMetrics::new(), track));
        for uri in ["/webhooks/sendgrid/acme", "/webhooks/sendgrid/other", "/nowhere"] {
            app.clone().oneshot(axum::http::Request::post(uri).body(Body::empty()).unwrap()).await.unwrap();
        }
        let text = handle.render();
        assert!(text.contains(r#"sendtrace_ingest_http_requests_total{route="/webhooks/{provider}/{tenant}",provider="sendgrid",status="503"} 2"#), "{text}");
        assert!(text.contains(r#"sendtrace_ingest_http_requests_total{route="unmatched",provider="none",status="404"} 1"#), "{text}");
        assert!(text.contains(r#"sendtrace_ingest_http_request_duration_seconds_bucket{route="unmatched",le="0.005"}"#), "{text}");
    }
}
