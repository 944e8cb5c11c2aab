//! HTTP routes, one file per group of endpoints; every `/v1` handler is registered with
//! `utoipa_axum::routes!`, which mounts it and adds it to the OpenAPI document from the same
//! annotation, so the document cannot drift from the router.
//!
//! * `health`: the ClickHouse probe behind `/readyz` (`/healthz` and `/readyz` come from `runtime::telemetry`).
//! * `stats`: `/v1/stats`, `/v1/stats/summary`.
//! * `insights`: `/v1/stats/bounces` (reasons in classes), `/v1/stats/latency` (quantiles).
//! * `messages`: `/v1/messages`, `/v1/messages/{id}`, `/v1/broadcasts/{id}/report`.
//! * `events`: `/v1/events`, `/v1/recipients/{address}/events` (both also as CSV / NDJSON exports).
//! * `catalog`: `/v1/broadcasts`, `/v1/sequences`, `/v1/templates` with funnels.
//! * `suppressions`: `/v1/suppressions` (list, add), `/v1/suppressions/{address}` (state and history, remove).
//! * `stream`: `/v1/stream`, server-sent events of new canonical events.
//! * `engagement`: `/v1/recipients/{address}/engagement`.
//! * `senders`: `/v1/senders/health`.

pub mod catalog;
pub mod dashboard;
pub mod engagement;
pub mod events;
pub mod health;
pub mod insights;
pub mod messages;
pub mod senders;
pub mod stats;
pub mod stream;
pub mod suppressions;

use crate::error::{problem_response, ApiError, ParamError, Problem};
use crate::AppState;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sendtrace read API",
        description = "Stats, messages, events, funnels, suppressions and sender health of one tenant. \
                       Authenticate with `Authorization: Bearer <key>`; the key decides the tenant. \
                       Errors are RFC 9457 problem+json."
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem, ParamError)),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// The error responses every `/v1` endpoint can give.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ApiErrors {
    /// Invalid parameters; `errors[]` names each.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// Missing or unknown key.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The key belongs to another tenant, or lacks the scope.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// ClickHouse unavailable, or the query ran out of time (`max_execution_time`).
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(stats::series))
        .routes(routes!(stats::summary))
        .routes(routes!(insights::bounces))
        .routes(routes!(insights::latency))
        .routes(routes!(messages::list))
        .routes(routes!(messages::one))
        .routes(routes!(messages::broadcast_report))
        .routes(routes!(events::list))
        .routes(routes!(events::recipient))
        .routes(routes!(catalog::broadcasts))
        .routes(routes!(catalog::sequences))
        .routes(routes!(catalog::templates))
        .routes(routes!(suppressions::list, suppressions::add))
        .routes(routes!(suppressions::one, suppressions::remove))
        .routes(routes!(stream::live))
        .routes(routes!(senders::health))
        .routes(routes!(engagement::recipient))
}

/// The OpenAPI 3.1 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// The whole HTTP app: `/v1`, `/openapi.json`, `/healthz`, `/readyz`, `/metrics`.
pub fn app(state: AppState) -> Router {
    let (v1, doc) = api_router().split_for_parts();
    let doc = Arc::new(doc);
    let telemetry = state.health.clone();
    v1.route("/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
        .merge(dashboard::router())
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .fallback(not_found)
        .with_state(state)
        .merge(runtime::telemetry::router(telemetry))
}

async fn not_found() -> Response {
    problem_response(&ApiError::NotFound("no such endpoint; see /openapi.json".into()).problem())
}

/// RFC 3339 UTC with milliseconds.
pub fn time(ms: i64) -> String {
    schemas::event::rfc3339_millis::format(ms)
}

/// A `Decimal(38, 10)` mantissa as a decimal string (`0.0075`).
pub fn money(mantissa: i128) -> String {
    rust_decimal::Decimal::try_from_i128_with_scale(mantissa, schemas::money::MONEY_SCALE).map(|d| d.normalize().to_string()).unwrap_or_else(|_| "0".into())
}

/// A page size, and the next token when the page came back full.
pub fn next_token<T>(rows: &[T], page_size: u32, fingerprint: &str, cursor: impl Fn(&T) -> (i64, String)) -> Option<String> {
    if rows.len() < page_size as usize {
        return None;
    }
    rows.last().map(|r| {
        let (t, k) = cursor(r);
        crate::page_token::encode(fingerprint, t, &k)
    })
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        problem_response(&self)
    }
}

#[cfg(test)]
mod tests;
