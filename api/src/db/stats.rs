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

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct UniqueRow {
    /// `reached` (delivered), `opened`, `clicked` (people only).
    pub kind: String,
    pub recipients: u64,
}

/// Unique recipients delivered to, opening (people) and clicking (people) over buckets `from..=to` of `period`.
pub async fn unique_recipients(db: &Db, tenant: &str, period: &str, from: &str, to: &str) -> Result<Vec<UniqueRow>, ApiError> {
    let sql = "SELECT multiIf(event_type = 'delivered', 'reached', event_type = 'clicked', 'clicked', 'opened') AS kind, \
               toUInt64(uniqExactMerge(recipients)) AS recipients FROM unique_recipients \
               WHERE tenant = ? AND period = ? AND bucket_start >= toDate(?) AND bucket_start <= toDate(?) \
               AND event_type IN ('delivered', 'opened', 'read', 'clicked') AND machine = '' GROUP BY kind";
    db.run(db.query(sql).bind(tenant).bind(period).bind(from).bind(to).fetch_all::<UniqueRow>()).await
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
