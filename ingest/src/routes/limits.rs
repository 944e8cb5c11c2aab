//! Limits every request passes through before its route: a concurrency limit (503 with
//! `Retry-After` beyond `max_concurrent_requests`; a request whose record is queued moves to
//! `max_awaiting_broker` through its [`Admission`]), a request timeout (408 after
//! `request_timeout_ms`, body reading included), and problem+json for error replies made
//! outside the handlers (unknown path, wrong method, body over `max_body_bytes`). A body declared
//! over `max_body_bytes` is refused before any handler runs; up to `max_drain_bytes` of it is
//! read and dropped first so the client can read the 413 (closing on a client still sending
//! makes it see a reset, not the reason).

use crate::config::Config;
use crate::problem::{is_problem, Problem};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One of the edge's limits: its places, and the gauge
/// `sendtrace_ingest_requests_in_progress{limit}` of those taken.
pub struct Places {
    semaphore: Arc<Semaphore>,
    /// The gauge's handle, registered once here rather than looked up by name and label at
    /// every request (the service installs its recorder first: `runtime::telemetry::start_admin`).
    in_progress: metrics::Gauge,
}

impl Places {
    pub fn new(limit: Limit, places: usize) -> Arc<Places> {
        let in_progress = metrics::gauge!(IN_PROGRESS, "limit" => limit.name());
        in_progress.set(0.0);
        Arc::new(Places { semaphore: Arc::new(Semaphore::new(places)), in_progress })
    }

    /// A place, if one is free (refuse at once rather than queue: a queue would only hold more
    /// sockets open).
    pub fn try_take(self: &Arc<Self>) -> Option<Place> {
        let permit = self.semaphore.clone().try_acquire_owned().ok()?;
        self.in_progress.increment(1.0);
        Some(Place { permit: Some(permit), places: self.clone() })
    }
}

/// Requests holding a place in each limit now (`limit`: `max_concurrent_requests`, `max_awaiting_broker`).
pub const IN_PROGRESS: &str = "sendtrace_ingest_requests_in_progress";

/// A place taken in one of the limits, given back when dropped.
pub struct Place {
    permit: Option<OwnedSemaphorePermit>,
    places: Arc<Places>,
}

impl Drop for Place {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.places.in_progress.decrement(1.0);
    }
}

/// A request's places in the edge's two limits, in its extensions (set by [`apply`]): it holds
/// a place in `max_concurrent_requests` while it is received, verified and handed to the broker
/// client; then, waiting for the broker's acknowledgement, one in `max_awaiting_broker` instead.
/// So requests that only wait for the broker do not keep others from being handled: the edge's
/// rate is not `max_concurrent_requests` / (the broker's acknowledgement time).
#[derive(Clone)]
pub struct Admission {
    handling: Arc<std::sync::Mutex<Option<Place>>>,
    awaiting: Arc<Places>,
}

impl Admission {
    /// A place among the requests waiting for the broker, taken before the record is queued
    /// (once queued it cannot be taken back); `None` when `max_awaiting_broker` are waiting.
    pub fn reserve_broker_wait(&self) -> Option<Place> {
        self.awaiting.try_take()
    }

    /// Gives back the request's place in `max_concurrent_requests` (its record is queued).
    pub fn handled(&self) {
        self.handling.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// The two limits a request can find full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    MaxConcurrentRequests,
    MaxAwaitingBroker,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Limit::MaxConcurrentRequests => "max_concurrent_requests",
            Limit::MaxAwaitingBroker => "max_awaiting_broker",
        }
    }

    /// Counts a request refused because this limit is full
    /// (`sendtrace_ingest_overloaded_total{limit}`), once where the refusal is made: the reply
    /// ([`Limit::problem`]) may be built more than once (an error's status for the log, then
    /// the response).
    pub fn count_refusal(self) -> Self {
        metrics::counter!("sendtrace_ingest_overloaded_total", "limit" => self.name()).increment(1);
        self
    }

    /// 503 `overloaded` with `Retry-After`, naming the limit.
    pub fn problem(self) -> Problem {
        let detail = match self {
            Limit::MaxConcurrentRequests => "too many requests in progress (max_concurrent_requests); retry shortly",
            Limit::MaxAwaitingBroker => "too many requests waiting for the broker's acknowledgement (max_awaiting_broker); retry shortly",
        };
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "Too many requests in progress", detail).retry_after(OVERLOAD_RETRY_AFTER_SECS)
    }
}

/// The body length the request declares in `Content-Length`, if any (and parseable).
fn declared_length(req: &Request) -> Option<u64> {
    req.headers().get(axum::http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// 413 for a request declaring `len` > `max_body` bytes. The body is read and dropped chunk by
/// chunk (memory stays one chunk) when `len <= max_drain`; the connection is closed after.
async fn refuse_oversize(req: Request, len: u64, max_body: usize, max_drain: usize) -> Response {
    metrics::counter!("sendtrace_ingest_body_too_large_total").increment(1);
    if len <= max_drain as u64 {
        let mut body = req.into_body().into_data_stream();
        let mut read = 0u64;
        while let Some(Ok(chunk)) = futures::StreamExt::next(&mut body).await {
            read += chunk.len() as u64;
            if read > max_drain as u64 {
                break;
            }
        }
    }
    let mut resp = Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "Request body too large",
        format!("the request body ({len} bytes) exceeds the {max_body}-byte limit (max_body_bytes)"),
    )
    .into_response();
    resp.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    resp
}

/// Seconds a caller refused for load should wait.
pub const OVERLOAD_RETRY_AFTER_SECS: u32 = 1;

/// `router` behind the limits, outermost first: concurrency limit, timeout, problem+json.
pub fn apply(router: Router, config: &Config) -> Router {
    let handling = Places::new(Limit::MaxConcurrentRequests, config.max_concurrent_requests);
    let awaiting = Places::new(Limit::MaxAwaitingBroker, config.max_awaiting_broker);
    let timeout = Duration::from_millis(config.request_timeout_ms);
    let max_body = config.max_body_bytes;
    let max_drain = config.max_drain_bytes;
    router
        .layer(middleware::from_fn(move |req: Request, next: Next| async move {
            match declared_length(&req) {
                Some(len) if len > max_body as u64 => refuse_oversize(req, len, max_body, max_drain).await,
                _ => next.run(req).await,
            }
        }))
        .layer(middleware::map_response(move |resp: Response| async move {
            if resp.status().as_u16() < 400 || is_problem(&resp) {
                return resp;
            }
            let mut problem = Problem::for_status(resp.status());
            if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
                problem.detail = format!("the request body exceeds the {max_body}-byte limit (max_body_bytes)");
            }
            let allow = resp.headers().get(axum::http::header::ALLOW).cloned();
            let mut out = problem.into_response();
            if let Some(allow) = allow {
                out.headers_mut().insert(axum::http::header::ALLOW, allow);
            }
            out
        }))
        .layer(middleware::from_fn(move |req: Request, next: Next| async move {
            match tokio::time::timeout(timeout, next.run(req)).await {
                Ok(resp) => resp,
                Err(_) => Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    "Request timeout",
                    format!("the request was not received and handled within {} ms (request_timeout_ms)", timeout.as_millis()),
                )
                .into_response(),
            }
        }))
        .layer(middleware::from_fn(move |mut req: Request, next: Next| {
            let (handling, awaiting) = (handling.clone(), awaiting.clone());
            async move {
                let Some(place) = handling.try_take() else {
                    return Limit::MaxConcurrentRequests.count_refusal().problem().into_response();
                };
                // held here too, so the place is kept until the answer unless the handler
                // gives it back (`Admission::handled`)
                let admission = Admission { handling: Arc::new(std::sync::Mutex::new(Some(place))), awaiting };
                req.extensions_mut().insert(admission.clone());
                let resp = next.run(req).await;
                drop(admission);
                resp
            }
        }))
}
