//! `GET /v1/recipients/{address}/engagement`: last open, click and reply, human and machine
//! opens, and the engagement score with how it is computed.

use super::{time, ApiErrors};
use crate::auth::{Caller, Scope, TenantParam};
use crate::db::engagement as q;
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// How the score is computed (the `engagement` view; weights are set by `aggregator migrate`).
pub const SCORE_RULE: &str = "human opens × open_weight (5), + third_open_bonus (10) once a third open is seen, human clicks × click_weight (15), \
     replies × reply_weight (30); 0 after score_reset_days (30) without a signal; machine opens and unsubscribe-link clicks excluded";

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RecipientEngagement {
    /// Lower-cased; every spelling of it counts.
    pub address: String,
    pub last_open_at: Option<String>,
    pub last_click_at: Option<String>,
    pub last_reply_at: Option<String>,
    pub human_opens: u64,
    pub machine_opens: u64,
    pub human_clicks: u64,
    pub replies: u64,
    /// The score (of the address's highest-scoring spelling, when events used several).
    pub score: u64,
    pub score_rule: String,
}

/// No parameters besides `tenant`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoParams {}

#[utoipa::path(get, path = "/v1/recipients/{address}/engagement", tag = "messages",
    params(("address" = String, Path, description = "E-mail address, phone number or device token (case-insensitive)"), TenantParam),
    responses((status = 200, description = "The recipient's engagement", body = RecipientEngagement),
              (status = 404, description = "No events for this recipient", body = crate::error::Problem, content_type = "application/problem+json"), ApiErrors))]
pub async fn recipient(State(state): State<AppState>, caller: Caller, Path(address): Path<String>, RawQuery(query): RawQuery) -> Result<Json<RecipientEngagement>, ApiError> {
    caller.require(Scope::Messages)?;
    Params::of::<NoParams>(query.as_deref()).finish()?;
    let r = q::of(&state.db, &caller.tenant, &address).await?;
    if r.rows == 0 {
        return Err(ApiError::NotFound("no events for this recipient".into()));
    }
    let at = |ms: i64| (ms > 0).then(|| time(ms));
    Ok(Json(RecipientEngagement {
        address: address.to_ascii_lowercase(),
        last_open_at: at(r.last_open_at),
        last_click_at: at(r.last_click_at),
        last_reply_at: at(r.last_reply_at),
        human_opens: r.human_opens,
        machine_opens: r.machine_opens,
        human_clicks: r.human_clicks,
        replies: r.replies,
        score: r.score,
        score_rule: SCORE_RULE.into(),
    }))
}
