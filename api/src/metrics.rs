//! Request metrics: `sendtrace_api_requests_total{route,status}` and the latency histogram
//! `sendtrace_api_request_duration_seconds{route}` (route = the matched path template, so the
//! label set stays bounded whatever the URLs; buckets: `runtime::telemetry::DURATION_BUCKETS_SECS`).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

pub const REQUESTS: &str = "sendtrace_api_requests_total";
pub const DURATION: &str = "sendtrace_api_request_duration_seconds";

pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!(REQUESTS, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    resp
}
