//! Bounce reasons (`attributed_failures FINAL`, filtered before `FINAL` where every version agrees: `Db::events_final`) and delivery latency
//! (`delivery_latency FINAL`, a range of it) for `/v1/stats/bounces` and `/v1/stats/latency`.

use super::{or_empty, Db};
use crate::error::ApiError;
use clickhouse::Row;
use serde::Deserialize;

/// Most distinct reason groups one bounce answer reads (biggest first); more is `truncated`.
pub const MAX_REASON_GROUPS: u32 = 20_000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailureFilter {
    /// UTC ms, inclusive / exclusive.
    pub from: i64,
    pub to: i64,
    pub channel: Option<String>,
    pub provider: Option<String>,
    pub broadcast: Option<String>,
    pub template: Option<String>,
}

/// Bounces and failures of one (provider, channel, type, class, code, text shape, domain).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct FailureGroup {
    pub provider: String,
    pub channel: String,
    pub event_type: String,
    pub bounce_class: String,
    pub code: String,
    /// One of the texts of the group (they differ only in digits, addresses and punctuation).
    pub text: String,
    pub domain: String,
    pub events: u64,
}

pub async fn failure_groups(db: &Db, tenant: &str, f: &FailureFilter) -> Result<Vec<FailureGroup>, ApiError> {
    // `attributed_failures` (migration 21): these events only, ordered by time, each event's
    // latest version kept by version under FINAL, attribution included. The conditions on what
    // every version shares go before FINAL (PREWHERE), the attribution's after it (WHERE).
    // Texts are grouped by their letters only, so "550 5.1.1 <a@x>: user unknown" and the
    // same for <b@y> fall in one group; the domain is the part after the last `@`.
    let sql = "SELECT toString(provider) AS provider, toString(channel) AS channel, toString(event_type) AS event_type, \
         toString(bounce_class) AS bounce_class, ifNull(error_code, '') AS code, any(substring(ifNull(error_reason, ''), 1, 300)) AS text, \
         if(position(recipient, '@') > 0, lower(substringIndex(recipient, '@', -1)), '') AS domain, count() AS events \
         FROM attributed_failures FINAL PREWHERE tenant = ? AND toUnixTimestamp64Milli(occurred_at) >= ? AND toUnixTimestamp64Milli(occurred_at) < ? \
         AND (? = '' OR channel = ?) AND (? = '' OR provider = ?) \
         WHERE (? = '' OR broadcast_id = ?) AND (? = '' OR template_key = ?) \
         GROUP BY provider, channel, event_type, bounce_class, code, \
           substring(replaceRegexpAll(lower(replaceRegexpAll(ifNull(error_reason, ''), '<[^>]*>|\\\\S+@\\\\S+', '')), '[^a-z]+', ' '), 1, 120), domain \
         ORDER BY events DESC, provider, code, domain LIMIT ?";
    let mut q = db.events_final(sql).bind(tenant).bind(f.from).bind(f.to);
    for v in [&f.channel, &f.provider, &f.broadcast, &f.template] {
        q = q.bind(or_empty(v)).bind(or_empty(v));
    }
    db.run(q.bind(MAX_REASON_GROUPS + 1).fetch_all::<FailureGroup>()).await
}

/// Latency quantiles of one bucket, provider and channel (milliseconds; empty when no pair).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct LatencyRow {
    /// Days since 1970-01-01 of the bucket's first day.
    pub bucket: u16,
    pub provider: String,
    pub channel: String,
    pub delivered: u64,
    pub to_delivered: Vec<i64>,
    pub opened: u64,
    pub to_open: Vec<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyFilter {
    pub from: i64,
    pub to: i64,
    pub channel: Option<String>,
    pub provider: Option<String>,
    pub broadcast: Option<String>,
    pub template: Option<String>,
}

/// Send (first sent, else queued) → first delivery, and first delivery → first human open, of
/// the deliveries sent in `[from, to)`, per bucket of the send time in `tz`.
///
/// From `delivery_latency` (migration 18: the deliveries' send time and both latencies, in
/// first-known-time order, read `FINAL`): a delivery is first known at or before its send, and
/// at most the tenant's `delivery_send_lag` before it, so the sends of `[from, to)` lie in the
/// first known times `[from - lag, to)`, a run of the table's order, not the whole tenant.
/// Only the key's columns (tenant, first known time) are filtered before `FINAL`; the rest,
/// which a newer version may change, after it, as ClickHouse does by default.
pub async fn latency(db: &Db, tenant: &str, f: &LatencyFilter, tz: &str, granularity: &str) -> Result<Vec<LatencyRow>, ApiError> {
    // `granularity` and `tz` are checked by the caller (closed set / configured zones); the
    // bucket function is a fixed fragment, the zone a bound literal.
    let bucket = match granularity {
        "week" => "toMonday(toDate(sent, ?))",
        "month" => "toStartOfMonth(toDate(sent, ?))",
        _ => "toDate(sent, ?)",
    };
    let sql = format!(
        "SELECT toUInt16({bucket}) AS bucket, toString(provider) AS provider, toString(channel) AS channel, \
         countIf(d >= 0) AS delivered, if(delivered > 0, quantilesExactIf(0.5, 0.9, 0.99)(d, d >= 0), []) AS to_delivered, \
         countIf(o >= 0) AS opened, if(opened > 0, quantilesExactIf(0.5, 0.9, 0.99)(o, o >= 0), []) AS to_open \
         FROM (SELECT provider, channel, fromUnixTimestamp64Milli(assumeNotNull(sent_at), 'UTC') AS sent, to_delivered AS d, to_open AS o \
               FROM delivery_latency FINAL \
               WHERE tenant = ? AND sort_at >= ? - (SELECT max(lag) FROM delivery_send_lag WHERE tenant = ?) AND sort_at < ? \
               AND sent_at >= ? AND sent_at < ? \
               AND (? = '' OR channel = ?) AND (? = '' OR provider = ?) AND (? = '' OR broadcast_id = ?) AND (? = '' OR template_key = ?)) \
         GROUP BY bucket, provider, channel ORDER BY bucket, provider, channel"
    );
    let mut q = db.query(&sql).bind(tz).bind(tenant).bind(f.from).bind(tenant).bind(f.to).bind(f.from).bind(f.to);
    for v in [&f.channel, &f.provider, &f.broadcast, &f.template] {
        q = q.bind(or_empty(v)).bind(or_empty(v));
    }
    db.run(q.fetch_all::<LatencyRow>()).await
}
