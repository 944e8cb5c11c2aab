//! Engagement of one recipient (the `engagement` view over `events FINAL`, people only),
//! merged over the spellings of the address (event rows keep the case they came with).

use super::Db;
use crate::error::ApiError;
use clickhouse::Row;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct EngagementRow {
    /// UTC ms; 0 when never.
    pub last_open_at: i64,
    pub last_click_at: i64,
    pub last_reply_at: i64,
    pub human_opens: u64,
    pub machine_opens: u64,
    pub human_clicks: u64,
    pub replies: u64,
    pub score: u64,
    /// Spellings found; 0 = unknown recipient.
    pub rows: u64,
}

pub async fn of(db: &Db, tenant: &str, address: &str) -> Result<EngagementRow, ApiError> {
    let sql = "SELECT toUnixTimestamp64Milli(max(last_open_at)) AS last_open_at, toUnixTimestamp64Milli(max(last_click_at)) AS last_click_at, \
               toUnixTimestamp64Milli(max(last_reply_at)) AS last_reply_at, toUInt64(sum(human_opens)) AS human_opens, \
               toUInt64(sum(machine_opens)) AS machine_opens, toUInt64(sum(human_clicks)) AS human_clicks, toUInt64(sum(replies)) AS replies, \
               toUInt64(max(score)) AS score, count() AS rows FROM engagement WHERE tenant = ? AND lower(recipient) = lower(?)";
    db.run(db.lookup(sql).bind(tenant).bind(address).fetch_one::<EngagementRow>()).await
}
