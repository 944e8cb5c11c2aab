//! Sender health (`sender_health`): the latest row per sender is its current state.

use super::Db;
use crate::error::ApiError;
use clickhouse::Row;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct HealthRow {
    pub provider: String,
    pub sending_domain: String,
    pub sending_account: String,
    pub flagged: u8,
    pub reasons: Vec<String>,
    pub sent: u64,
    pub hard_bounces: u64,
    pub complaints: u64,
    pub window_hours: u32,
    pub evaluated_at: i64,
}

const COLUMNS: &str = "toString(provider) AS provider, sending_domain, sending_account, flagged, reasons, sent, hard_bounces, \
     complaints, window_hours, evaluated_at";

/// The current state of every sender of `tenant` (`only_flagged`: the open flags only).
pub async fn current(db: &Db, tenant: &str, only_flagged: bool) -> Result<Vec<HealthRow>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sender_health FINAL WHERE tenant = ? AND (? = 0 OR flagged = 1) \
         ORDER BY provider, sending_domain, sending_account"
    );
    db.run(db.query(&sql).bind(tenant).bind(only_flagged as u8).fetch_all::<HealthRow>()).await
}

/// Changes still stored (newest first). The table keeps the latest row per sender once merged,
/// so older changes may be gone; the compacted health topic has the same limit.
pub async fn history(db: &Db, tenant: &str, limit: u32) -> Result<Vec<HealthRow>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM sender_health WHERE tenant = ? ORDER BY evaluated_at DESC LIMIT ?");
    db.run(db.query(&sql).bind(tenant).bind(limit).fetch_all::<HealthRow>()).await
}
