//! The activity feed: canonical events (`events FINAL`), newest first. An event's time and id
//! never change, so the keyset `(occurred_at, event_id)` is stable while new events arrive.

use super::{or_empty, Db};
use crate::error::ApiError;
use clickhouse::Row;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct EventRow {
    pub event_id: String,
    pub occurred_at: i64,
    pub delivery_key: String,
    pub channel: String,
    pub provider: String,
    pub provider_event_name: String,
    pub event_type: String,
    pub bounce_class: String,
    pub machine: String,
    pub recipient: String,
    pub broadcast_id: Option<String>,
    pub sequence_id: Option<String>,
    pub template_key: Option<String>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub click_url: Option<String>,
    pub cost_amount: i128,
    pub cost_unit: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// UTC ms, inclusive.
    pub from: Option<i64>,
    /// UTC ms, exclusive.
    pub to: Option<i64>,
    pub event_types: Vec<String>,
    pub recipient: Option<String>,
    pub broadcast: Option<String>,
    pub template: Option<String>,
    pub sequence: Option<String>,
}

pub async fn page(db: &Db, tenant: &str, f: &EventFilter, after: Option<(i64, String)>, limit: u32) -> Result<Vec<EventRow>, ApiError> {
    let sql = "SELECT event_id, occurred_at, delivery_key, toString(channel) AS channel, toString(provider) AS provider, \
               toString(provider_event_name) AS provider_event_name, toString(event_type) AS event_type, \
               toString(bounce_class) AS bounce_class, toString(machine) AS machine, recipient, broadcast_id, sequence_id, \
               template_key, error_code, error_reason, click_url, cost_amount, toString(cost_unit) AS cost_unit \
               FROM events FINAL WHERE tenant = ? \
               AND toUnixTimestamp64Milli(occurred_at) >= ? AND toUnixTimestamp64Milli(occurred_at) < ? \
               AND (empty(?) OR has(CAST(? AS Array(String)), event_type)) AND (? = '' OR lower(recipient) = lower(?)) \
               AND (? = '' OR broadcast_id = ?) AND (? = '' OR template_key = ?) AND (? = '' OR sequence_id = ?) \
               AND (? = 0 OR (toUnixTimestamp64Milli(occurred_at), event_id) < (?, ?)) \
               ORDER BY occurred_at DESC, event_id DESC LIMIT ?";
    let (has_cursor, cursor_at, cursor_id) = match after {
        Some((t, k)) => (1u8, t, k),
        None => (0u8, 0, String::new()),
    };
    let mut q = db.lookup(sql).bind(tenant).bind(f.from.unwrap_or(0)).bind(f.to.unwrap_or(i64::MAX));
    q = q.bind(&f.event_types).bind(&f.event_types);
    for v in [&f.recipient, &f.broadcast, &f.template, &f.sequence] {
        q = q.bind(or_empty(v)).bind(or_empty(v));
    }
    q = q.bind(has_cursor).bind(cursor_at).bind(cursor_id).bind(limit);
    db.run(q.fetch_all::<EventRow>()).await
}
