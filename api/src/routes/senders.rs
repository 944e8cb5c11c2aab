//! `GET /v1/senders/health`: current flags per sender, and the changes still stored.

use super::{time, ApiErrors};
use crate::auth::{Caller, Scope, TenantParam};
use crate::db::health::{self as q, HealthRow};
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::Json;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SenderHealth {
    pub provider: String,
    pub sending_domain: String,
    pub sending_account: String,
    pub flagged: bool,
    /// Why it is flagged (empty when not).
    pub reasons: Vec<String>,
    /// Exact counts over the window.
    pub sent: u64,
    pub hard_bounces: u64,
    pub complaints: u64,
    pub window_hours: u32,
    /// When this state was evaluated (flagged / cleared at).
    pub evaluated_at: String,
}

impl From<HealthRow> for SenderHealth {
    fn from(h: HealthRow) -> Self {
        SenderHealth {
            provider: h.provider,
            sending_domain: h.sending_domain,
            sending_account: h.sending_account,
            flagged: h.flagged == 1,
            reasons: h.reasons,
            sent: h.sent,
            hard_bounces: h.hard_bounces,
            complaints: h.complaints,
            window_hours: h.window_hours,
            evaluated_at: time(h.evaluated_at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SenderHealthResponse {
    /// Every sender's current state.
    pub senders: Vec<SenderHealth>,
    /// Changes newest first, as far as still stored (the table keeps the latest per sender once merged).
    pub history: Vec<SenderHealth>,
}

/// Parameters of `/v1/senders/health`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct HealthParams {
    /// `true`: only senders flagged now.
    flagged: Option<bool>,
    /// Most history rows, 1..=1000 (default 50).
    page_size: Option<u32>,
}

#[utoipa::path(get, path = "/v1/senders/health", tag = "senders", params(HealthParams, TenantParam),
    responses((status = 200, description = "Sender health flags", body = SenderHealthResponse), ApiErrors))]
pub async fn health(State(state): State<AppState>, caller: Caller, RawQuery(query): RawQuery) -> Result<Json<SenderHealthResponse>, ApiError> {
    caller.require(Scope::Stats)?;
    let mut p = Params::of::<HealthParams>(query.as_deref());
    let flagged = p.parsed("flagged", |v| v.parse::<bool>().map_err(|_| "`true` or `false`".into())).unwrap_or(false);
    let size = p.page_size(state.config.default_page_size, state.config.max_page_size);
    p.finish()?;
    let senders = q::current(&state.db, &caller.tenant, flagged).await?.into_iter().map(SenderHealth::from).collect();
    let history = q::history(&state.db, &caller.tenant, size).await?.into_iter().map(SenderHealth::from).collect();
    Ok(Json(SenderHealthResponse { senders, history }))
}
