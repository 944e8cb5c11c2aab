//! `GET /v1/events`: the activity feed across broadcasts, newest first, keyset-paged on
//! `(occurred_at, event_id)`, which never change, so pages are stable while events arrive.

use super::{money, next_token, time, ApiErrors};
use crate::auth::{Caller, Scope, TenantParam};
use crate::db::events::{self as q, EventFilter};
use crate::error::ApiError;
use crate::page_token;
use crate::params::{self, Params};
use crate::AppState;
use axum::extract::{RawQuery, State};
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

#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventParams, TenantParam),
    responses((status = 200, description = "One page of events, newest first", body = EventPage), ApiErrors))]
pub async fn list(State(state): State<AppState>, caller: Caller, RawQuery(query): RawQuery) -> Result<Json<EventPage>, ApiError> {
    caller.require(Scope::Messages)?;
    let mut p = Params::of::<EventParams>(query.as_deref());
    let f = EventFilter {
        from: p.parsed("from", params::rfc3339),
        to: p.parsed("to", params::rfc3339),
        event_types: p.many_of("event_type", schemas::EventType::SYMBOLS),
        recipient: p.one("recipient"),
        broadcast: p.one("broadcast"),
        template: p.one("template"),
        sequence: p.one("sequence"),
    };
    if let (Some(a), Some(b)) = (f.from, f.to) {
        if a >= b {
            p.fail("from", "not before `to`");
        }
    }
    let size = p.page_size(state.config.default_page_size, state.config.max_page_size);
    let fp = page_token::fingerprint("events", &f);
    let after = p.parsed("page_token", |t| page_token::decode(t, &fp));
    p.finish()?;
    let rows = q::page(&state.db, &caller.tenant, &f, after, size).await?;
    let next_page_token = next_token(&rows, size, &fp, |r| (r.occurred_at, r.event_id.clone()));
    let events = rows
        .into_iter()
        .map(|e| {
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
        })
        .collect();
    Ok(Json(EventPage { events, next_page_token }))
}
