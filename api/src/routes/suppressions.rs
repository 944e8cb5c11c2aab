//! The suppression list and its changes by hand:
//! * `GET /v1/suppressions`: the effective list (the aggregator's entries and manual adds,
//!   minus removals), by address;
//! * `GET /v1/suppressions/{address}`: one address, whether it is suppressed and its whole
//!   history (suppressing events, manual adds and removals with who, when and why);
//! * `POST /v1/suppressions`: add addresses by hand (or import a list), with a reason;
//! * `DELETE /v1/suppressions/{address}?reason=..`: an explicit override, with a reason.
//!
//! A change is first published on the suppression topic (key `tenant/address`; an add as an
//! entry with `reason: "manual"`, a removal as `removed: true`), then recorded in
//! `suppression_changes`; a failure of either answers 503 and retrying is safe (the topic is
//! compacted, the insert carries a deduplication token). A suppressing event after a removal
//! suppresses the address again (the aggregator publishes its entry again, and the list
//! counts it), see `db::suppressions`.

use super::{time, ApiErrors};
use crate::auth::{Caller, Scope, TenantParam};
use crate::db::suppressions::{self as q, ChangeRow, SuppressionFilter, SuppressionRow};
use crate::error::ApiError;
use crate::page_token;
use crate::params::Params;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

const SCOPES: &[&str] = &["all", "email", "email_marketing", "sms", "whatsapp", "push"];
const REASONS: &[&str] = &["complaint", "hard_bounce", "push_token_invalid", "unsubscribe", "soft_bounces", "manual"];
/// Longest address, number or token (as the edge and the normalizer bound recipients).
pub const MAX_ADDRESS_BYTES: usize = 320;
/// Longest reason of a change.
pub const MAX_REASON_CHARS: usize = 500;
/// Most history items one address answer holds (newest kept).
pub const MAX_HISTORY: u32 = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Suppression {
    pub address: String,
    /// `all`, `email`, `email_marketing`, `sms`, `whatsapp` or `push`.
    pub scope: String,
    /// `complaint`, `hard_bounce`, `push_token_invalid`, `unsubscribe`, `soft_bounces` or `manual`.
    pub reason: String,
    /// The channel of the causing event (empty for a manual add).
    pub channel: String,
    /// `event` (the aggregator's rules) or `api` (added by hand).
    pub source: String,
    /// The event that caused it (`/v1/events`); empty for a manual add.
    pub event_id: String,
    /// When the causing event happened, or the manual add was made.
    pub occurred_at: String,
    /// Manual adds: the key name that made it, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl From<SuppressionRow> for Suppression {
    fn from(r: SuppressionRow) -> Suppression {
        let manual = r.source == "api";
        Suppression {
            address: r.address,
            scope: r.scope,
            reason: r.reason,
            channel: r.channel,
            source: r.source,
            event_id: r.event_id,
            occurred_at: time(r.occurred_at),
            who: manual.then_some(r.who),
            note: manual.then_some(r.note),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SuppressionPage {
    pub suppressions: Vec<Suppression>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Parameters of `/v1/suppressions`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SuppressionParams {
    scope: Option<String>,
    reason: Option<String>,
    /// Addresses starting with this (case-insensitive).
    address_prefix: Option<String>,
    /// Rows per page, 1..=1000 (default 50).
    page_size: Option<u32>,
    page_token: Option<String>,
}

fn one_of(allowed: &'static [&'static str]) -> impl Fn(&str) -> Result<String, String> {
    move |v| if allowed.contains(&v) { Ok(v.to_string()) } else { Err(format!("one of: {}", allowed.join(", "))) }
}

#[utoipa::path(get, path = "/v1/suppressions", tag = "suppressions", params(SuppressionParams, TenantParam),
    responses((status = 200, description = "One page of suppressed addresses, by address", body = SuppressionPage), ApiErrors))]
pub async fn list(State(state): State<AppState>, caller: Caller, RawQuery(query): RawQuery) -> Result<Json<SuppressionPage>, ApiError> {
    caller.require(Scope::Messages)?;
    let mut p = Params::of::<SuppressionParams>(query.as_deref());
    let f = SuppressionFilter {
        scope: p.parsed("scope", one_of(SCOPES)),
        reason: p.parsed("reason", one_of(REASONS)),
        address_prefix: p.one("address_prefix").map(|a| a.to_ascii_lowercase()),
        address: None,
    };
    let size = p.page_size(state.config.default_page_size, state.config.max_page_size);
    let fp = page_token::fingerprint("suppressions", &f);
    let after = p.parsed("page_token", |t| page_token::decode(t, &fp)).map(|(_, k)| k).unwrap_or_default();
    p.finish()?;
    let rows = q::page(&state.db, &caller.tenant, &f, &after, size).await?;
    let next_page_token = super::next_token(&rows, size, &fp, |r| (0, r.address.clone()));
    Ok(Json(SuppressionPage { suppressions: rows.into_iter().map(Suppression::from).collect(), next_page_token }))
}

/// One step of an address's suppression history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryItem {
    pub at: String,
    /// `suppressed` (an event suppressed it), `added` or `removed` (by hand).
    pub action: String,
    /// `event` or `api`.
    pub source: String,
    /// For an event: complaint, hard_bounce, push_token_invalid, unsubscribe or soft_bounces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Changes by hand: the key name, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AddressSuppression {
    pub address: String,
    pub suppressed: bool,
    /// The entry in force, if suppressed.
    pub current: Option<Suppression>,
    /// Oldest first (at most the newest 1000 steps).
    pub history: Vec<HistoryItem>,
}

/// The reason and scope an event's suppression has (aggregator/src/suppression.rs).
fn event_reason(event_type: &str, channel: &str) -> (&'static str, String) {
    match (event_type, channel) {
        ("complained", _) => ("complaint", "all".into()),
        ("bounced", "push") => ("push_token_invalid", "push".into()),
        ("bounced", c) => ("hard_bounce", c.into()),
        (_, c) => ("unsubscribe", c.into()),
    }
}

fn address_param(p: &mut Params, address: &str) -> String {
    let a = address.trim().to_ascii_lowercase();
    if let Err(e) = check_address(&a) {
        p.fail("address", e);
    }
    a
}

fn check_address(a: &str) -> Result<(), String> {
    if a.is_empty() || a.len() > MAX_ADDRESS_BYTES {
        return Err(format!("1 to {MAX_ADDRESS_BYTES} bytes"));
    }
    if a.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("no spaces or control characters".into());
    }
    Ok(())
}

/// Parameters of `/v1/suppressions/{address}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AddressParams {}

#[utoipa::path(get, path = "/v1/suppressions/{address}", tag = "suppressions",
    params(("address" = String, Path, description = "Address, number or device token (case-insensitive)"), AddressParams, TenantParam),
    responses((status = 200, description = "Whether the address is suppressed, and its history", body = AddressSuppression), ApiErrors))]
pub async fn one(State(state): State<AppState>, caller: Caller, Path(address): Path<String>, RawQuery(query): RawQuery) -> Result<Json<AddressSuppression>, ApiError> {
    caller.require(Scope::Messages)?;
    let mut p = Params::of::<AddressParams>(query.as_deref());
    let address = address_param(&mut p, &address);
    p.finish()?;
    Ok(Json(address_state(&state, &caller.tenant, &address).await?))
}

async fn address_state(state: &AppState, tenant: &str, address: &str) -> Result<AddressSuppression, ApiError> {
    let db = &state.db;
    let f = SuppressionFilter { address: Some(address.to_string()), ..Default::default() };
    let current = q::page(db, tenant, &f, "", 1).await?.into_iter().next().map(Suppression::from);
    let mut history: Vec<(i64, HistoryItem)> = Vec::new();
    for e in q::suppressing_events(db, tenant, address, MAX_HISTORY).await? {
        let (reason, scope) = event_reason(&e.event_type, &e.channel);
        history.push((
            e.occurred_at,
            HistoryItem { at: time(e.occurred_at), action: "suppressed".into(), source: "event".into(), reason: Some(reason.into()), scope, event_id: Some(e.event_id), who: None, note: None },
        ));
    }
    if let Some(entry) = q::entry(db, tenant, address).await? {
        if entry.reason == "soft_bounces" {
            history.push((
                entry.occurred_at,
                HistoryItem { at: time(entry.occurred_at), action: "suppressed".into(), source: "event".into(), reason: Some(entry.reason), scope: entry.scope, event_id: Some(entry.event_id), who: None, note: None },
            ));
        }
    }
    for c in q::changes(db, tenant, address, MAX_HISTORY).await? {
        history.push((c.at, HistoryItem { at: time(c.at), action: c.action, source: "api".into(), reason: None, scope: c.scope, event_id: None, who: Some(c.who), note: Some(c.note) }));
    }
    history.sort_by_key(|h| h.0);
    let skip = history.len().saturating_sub(MAX_HISTORY as usize);
    Ok(AddressSuppression {
        address: address.to_string(),
        suppressed: current.is_some(),
        current,
        history: history.into_iter().skip(skip).map(|(_, h)| h).collect(),
    })
}

/// `POST /v1/suppressions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSuppressions {
    /// Addresses, numbers or device tokens (1 to `max_suppression_addresses`, 1000 by default;
    /// case-insensitive; duplicates count once).
    pub addresses: Vec<String>,
    /// Why (1 to 500 characters); kept in the history.
    pub reason: String,
    /// `all` (default), `email`, `email_marketing`, `sms`, `whatsapp` or `push`.
    #[serde(default)]
    pub scope: Option<String>,
}

/// One change by hand.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Change {
    pub address: String,
    /// `added` or `removed`.
    pub action: String,
    pub scope: String,
    /// Why, as given.
    pub note: String,
    /// The key name that made it.
    pub who: String,
    pub at: String,
}

impl From<&ChangeRow> for Change {
    fn from(r: &ChangeRow) -> Change {
        Change { address: r.address.clone(), action: r.action.clone(), scope: r.scope.clone(), note: r.note.clone(), who: r.who.clone(), at: time(r.at) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Changes {
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OneChange {
    pub change: Change,
}

fn check_reason(p: &mut Params, name: &str, reason: &str) {
    let n = reason.trim().chars().count();
    if n == 0 || n > MAX_REASON_CHARS {
        p.fail(name, format!("1 to {MAX_REASON_CHARS} characters"));
    } else if reason.chars().any(|c| c.is_control() && c != '\n') {
        p.fail(name, "no control characters");
    }
}

#[utoipa::path(post, path = "/v1/suppressions", tag = "suppressions", params(TenantParam), request_body = AddSuppressions,
    responses((status = 201, description = "The changes made (published on the suppression topic and kept in the history)", body = Changes),
        (status = 413, description = "Body over `max_body_bytes`", body = crate::error::Problem, content_type = "application/problem+json"), ApiErrors))]
pub async fn add(State(state): State<AppState>, caller: Caller, RawQuery(query): RawQuery, body: Bytes) -> Result<(StatusCode, Json<Changes>), ApiError> {
    caller.require(Scope::SuppressionsWrite)?;
    let mut p = Params::of::<AddressParams>(query.as_deref());
    if body.len() > state.config.max_body_bytes {
        return Err(ApiError::PayloadTooLarge(format!("the body is over {} bytes", state.config.max_body_bytes)));
    }
    let req: AddSuppressions = serde_json::from_slice(&body).map_err(|e| ApiError::param("body", format!("not the documented JSON object: {e}")))?;
    let max = state.config.max_suppression_addresses;
    if req.addresses.is_empty() || req.addresses.len() > max {
        p.fail("addresses", format!("1 to {max} addresses"));
    }
    let mut addresses: Vec<String> = Vec::new();
    for (i, a) in req.addresses.iter().enumerate().take(max) {
        let a = a.trim().to_ascii_lowercase();
        match check_address(&a) {
            Ok(()) => addresses.push(a),
            Err(e) => p.fail(&format!("addresses[{i}]"), e),
        }
    }
    addresses.sort();
    addresses.dedup();
    check_reason(&mut p, "reason", &req.reason);
    let scope = req.scope.clone().unwrap_or_else(|| "all".into());
    if !SCOPES.contains(&scope.as_str()) {
        p.fail("scope", format!("one of: {}", SCOPES.join(", ")));
    }
    p.finish()?;
    let now = chrono::Utc::now().timestamp_millis();
    let rows: Vec<ChangeRow> = addresses
        .into_iter()
        .map(|address| ChangeRow {
            change_id: change_id(&caller, &address, "added", now),
            tenant: caller.tenant.clone(),
            address,
            at: now,
            action: "added".into(),
            scope: scope.clone(),
            note: req.reason.trim().to_string(),
            who: caller.key_name.clone(),
        })
        .collect();
    apply(&state, &rows).await?;
    Ok((StatusCode::CREATED, Json(Changes { changes: rows.iter().map(Change::from).collect() })))
}

/// Parameters of `DELETE /v1/suppressions/{address}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RemoveParams {
    /// Why the address may be sent to again (1 to 500 characters); kept in the history.
    reason: String,
}

#[utoipa::path(delete, path = "/v1/suppressions/{address}", tag = "suppressions",
    params(("address" = String, Path, description = "Address, number or device token (case-insensitive)"), RemoveParams, TenantParam),
    responses((status = 200, description = "The removal (published on the suppression topic and kept in the history)", body = OneChange),
        (status = 404, description = "The address is not suppressed", body = crate::error::Problem, content_type = "application/problem+json"), ApiErrors))]
pub async fn remove(State(state): State<AppState>, caller: Caller, Path(address): Path<String>, RawQuery(query): RawQuery) -> Result<Json<OneChange>, ApiError> {
    caller.require(Scope::SuppressionsWrite)?;
    let mut p = Params::of::<RemoveParams>(query.as_deref());
    let address = address_param(&mut p, &address);
    let reason = p.one("reason").unwrap_or_default();
    check_reason(&mut p, "reason", &reason);
    p.finish()?;
    let f = SuppressionFilter { address: Some(address.clone()), ..Default::default() };
    let Some(current) = q::page(&state.db, &caller.tenant, &f, "", 1).await?.into_iter().next() else {
        return Err(ApiError::NotFound(format!("{address} is not suppressed")));
    };
    let now = chrono::Utc::now().timestamp_millis();
    let row = ChangeRow {
        change_id: change_id(&caller, &address, "removed", now),
        tenant: caller.tenant.clone(),
        address,
        at: now,
        action: "removed".into(),
        scope: current.scope,
        note: reason.trim().to_string(),
        who: caller.key_name.clone(),
    };
    apply(&state, std::slice::from_ref(&row)).await?;
    Ok(Json(OneChange { change: Change::from(&row) }))
}

fn change_id(caller: &Caller, address: &str, action: &str, at: i64) -> String {
    let mut h = Sha256::new();
    for part in [caller.tenant.as_str(), caller.key_name.as_str(), address, action, &at.to_string()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// Publishes each change on the suppression topic, then records them all.
async fn apply(state: &AppState, rows: &[ChangeRow]) -> Result<(), ApiError> {
    let timeout = Duration::from_millis(state.config.publish_timeout_ms);
    for r in rows {
        let value = match r.action.as_str() {
            "removed" => serde_json::json!({
                "tenant": r.tenant, "address": r.address, "removed": true, "scope": r.scope, "source": "api",
                "who": r.who, "note": r.note, "occurred_at": time(r.at),
            }),
            _ => serde_json::json!({
                "tenant": r.tenant, "address": r.address, "scope": r.scope, "reason": "manual", "channel": "", "event_id": "",
                "source": "api", "who": r.who, "note": r.note, "occurred_at": time(r.at),
            }),
        };
        let payload = serde_json::to_vec(&value).unwrap_or_default();
        let key = format!("{}/{}", r.tenant, r.address);
        state.producer.send(&state.config.suppressions_topic, &key, &payload, timeout).await.map_err(ApiError::PublishFailed)?;
        metrics::counter!("sendtrace_api_suppression_changes_total", "action" => r.action.clone()).increment(1);
    }
    let token = rows.iter().map(|r| r.change_id.as_str()).collect::<Vec<_>>().join(",");
    let token = hex::encode(&Sha256::digest(token.as_bytes())[..16]);
    q::record(&state.db, rows, &token).await?;
    tracing::info!(message = "Suppression changes applied.", tenant = %rows.first().map(|r| r.tenant.as_str()).unwrap_or(""), changes = rows.len());
    Ok(())
}
