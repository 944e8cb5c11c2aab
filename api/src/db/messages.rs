//! Deliveries (latest status: pages from `delivery_order FINAL`, the same rows ordered by first
//! known time; one delivery from `deliveries FINAL`; a broadcast's counts by status from
//! `funnel_statuses`) and a delivery's chronology (`events FINAL`).

use super::{or_empty, Db};
use crate::error::ApiError;
use clickhouse::Row;
use serde::Deserialize;

use super::FIRST_SEEN_MS as SORT_AT;

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct MessageRow {
    pub sort_at: i64,
    pub delivery_key: String,
    pub channel: String,
    pub provider: String,
    pub provider_message_id: String,
    pub recipient: String,
    pub broadcast_id: Option<String>,
    pub sequence_id: Option<String>,
    pub template_key: Option<String>,
    pub labels: Vec<String>,
    pub status: String,
    pub status_at: i64,
    pub bounce_class: String,
    pub first_sent_at: Option<i64>,
    pub first_delivered_at: Option<i64>,
    pub first_opened_at: Option<i64>,
    pub first_clicked_at: Option<i64>,
    pub open_count: u32,
    pub click_count: u32,
    pub machine_open_count: u32,
    pub machine_click_count: u32,
    pub event_count: u32,
    pub last_error: Option<String>,
    pub cost_amount: i128,
    pub cost_unit: String,
}

const MESSAGE_COLUMNS: &str = "delivery_key, toString(channel) AS channel, toString(provider) AS provider, provider_message_id, recipient, \
     broadcast_id, sequence_id, template_key, labels, toString(status) AS status, status_at, toString(bounce_class) AS bounce_class, \
     first_sent_at, first_delivered_at, first_opened_at, first_clicked_at, open_count, click_count, machine_open_count, \
     machine_click_count, event_count, last_error, cost_amount, toString(cost_unit) AS cost_unit";

/// The filters of `/v1/messages`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFilter {
    pub broadcast: Option<String>,
    pub sequence: Option<String>,
    pub template: Option<String>,
    pub channel: Option<String>,
    pub provider: Option<String>,
    pub statuses: Vec<String>,
    /// Compared lower-cased (the table stores recipients lower-cased).
    pub recipient: Option<String>,
    pub recipient_domain: Option<String>,
    pub label: Option<String>,
    /// UTC ms, on the first known time.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// One page, newest first, strictly after the cursor `(sort_at, delivery_key)` when given.
pub async fn page(db: &Db, tenant: &str, f: &MessageFilter, after: Option<(i64, String)>, limit: u32) -> Result<Vec<MessageRow>, ApiError> {
    let sql = format!(
        "SELECT sort_at, {MESSAGE_COLUMNS} FROM delivery_order FINAL \
         WHERE tenant = ? AND (? = '' OR broadcast_id = ?) AND (? = '' OR sequence_id = ?) AND (? = '' OR template_key = ?) \
         AND (? = '' OR channel = ?) AND (? = '' OR provider = ?) AND (empty(?) OR has(CAST(? AS Array(String)), status)) \
         AND (? = '' OR recipient = lower(?)) AND (? = '' OR endsWith(recipient, concat('@', lower(?)))) AND (? = '' OR has(labels, ?)) \
         AND sort_at >= ? AND sort_at <= ? AND (? = 0 OR (sort_at, delivery_key) < (?, ?)) \
         ORDER BY sort_at DESC, delivery_key DESC LIMIT ?"
    );
    let (has_cursor, cursor_at, cursor_key) = match after {
        Some((t, k)) => (1u8, t, k),
        None => (0u8, 0, String::new()),
    };
    let mut q = db.query(&sql).bind(tenant);
    for v in [&f.broadcast, &f.sequence, &f.template, &f.channel, &f.provider] {
        q = q.bind(or_empty(v)).bind(or_empty(v));
    }
    q = q.bind(&f.statuses).bind(&f.statuses);
    for v in [&f.recipient, &f.recipient_domain, &f.label] {
        q = q.bind(or_empty(v)).bind(or_empty(v));
    }
    q = q.bind(f.since.unwrap_or(0)).bind(f.until.unwrap_or(i64::MAX));
    q = q.bind(has_cursor).bind(cursor_at).bind(cursor_key).bind(limit);
    db.run(q.fetch_all::<MessageRow>()).await
}

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct StatusCount {
    pub status: String,
    pub deliveries: u64,
}

/// Deliveries by status of one broadcast (the report's header).
pub async fn status_counts(db: &Db, tenant: &str, broadcast: &str) -> Result<Vec<StatusCount>, ApiError> {
    // `funnel_statuses` (migration 19): the signed sums the aggregator keeps per broadcast and
    // status, equal to the same count over `deliveries FINAL` (which this read scanned, every
    // delivery of the tenant, ~95 ms on 10 M events; BENCHMARKS.md §5)
    let sql = "SELECT toString(status) AS status, toUInt64(sum(funnel_statuses.deliveries)) AS deliveries FROM funnel_statuses \
               WHERE tenant = ? AND dimension = 'broadcast' AND id = ? GROUP BY status HAVING sum(funnel_statuses.deliveries) != 0 ORDER BY status";
    db.run(db.query(sql).bind(tenant).bind(broadcast).fetch_all::<StatusCount>()).await
}

/// One delivery by key, or by provider message id and recipient.
pub async fn one(db: &Db, tenant: &str, key: &str, provider_message_id: &str, recipient: &str) -> Result<Option<MessageRow>, ApiError> {
    let sql = format!(
        "SELECT {SORT_AT} AS sort_at, {MESSAGE_COLUMNS} FROM deliveries FINAL WHERE tenant = ? \
         AND ((? != '' AND delivery_key = ?) OR (? = '' AND provider_message_id = ? AND recipient = lower(?))) \
         ORDER BY delivery_key LIMIT 1"
    );
    let q = db.query(&sql).bind(tenant).bind(key).bind(key).bind(key).bind(provider_message_id).bind(recipient);
    db.run(q.fetch_optional::<MessageRow>()).await
}

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct ChronologyRow {
    pub event_id: String,
    pub occurred_at: i64,
    pub received_at: i64,
    pub event_type: String,
    pub bounce_class: String,
    pub provider: String,
    pub provider_event_name: String,
    pub machine: String,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub click_url: Option<String>,
    pub cost_amount: i128,
    pub cost_unit: String,
}

/// Every event of a delivery, in time order (ties by id).
pub async fn chronology(db: &Db, tenant: &str, delivery_key: &str, limit: u32) -> Result<Vec<ChronologyRow>, ApiError> {
    let sql = "SELECT event_id, occurred_at, received_at, toString(event_type) AS event_type, toString(bounce_class) AS bounce_class, \
               toString(provider) AS provider, toString(provider_event_name) AS provider_event_name, toString(machine) AS machine, \
               error_code, error_reason, click_url, cost_amount, toString(cost_unit) AS cost_unit \
               FROM events FINAL WHERE tenant = ? AND delivery_key = ? ORDER BY occurred_at, event_id LIMIT ?";
    db.run(db.lookup(sql).bind(tenant).bind(delivery_key).bind(limit).fetch_all::<ChronologyRow>()).await
}
