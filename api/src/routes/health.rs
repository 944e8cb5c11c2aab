//! `/readyz`: ready when ClickHouse answers (`/healthz`, process up, comes from `runtime::telemetry`).

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;

pub async fn readyz(State(s): State<AppState>) -> Result<&'static str, ApiError> {
    s.db.ping().await?;
    Ok("ok\n")
}
