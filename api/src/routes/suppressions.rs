//! `GET /v1/suppressions`: the suppression list (the strongest entry per address), by address.

use super::{time, ApiErrors};
use crate::auth::{Caller, Scope, TenantParam};
use crate::db::suppressions::{self as q, SuppressionFilter};
use crate::error::ApiError;
use crate::page_token;
use crate::params::Params;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::Json;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

const SCOPES: &[&str] = &["all", "email", "email_marketing", "sms", "whatsapp", "push"];
const REASONS: &[&str] = &["complaint", "hard_bounce", "push_token_invalid", "unsubscribe", "soft_bounces"];

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Suppression {
    pub address: String,
    /// `all`, `email`, `email_marketing`, `sms`, `whatsapp` or `push`.
    pub scope: String,
    /// `complaint`, `hard_bounce`, `push_token_invalid`, `unsubscribe` or `soft_bounces`.
    pub reason: String,
    pub channel: String,
    /// The event that caused it (`/v1/events`).
    pub event_id: String,
    pub occurred_at: String,
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
    };
    let size = p.page_size(state.config.default_page_size, state.config.max_page_size);
    let fp = page_token::fingerprint("suppressions", &f);
    let after = p.parsed("page_token", |t| page_token::decode(t, &fp)).map(|(_, k)| k).unwrap_or_default();
    p.finish()?;
    let rows = q::page(&state.db, &caller.tenant, &f, &after, size).await?;
    let next_page_token = super::next_token(&rows, size, &fp, |r| (0, r.address.clone()));
    let suppressions = rows
        .into_iter()
        .map(|r| Suppression { address: r.address, scope: r.scope, reason: r.reason, channel: r.channel, event_id: r.event_id, occurred_at: time(r.occurred_at) })
        .collect();
    Ok(Json(SuppressionPage { suppressions, next_page_token }))
}
