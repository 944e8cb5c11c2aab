//! HTTP routes.
//!
//! * `accept`: verify → wrap → store, shared by every route.
//! * `webhooks`: `POST /webhooks/{provider}/{tenant}[/{variant}]`.
//! * `sender`: `POST /v1/sends/{tenant}`, `/v1/events/{tenant}`, `/v1/push-results/{tenant}/{provider}`.

pub mod accept;
pub mod sender;
pub mod webhooks;

use crate::config::Config;
use crate::kafka::RawSink;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use axum::Router;
use runtime::telemetry::Health;
use std::sync::Arc;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub sink: Arc<dyn RawSink>,
}

/// The whole HTTP app: provider routes plus `/healthz` and `/metrics`.
pub fn app(state: AppState, health: Health) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/webhooks/{provider}/{tenant}", post(webhooks::receive))
        .route("/webhooks/{provider}/{tenant}/{variant}", post(webhooks::receive_variant))
        .route("/v1/sends/{tenant}", post(sender::sends))
        .route("/v1/events/{tenant}", post(sender::events))
        .route("/v1/push-results/{tenant}/{provider}", post(sender::push_results))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
        .merge(runtime::telemetry::router(health))
}

#[cfg(test)]
mod tests;
