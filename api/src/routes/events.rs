//! `GET /v1/events`: the activity feed across broadcasts, newest first, keyset-paged on
//! `(occurred_at, event_id)`, which never change, so pages are stable while events arrive.

use super::{money, next_token, time, ApiErrors};
use crate::auth::{Caller, Scope, TenantParam};
use crate::db::events::{self as q, EventFilter};
use crate::error::ApiError;
use crate::page_token;
use crate::params::{self, Params};
use crate::AppState;
use crate::export::{self, Columns, Format};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FeedEvent {
    pub event_id: String,
    pub occurred_at: String,
    /// The delivery (`/v1/messages/{id}`).
    pub message_id: String,
    pub channel: String,
    pub provider: String,
    pub provider_event_name: String,
    pub event_type: String,
    pub bounce_class: String,
    pub machine: String,
    pub recipient: String,
    pub broadcast: Option<String>,
    pub sequence: Option<String>,
    pub template: Option<String>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub click_url: Option<String>,
    pub cost: Option<String>,
    pub currency: Option<String>,
}

impl Columns for FeedEvent {
    const COLUMNS: &'static [&'static str] = &[
        "event_id", "occurred_at", "message_id", "channel", "provider", "provider_event_name", "event_type", "bounce_class", "machine",
        "recipient", "broadcast", "sequence", "template", "error_code", "error_reason", "click_url", "cost", "currency",
    ];
}

impl From<q::EventRow> for FeedEvent {
    fn from(e: q::EventRow) -> FeedEvent {
        let has_cost = !e.cost_unit.is_empty();
        FeedEvent {
            event_id: e.event_id,
            occurred_at: time(e.occurred_at),
            message_id: e.delivery_key,
            channel: e.channel,
            provider: e.provider,
            provider_event_name: e.provider_event_name,
            event_type: e.event_type,
            bounce_class: e.bounce_class,
            machine: e.machine,
            recipient: e.recipient,
            broadcast: e.broadcast_id,
            sequence: e.sequence_id,
            template: e.template_key,
            error_code: e.error_code,
            error_reason: e.error_reason,
            click_url: e.click_url,
            cost: has_cost.then(|| money(e.cost_amount)),
            currency: has_cost.then_some(e.cost_unit),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<FeedEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Parameters of `/v1/events`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventParams {
    /// At or after (RFC 3339).
    from: Option<String>,
    /// Before (RFC 3339).
    to: Option<String>,
    /// Canonical event types (repeatable or comma-separated).
    event_type: Option<Vec<String>>,
    recipient: Option<String>,
    broadcast: Option<String>,
    template: Option<String>,
    sequence: Option<String>,
    /// Rows per page, 1..=1000 (default 50).
    page_size: Option<u32>,
    page_token: Option<String>,
}

/// Parameters of `/v1/recipients/{address}/events`: the feed's, the recipient fixed.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RecipientEventParams {
    /// At or after (RFC 3339).
    from: Option<String>,
    /// Before (RFC 3339).
    to: Option<String>,
    /// Canonical event types (repeatable or comma-separated).
    event_type: Option<Vec<String>>,
    broadcast: Option<String>,
    template: Option<String>,
    sequence: Option<String>,
    /// Rows per page, 1..=1000 (default 50).
    page_size: Option<u32>,
    page_token: Option<String>,
}

const FEED_CONTENT: &str = "One page of events, newest first (JSON); with `Accept: text/csv` or `application/x-ndjson` every \
                            matching event, streamed, each row with its `resume_token`";

#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventParams, TenantParam),
    responses((status = 200, description = FEED_CONTENT, content(
        (EventPage = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 406, description = "No acceptable media type", body = crate::error::Problem, content_type = "application/problem+json"), ApiErrors))]
pub async fn list(State(state): State<AppState>, caller: Caller, headers: HeaderMap, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    caller.require(Scope::Messages)?;
    let format = Format::negotiate(&headers)?;
    let p = Params::of::<EventParams>(query.as_deref());
    feed(state, caller.tenant, p, None, format).await
}

#[utoipa::path(get, path = "/v1/recipients/{address}/events", tag = "events",
    params(("address" = String, Path, description = "Address, number or device token (case-insensitive)"), RecipientEventParams, TenantParam),
    responses((status = 200, description = FEED_CONTENT, content(
        (EventPage = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 406, description = "No acceptable media type", body = crate::error::Problem, content_type = "application/problem+json"), ApiErrors))]
pub async fn recipient(State(state): State<AppState>, caller: Caller, Path(address): Path<String>, headers: HeaderMap, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    caller.require(Scope::Messages)?;
    let format = Format::negotiate(&headers)?;
    let mut p = Params::of::<RecipientEventParams>(query.as_deref());
    if address.is_empty() || address.len() > 320 {
        p.fail("address", "1 to 320 bytes");
    }
    feed(state, caller.tenant, p, Some(address), format).await
}

async fn feed(state: AppState, tenant: String, mut p: Params, fixed_recipient: Option<String>, format: Format) -> Result<Response, ApiError> {
    let mut f = EventFilter {
        from: p.parsed("from", params::rfc3339),
        to: p.parsed("to", params::rfc3339),
        event_types: p.many_of("event_type", schemas::EventType::SYMBOLS),
        recipient: if fixed_recipient.is_some() { None } else { p.one("recipient") },
        broadcast: p.one("broadcast"),
        template: p.one("template"),
        sequence: p.one("sequence"),
    };
    if fixed_recipient.is_some() {
        f.recipient = fixed_recipient;
    }
    if let (Some(a), Some(b)) = (f.from, f.to) {
        if a >= b {
            p.fail("from", "not before `to`");
        }
    }
    let size = p.page_size(state.config.default_page_size, state.config.max_page_size);
    let fp = page_token::fingerprint("events", &f);
    let after = p.parsed("page_token", |t| page_token::decode(t, &fp));
    p.finish()?;
    if format != Format::Json {
        let chunk = state.config.max_page_size;
        let first = q::page(&state.db, &tenant, &f, after, chunk).await?;
        let fetch = move |after| {
            let (state, tenant, f) = (state.clone(), tenant.clone(), f.clone());
            async move { q::page(&state.db, &tenant, &f, Some(after), chunk).await }
        };
        return Ok(export::stream(format, fp, chunk, first, fetch, |r: &q::EventRow| (r.occurred_at, r.event_id.clone()), FeedEvent::from));
    }
    let rows = q::page(&state.db, &tenant, &f, after, size).await?;
    let next_page_token = next_token(&rows, size, &fp, |r| (r.occurred_at, r.event_id.clone()));
    let events = rows.into_iter().map(FeedEvent::from).collect();
    Ok(Json(EventPage { events, next_page_token }).into_response())
}
