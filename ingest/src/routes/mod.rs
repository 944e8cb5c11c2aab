//! HTTP routes.
//!
//! * `accept`: verify → wrap → store, shared by every route.
//! * `webhooks`: `POST /webhooks/{provider}/{tenant}[/{variant}]`.
//! * `sender`: `POST /v1/sends/{tenant}`, `/v1/events/{tenant}`, `/v1/push-results/{tenant}/{provider}`.
//! * `limits`: the request timeout, the concurrency limit, and problem+json for every error reply.

pub mod accept;
pub mod limits;
pub mod sender;
pub mod webhooks;

use crate::config::Config;
use crate::kafka::RawSink;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use runtime::telemetry::Health;
use std::sync::Arc;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub sink: Arc<dyn RawSink>,
    /// What verification keeps between requests (certificates, replay tokens, limits).
    pub verify: Arc<normalizer::providers::VerifyContext>,
}

/// The public HTTP app: provider routes and `/healthz` (`/metrics` is on the admin listener).
/// Every error reply is problem+json; requests beyond `max_concurrent_requests` get 503 with
/// `Retry-After`, requests slower than `request_timeout_ms` get 408.
pub fn app(state: AppState, health: Health) -> Router {
    let config = state.config.clone();
    let router = Router::new()
        .route("/webhooks/{provider}/{tenant}", post(webhooks::receive))
        .route("/webhooks/{provider}/{tenant}/{variant}", post(webhooks::receive_variant))
        .route("/v1/sends/{tenant}", post(sender::sends))
        .route("/v1/events/{tenant}", post(sender::events))
        .route("/v1/push-results/{tenant}/{provider}", post(sender::push_results))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
        .route("/healthz", get(healthz).with_state(health))
        .fallback(|| async { StatusCode::NOT_FOUND });
    limits::apply(router, &config)
}

async fn healthz(State(h): State<Health>) -> (StatusCode, &'static str) {
    if h.is_ready() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod proptests;
