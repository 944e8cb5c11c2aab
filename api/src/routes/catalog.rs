//! `GET /v1/broadcasts`, `/v1/sequences`, `/v1/templates`: each with its funnel
//! (sent → delivered → opened → clicked, unique and total, people only and all; bounces,
//! complaints, unsubscribes, cost), from the signed sums of the latest delivery rows
//! (`funnels`, `funnel_recipients`; `db::catalog`).

use super::{money, time, ApiErrors};
use crate::auth::{Caller, Scope, TenantParam};
use crate::db::catalog::{self as q, Dimension};
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Unique (deliveries with at least one) and total counts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Engagement {
    pub unique: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Funnel {
    pub deliveries: u64,
    pub sent: u64,
    pub delivered: u64,
    /// People only.
    pub opened: Engagement,
    /// People and machines.
    pub opened_all: Engagement,
    pub clicked: Engagement,
    pub clicked_all: Engagement,
    pub hard_bounces: u64,
    pub complaints: u64,
    pub unsubscribes: u64,
    pub failed: u64,
    /// Distinct recipients (ASCII lower-cased, as every unique count: `A@x.io` and `a@x.io` are one).
    pub unique_recipients: u64,
    /// Per currency, decimal strings.
    pub cost: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CatalogEntry {
    pub id: String,
    /// The latest status time any of its deliveries reached while in it (a delivery's status
    /// time is when it entered its status).
    pub last_activity_at: String,
    pub funnel: Funnel,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CatalogPage {
    pub items: Vec<CatalogEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Parameters of `/v1/broadcasts`, `/v1/sequences`, `/v1/templates`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CatalogParams {
    /// Only this id.
    id: Option<String>,
    /// Rows per page, 1..=1000 (default 50).
    page_size: Option<u32>,
    page_token: Option<String>,
}

async fn catalog(state: &AppState, caller: &Caller, dim: Dimension, query: Option<&str>) -> Result<CatalogPage, ApiError> {
    caller.require(Scope::Stats)?;
    let mut p = Params::of::<CatalogParams>(query);
    let only = p.one("id");
    let size = p.page_size(state.config.default_page_size, state.config.max_page_size);
    // ids ascending: the token is the last id (no filters to bind besides `id`, which pins one row)
    let after = p
        .parsed("page_token", |t| URL_SAFE_NO_PAD.decode(t).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| "not a page token of this API".to_string()))
        .unwrap_or_default();
    p.finish()?;
    let rows = q::funnels(&state.db, &caller.tenant, dim, only.as_deref(), &after, size).await?;
    let next_page_token = (rows.len() == size as usize).then(|| rows.last().map(|r| URL_SAFE_NO_PAD.encode(r.id.as_bytes()))).flatten();
    let items = rows
        .into_iter()
        .map(|r| CatalogEntry {
            last_activity_at: time(r.last_activity_at),
            funnel: Funnel {
                deliveries: r.deliveries,
                sent: r.sent,
                delivered: r.delivered,
                opened: Engagement { unique: r.opened_human, total: r.opens_human },
                opened_all: Engagement { unique: r.opened_all, total: r.opens_all },
                clicked: Engagement { unique: r.clicked_human, total: r.clicks_human },
                clicked_all: Engagement { unique: r.clicked_all, total: r.clicks_all },
                hard_bounces: r.hard_bounces,
                complaints: r.complaints,
                unsubscribes: r.unsubscribes,
                failed: r.failed,
                unique_recipients: r.unique_recipients,
                cost: r.costs().map(|(unit, amount)| (unit.to_string(), money(amount))).collect(),
            },
            id: r.id,
        })
        .collect();
    Ok(CatalogPage { items, next_page_token })
}

#[utoipa::path(get, path = "/v1/broadcasts", tag = "funnels", params(CatalogParams, TenantParam),
    responses((status = 200, description = "Broadcasts with their funnels, by id", body = CatalogPage), ApiErrors))]
pub async fn broadcasts(State(state): State<AppState>, caller: Caller, RawQuery(query): RawQuery) -> Result<Json<CatalogPage>, ApiError> {
    Ok(Json(catalog(&state, &caller, Dimension::Broadcast, query.as_deref()).await?))
}

#[utoipa::path(get, path = "/v1/sequences", tag = "funnels", params(CatalogParams, TenantParam),
    responses((status = 200, description = "Sequences with their funnels, by id", body = CatalogPage), ApiErrors))]
pub async fn sequences(State(state): State<AppState>, caller: Caller, RawQuery(query): RawQuery) -> Result<Json<CatalogPage>, ApiError> {
    Ok(Json(catalog(&state, &caller, Dimension::Sequence, query.as_deref()).await?))
}

#[utoipa::path(get, path = "/v1/templates", tag = "funnels", params(CatalogParams, TenantParam),
    responses((status = 200, description = "Templates with their funnels, by id", body = CatalogPage), ApiErrors))]
pub async fn templates(State(state): State<AppState>, caller: Caller, RawQuery(query): RawQuery) -> Result<Json<CatalogPage>, ApiError> {
    Ok(Json(catalog(&state, &caller, Dimension::Template, query.as_deref()).await?))
}
