//! Counters per bucket (`counters`, or `attributed_counters` when a broadcast, sequence or
//! template is involved) and unique recipients (`unique_recipients`, `uniqExactMerge`).

use super::Db;
use crate::error::ApiError;
use clickhouse::Row;
use serde::Deserialize;

/// A dimension a series can be split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupBy {
    Channel,
    Provider,
    Broadcast,
    Template,
    EventType,
}

impl GroupBy {
    pub const NAMES: [&'static str; 5] = ["channel", "provider", "broadcast", "template", "event_type"];

    pub fn parse(s: &str) -> Option<GroupBy> {
        match s {
            "channel" => Some(GroupBy::Channel),
            "provider" => Some(GroupBy::Provider),
            "broadcast" => Some(GroupBy::Broadcast),
            "template" => Some(GroupBy::Template),
            "event_type" => Some(GroupBy::EventType),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The column (a fixed identifier, never request text).
    fn column(self) -> &'static str {
        match self {
            GroupBy::Channel => "channel",
            GroupBy::Provider => "provider",
            GroupBy::Broadcast => "broadcast_id",
            GroupBy::Template => "template_key",
            GroupBy::EventType => "event_type",
        }
    }

    fn needs_attribution(self) -> bool {
        matches!(self, GroupBy::Broadcast | GroupBy::Template)
    }
}

/// Which counters to read.
#[derive(Debug, Clone, Default)]
pub struct CounterFilter {
    pub channels: Vec<String>,
    pub providers: Vec<String>,
    pub broadcasts: Vec<String>,
    pub sequences: Vec<String>,
    pub templates: Vec<String>,
}

impl CounterFilter {
    fn needs_attribution(&self) -> bool {
        !(self.broadcasts.is_empty() && self.sequences.is_empty() && self.templates.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct CounterRow {
    /// `YYYY-MM-DD`.
    pub bucket: String,
    pub g1: String,
    pub g2: String,
    pub event_type: String,
    pub bounce_class: String,
    /// '' for people; else the machine reason.
    pub machine: String,
    pub cost_unit: String,
    pub events: i64,
    /// `Decimal(38, 10)` mantissa.
    pub cost: i128,
}

/// Sums per bucket × group × event type × bounce class × machine × currency, for buckets
/// `from..=to` (`YYYY-MM-DD`) of `period`.
pub async fn counters(db: &Db, tenant: &str, period: &str, from: &str, to: &str, f: &CounterFilter, group: &[GroupBy]) -> Result<Vec<CounterRow>, ApiError> {
    let attributed = f.needs_attribution() || group.iter().any(|g| g.needs_attribution());
    let g1 = group.first().map(|g| g.column()).unwrap_or("''");
    let g2 = group.get(1).map(|g| g.column()).unwrap_or("''");
    let (table, attribution_filter) = if attributed {
        (
            "attributed_counters",
            " AND (empty(?) OR has(CAST(? AS Array(String)), broadcast_id)) AND (empty(?) OR has(CAST(? AS Array(String)), sequence_id)) AND (empty(?) OR has(CAST(? AS Array(String)), template_key))",
        )
    } else {
        ("counters", "")
    };
    let sql = format!(
        "SELECT toString(bucket_start) AS bucket, toString({g1}) AS g1, toString({g2}) AS g2, toString(event_type) AS event_type, \
         toString(bounce_class) AS bounce_class, toString(machine) AS machine, toString(cost_unit) AS cost_unit, \
         toInt64(sum(events)) AS events, toDecimal128(sum(cost_amount), 10) AS cost \
         FROM {table} WHERE tenant = ? AND period = ? AND bucket_start >= toDate(?) AND bucket_start <= toDate(?) \
         AND (empty(?) OR has(CAST(? AS Array(String)), channel)) AND (empty(?) OR has(CAST(? AS Array(String)), provider)){attribution_filter} \
         GROUP BY bucket, g1, g2, event_type, bounce_class, machine, cost_unit HAVING events != 0 OR cost != 0"
    );
    let mut q = db.query(&sql).bind(tenant).bind(period).bind(from).bind(to);
    q = q.bind(&f.channels).bind(&f.channels).bind(&f.providers).bind(&f.providers);
    if attributed {
        q = q.bind(&f.broadcasts).bind(&f.broadcasts).bind(&f.sequences).bind(&f.sequences).bind(&f.templates).bind(&f.templates);
    }
    db.run(q.fetch_all::<CounterRow>()).await
}

/// Unique recipients of one period: delivered to, opening and clicking (people only).
#[derive(Debug, Clone, Default, PartialEq, Row, Deserialize)]
pub struct UniqueRow {
    /// 1 for the days from `from`, 0 for those before.
    pub current: u8,
    pub reached: u64,
    /// Opened or read.
    pub opened: u64,
    pub clicked: u64,
}

/// Unique recipients delivered to, opening (people) and clicking (people) over the days
/// `from..=to` and `prev_from..from` (`YYYY-MM-DD`) of `period` (`day` or `day:<zone>`), in one
/// read: (current, previous), zeros for a period without any.
///
/// From `recipient_days` (migration 16: a row per day, event type and recipient hash) when it
/// holds every day of the range, else from `unique_recipients`' sets; both count the same
/// recipients (the same 128-bit hash of the lower-cased address). On the 10 M-event benchmark,
/// 30 days and the 30 before: 64–70 ms from `recipient_days`, 107–115 ms from the sets (and
/// ~126 ms as two reads, one per period; BENCHMARKS.md §5). A day of a zone starts up to 14 hours
/// before the UTC day of the same date, hence the day of margin after `complete_from`.
pub async fn unique_recipients(db: &Db, tenant: &str, period: &str, prev_from: &str, from: &str, to: &str) -> Result<(UniqueRow, UniqueRow), ApiError> {
    let whole = match (db.recipient_days_from().await, prev_from.parse::<chrono::NaiveDate>()) {
        (Some(complete), Ok(first)) => first > complete && (period == "day" || period.starts_with("day:")),
        _ => false,
    };
    let sql = if whole {
        "SELECT toUInt8(bucket_start >= toDate(?)) AS current, uniqExactIf(recipient, event_type = 'delivered') AS reached, \
         uniqExactIf(recipient, event_type IN ('opened', 'read')) AS opened, uniqExactIf(recipient, event_type = 'clicked') AS clicked \
         FROM recipient_days WHERE tenant = ? AND period = ? AND bucket_start >= toDate(?) AND bucket_start <= toDate(?) GROUP BY current"
    } else {
        "SELECT toUInt8(bucket_start >= toDate(?)) AS current, uniqExactMergeIf(recipients, event_type = 'delivered') AS reached, \
         uniqExactMergeIf(recipients, event_type IN ('opened', 'read')) AS opened, uniqExactMergeIf(recipients, event_type = 'clicked') AS clicked \
         FROM unique_recipients WHERE tenant = ? AND period = ? AND bucket_start >= toDate(?) AND bucket_start <= toDate(?) \
         AND event_type IN ('delivered', 'opened', 'read', 'clicked') AND machine = '' GROUP BY current"
    };
    let rows = db.run(db.query(sql).bind(from).bind(tenant).bind(period).bind(prev_from).bind(to).fetch_all::<UniqueRow>()).await?;
    let of = |current: u8| rows.iter().find(|r| r.current == current).cloned().unwrap_or_default();
    Ok((of(1), of(0)))
}

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct AsOfRow {
    /// Newest applied event time (UTC ms), 0 when none.
    pub as_of: i64,
}

/// The newest event time the aggregator has applied for `tenant` (`event_times`).
pub async fn as_of(db: &Db, tenant: &str) -> Result<i64, ApiError> {
    // `event_times` (migration 0008) keeps the max per tenant as events are inserted
    let sql = "SELECT toInt64(ifNull(toUnixTimestamp64Milli(max(newest)), 0)) AS as_of FROM event_times WHERE tenant = ?";
    Ok(db.run(db.query(sql).bind(tenant).fetch_one::<AsOfRow>()).await?.as_of)
}

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct ProvisionalRow {
    /// Deliveries first known in the range whose status is not final yet (queued, sent, unknown).
    pub pending: u64,
    pub deliveries: u64,
}

/// How many deliveries first known in `[from_ms, to_ms)` still lack a final status, from the
/// signed quarter-hour sums of `delivery_status_counts` (migration 8; the bounds are zone
/// midnights, which fall on quarter hours).
pub async fn provisional(db: &Db, tenant: &str, from_ms: i64, to_ms: i64) -> Result<ProvisionalRow, ApiError> {
    let sql = "SELECT toUInt64(greatest(sumIf(n, status IN ('queued', 'sent', 'unknown')), 0)) AS pending, toUInt64(greatest(sum(n), 0)) AS deliveries \
               FROM (SELECT status, deliveries AS n FROM delivery_status_counts \
                     WHERE tenant = ? AND toUnixTimestamp64Milli(bucket) >= ? AND toUnixTimestamp64Milli(bucket) < ?)";
    db.run(db.query(sql).bind(tenant).bind(from_ms).bind(to_ms).fetch_one::<ProvisionalRow>()).await
}
