//! `GET /v1/messages` (latest status per delivery, keyset-paged), `GET /v1/messages/{id}`
//! (one delivery and its chronology) and `GET /v1/broadcasts/{id}/report`.
//!
//! Order: newest first by the delivery's first known time (the earliest of its queued, sent,
//! delivered, bounced, failed and status times), then by delivery key. Pages are keyset pages
//! (`(time, key) <` the last row's), so deliveries created while a client pages do not shift
//! the pages it has not read yet, and no depth costs more than the first page. A delivery whose
//! first known time moves earlier while paging (an older event of it arrives late, e.g. its
//! send record) can be listed again further down.

use super::{money, next_token, time, ApiErrors};
use crate::auth::{Caller, Scope, TenantParam};
use crate::db::messages::{self as q, MessageFilter, MessageRow};
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
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// A delivery's status (README, status rule).
pub const STATUSES: &[&str] = &["queued", "sent", "delivered", "opened", "read", "clicked", "replied", "failed", "bounced", "unsubscribed", "complained", "unknown"];

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Message {
    /// The delivery key (one message to one recipient): the `{id}` of `/v1/messages/{id}`.
    pub id: String,
    pub channel: String,
    pub provider: String,
    pub provider_message_id: String,
    pub recipient: String,
    pub broadcast: Option<String>,
    pub sequence: Option<String>,
    pub template: Option<String>,
    pub labels: Vec<String>,
    pub status: String,
    pub status_at: String,
    /// `hard`, `soft`, `undetermined` or empty.
    pub bounce_class: String,
    /// The first known time: the list's order.
    pub first_seen_at: String,
    pub sent_at: Option<String>,
    pub delivered_at: Option<String>,
    pub first_opened_at: Option<String>,
    pub first_clicked_at: Option<String>,
    /// Human opens / clicks; machine ones apart.
    pub opens: u32,
    pub clicks: u32,
    pub machine_opens: u32,
    pub machine_clicks: u32,
    pub events: u32,
    pub last_error: Option<String>,
    /// Decimal string; null without a cost.
    pub cost: Option<String>,
    pub currency: Option<String>,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Message {
        let has_cost = !r.cost_unit.is_empty();
        Message {
            id: r.delivery_key,
            channel: r.channel,
            provider: r.provider,
            provider_message_id: r.provider_message_id,
            recipient: r.recipient,
            broadcast: r.broadcast_id,
            sequence: r.sequence_id,
            template: r.template_key,
            labels: r.labels,
            status: r.status,
            status_at: time(r.status_at),
            bounce_class: r.bounce_class,
            first_seen_at: time(r.sort_at),
            sent_at: r.first_sent_at.map(time),
            delivered_at: r.first_delivered_at.map(time),
            first_opened_at: r.first_opened_at.map(time),
            first_clicked_at: r.first_clicked_at.map(time),
            opens: r.open_count,
            clicks: r.click_count,
            machine_opens: r.machine_open_count,
            machine_clicks: r.machine_click_count,
            events: r.event_count,
            last_error: r.last_error,
            cost: has_cost.then(|| money(r.cost_amount)),
            currency: has_cost.then_some(r.cost_unit),
        }
    }
}

impl Columns for Message {
    const COLUMNS: &'static [&'static str] = &[
        "id", "channel", "provider", "provider_message_id", "recipient", "broadcast", "sequence", "template", "labels", "status", "status_at",
        "bounce_class", "first_seen_at", "sent_at", "delivered_at", "first_opened_at", "first_clicked_at", "opens", "clicks", "machine_opens",
        "machine_clicks", "events", "last_error", "cost", "currency",
    ];
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// Absent on the last page. Valid only with the same filters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Parameters of `/v1/messages`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct MessageParams {
    broadcast: Option<String>,
    sequence: Option<String>,
    template: Option<String>,
    /// `email`, `sms`, `whatsapp` or `push`.
    channel: Option<String>,
    provider: Option<String>,
    /// Latest status (repeatable or comma-separated).
    status: Option<Vec<String>>,
    /// Exact address, number or token (case-insensitive).
    recipient: Option<String>,
    /// E-mail domain (`example.com`).
    recipient_domain: Option<String>,
    /// Deliveries carrying this label.
    label: Option<String>,
    /// First known time at or after (RFC 3339).
    since: Option<String>,
    /// First known time at or before (RFC 3339).
    until: Option<String>,
    /// Rows per page, 1..=1000 (default 50).
    page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    page_token: Option<String>,
}

/// Reads the list filters (shared with the broadcast report, which fixes `broadcast`).
fn message_filter(p: &mut Params) -> MessageFilter {
    let f = MessageFilter {
        broadcast: p.one("broadcast"),
        sequence: p.one("sequence"),
        template: p.one("template"),
        channel: p.parsed("channel", |v| schemas::Channel::parse(v).map(|c| c.as_str().to_string()).ok_or_else(|| format!("one of: {}", schemas::Channel::SYMBOLS.join(", ")))),
        provider: p.one("provider"),
        statuses: p.many_of("status", STATUSES),
        recipient: p.one("recipient").map(|r| r.to_ascii_lowercase()),
        recipient_domain: p.one("recipient_domain").map(|r| r.to_ascii_lowercase()),
        label: p.one("label"),
        since: p.parsed("since", params::rfc3339),
        until: p.parsed("until", params::rfc3339),
    };
    if let (Some(a), Some(b)) = (f.since, f.until) {
        if a > b {
            p.fail("since", "after `until`");
        }
    }
    f
}

async fn page(state: &AppState, tenant: &str, mut p: Params, fixed_broadcast: Option<&str>) -> Result<MessagePage, ApiError> {
    let mut f = message_filter(&mut p);
    if let Some(b) = fixed_broadcast {
        f.broadcast = Some(b.to_string());
    }
    let size = p.page_size(state.config.default_page_size, state.config.max_page_size);
    let fp = page_token::fingerprint("messages", &f);
    let after = p.parsed("page_token", |t| page_token::decode(t, &fp));
    p.finish()?;
    let rows = q::page(&state.db, tenant, &f, after, size).await?;
    let next_page_token = next_token(&rows, size, &fp, |r| (r.sort_at, r.delivery_key.clone()));
    Ok(MessagePage { messages: rows.into_iter().map(Message::from).collect(), next_page_token })
}

#[utoipa::path(get, path = "/v1/messages", tag = "messages", params(MessageParams, TenantParam),
    responses((status = 200, description = "One page of deliveries, newest first (JSON); with `Accept: text/csv` or \
        `application/x-ndjson` every matching delivery, streamed, each row with its `resume_token`", content(
        (MessagePage = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 406, description = "No acceptable media type", body = crate::error::Problem, content_type = "application/problem+json"), ApiErrors))]
pub async fn list(State(state): State<AppState>, caller: Caller, headers: HeaderMap, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    caller.require(Scope::Messages)?;
    let format = Format::negotiate(&headers)?;
    let mut p = Params::of::<MessageParams>(query.as_deref());
    if format == Format::Json {
        return Ok(Json(page(&state, &caller.tenant, p, None).await?).into_response());
    }
    let f = message_filter(&mut p);
    let _ = p.page_size(state.config.default_page_size, state.config.max_page_size);
    let fp = page_token::fingerprint("messages", &f);
    let after = p.parsed("page_token", |t| page_token::decode(t, &fp));
    p.finish()?;
    let chunk = state.config.max_page_size;
    let tenant = caller.tenant;
    let first = q::page(&state.db, &tenant, &f, after, chunk).await?;
    let fetch = move |after| {
        let (state, tenant, f) = (state.clone(), tenant.clone(), f.clone());
        async move { q::page(&state.db, &tenant, &f, Some(after), chunk).await }
    };
    Ok(export::stream(format, fp, chunk, first, fetch, |r: &MessageRow| (r.sort_at, r.delivery_key.clone()), Message::from))
}

/// Parameters of `/v1/broadcasts/{id}/report`: the list's, without `broadcast`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReportParams {
    channel: Option<String>,
    provider: Option<String>,
    /// Latest status (repeatable or comma-separated).
    status: Option<Vec<String>>,
    recipient: Option<String>,
    recipient_domain: Option<String>,
    label: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// Rows per page, 1..=1000 (default 50).
    page_size: Option<u32>,
    page_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BroadcastReport {
    pub broadcast: String,
    /// Deliveries by latest status (the whole broadcast, whatever the filters).
    pub counts_by_status: BTreeMap<String, u64>,
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[utoipa::path(get, path = "/v1/broadcasts/{id}/report", tag = "messages",
    params(("id" = String, Path, description = "Broadcast id"), ReportParams, TenantParam),
    responses((status = 200, description = "Counts by status and the broadcast's deliveries", body = BroadcastReport), ApiErrors))]
pub async fn broadcast_report(State(state): State<AppState>, caller: Caller, Path(id): Path<String>, RawQuery(query): RawQuery) -> Result<Json<BroadcastReport>, ApiError> {
    caller.require(Scope::Messages)?;
    let p = Params::of::<ReportParams>(query.as_deref());
    let page = page(&state, &caller.tenant, p, Some(&id)).await?;
    let counts = q::status_counts(&state.db, &caller.tenant, &id).await?;
    Ok(Json(BroadcastReport {
        broadcast: id,
        counts_by_status: counts.into_iter().map(|c| (c.status, c.deliveries)).collect(),
        messages: page.messages,
        next_page_token: page.next_page_token,
    }))
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChronologyEvent {
    pub event_id: String,
    pub occurred_at: String,
    pub received_at: String,
    pub event_type: String,
    pub bounce_class: String,
    pub provider: String,
    /// The provider's own name for the event.
    pub provider_event_name: String,
    /// Empty for people; else why it counts as a machine open or click.
    pub machine: String,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub click_url: Option<String>,
    pub cost: Option<String>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MessageDetail {
    pub message: Message,
    /// Every canonical event of the delivery in time order.
    pub events: Vec<ChronologyEvent>,
}

/// Parameters of `/v1/messages/{id}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DetailParams {
    /// With `recipient`: look up by the provider's message id; `{id}` is then ignored (use `-`).
    provider_message_id: Option<String>,
    recipient: Option<String>,
}

/// Most events returned for one delivery.
const MAX_CHRONOLOGY: u32 = 10_000;

#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "Delivery key (or `-` with provider_message_id and recipient)"), DetailParams, TenantParam),
    responses((status = 200, description = "The delivery and its chronology", body = MessageDetail),
              (status = 404, description = "No such delivery for this tenant", body = crate::error::Problem, content_type = "application/problem+json"), ApiErrors))]
pub async fn one(State(state): State<AppState>, caller: Caller, Path(id): Path<String>, RawQuery(query): RawQuery) -> Result<Json<MessageDetail>, ApiError> {
    caller.require(Scope::Messages)?;
    let mut p = Params::of::<DetailParams>(query.as_deref());
    let pmid = p.one("provider_message_id");
    let recipient = p.one("recipient");
    if pmid.is_some() != recipient.is_some() {
        p.fail(if pmid.is_some() { "recipient" } else { "provider_message_id" }, "provider_message_id and recipient go together");
    }
    p.finish()?;
    let key = if pmid.is_some() { "" } else { id.as_str() };
    let row = q::one(&state.db, &caller.tenant, key, pmid.as_deref().unwrap_or_default(), recipient.as_deref().unwrap_or_default())
        .await?
        .ok_or_else(|| ApiError::NotFound("no such delivery".into()))?;
    let events = q::chronology(&state.db, &caller.tenant, &row.delivery_key, MAX_CHRONOLOGY)
        .await?
        .into_iter()
        .map(|e| {
            let has_cost = !e.cost_unit.is_empty();
            ChronologyEvent {
                event_id: e.event_id,
                occurred_at: time(e.occurred_at),
                received_at: time(e.received_at),
                event_type: e.event_type,
                bounce_class: e.bounce_class,
                provider: e.provider,
                provider_event_name: e.provider_event_name,
                machine: e.machine,
                error_code: e.error_code,
                error_reason: e.error_reason,
                click_url: e.click_url,
                cost: has_cost.then(|| money(e.cost_amount)),
                currency: has_cost.then_some(e.cost_unit),
            }
        })
        .collect();
    Ok(Json(MessageDetail { message: row.into(), events }))
}
