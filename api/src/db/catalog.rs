//! Funnels per broadcast, sequence or template, from the latest delivery rows
//! (`deliveries FINAL`): attribution from late send records applies, as in `broadcast_stats`.
//! One read: a page's counts, unique recipients and cost per currency come from the same scan
//! (the costs were a second `FINAL` over the tenant's deliveries; BENCHMARKS.md §5).

use super::Db;
use crate::error::ApiError;
use clickhouse::Row;
use serde::Deserialize;

/// What a funnel is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Broadcast,
    Sequence,
    Template,
}

impl Dimension {
    /// The column (a fixed identifier).
    fn column(self) -> &'static str {
        match self {
            Dimension::Broadcast => "broadcast_id",
            Dimension::Sequence => "sequence_id",
            Dimension::Template => "template_key",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct FunnelRow {
    pub id: String,
    pub deliveries: u64,
    pub sent: u64,
    pub delivered: u64,
    /// Deliveries with a human open / with any open (people or machines).
    pub opened_human: u64,
    pub opened_all: u64,
    pub opens_human: u64,
    pub opens_all: u64,
    pub clicked_human: u64,
    pub clicked_all: u64,
    pub clicks_human: u64,
    pub clicks_all: u64,
    pub hard_bounces: u64,
    pub complaints: u64,
    pub unsubscribes: u64,
    pub failed: u64,
    pub unique_recipients: u64,
    pub last_activity_at: i64,
    /// Cost per currency: the currencies (ascending) and, beside each, the sum of the
    /// deliveries' costs in it (`Decimal128(10)`'s integer) and how many deliveries it sums
    /// (deliveries without a cost left out). `sumMap` drops a key only when all its sums are
    /// zero; the count never is, so a currency whose costs sum to 0 stays, at 0.
    pub costs: (Vec<String>, Vec<i128>, Vec<u64>),
}

impl FunnelRow {
    /// `costs` as (currency, amount) pairs.
    pub fn costs(&self) -> impl Iterator<Item = (&str, i128)> {
        self.costs.0.iter().map(String::as_str).zip(self.costs.1.iter().copied())
    }
}

/// One page of funnels, by id ascending, after `after` (exclusive); or one id when `only` is set.
pub async fn funnels(db: &Db, tenant: &str, dim: Dimension, only: Option<&str>, after: &str, limit: u32) -> Result<Vec<FunnelRow>, ApiError> {
    let col = dim.column();
    let sql = format!(
        "SELECT assumeNotNull({col}) AS id, count() AS deliveries, \
         countIf(first_sent_at IS NOT NULL OR first_delivered_at IS NOT NULL) AS sent, countIf(first_delivered_at IS NOT NULL) AS delivered, \
         countIf(open_count > 0) AS opened_human, countIf(open_count + machine_open_count > 0) AS opened_all, \
         toUInt64(sum(open_count)) AS opens_human, toUInt64(sum(open_count + machine_open_count)) AS opens_all, \
         countIf(click_count > 0) AS clicked_human, countIf(click_count + machine_click_count > 0) AS clicked_all, \
         toUInt64(sum(click_count)) AS clicks_human, toUInt64(sum(click_count + machine_click_count)) AS clicks_all, \
         countIf(status = 'bounced') AS hard_bounces, countIf(status = 'complained') AS complaints, \
         countIf(status = 'unsubscribed') AS unsubscribes, countIf(status = 'failed') AS failed, \
         toUInt64(uniqExact(recipient)) AS unique_recipients, toUnixTimestamp64Milli(max(status_at)) AS last_activity_at, \
         sumMapIf([toString(cost_unit)], [toDecimal128(cost_amount, 10)], [toUInt64(1)], cost_unit != '') AS costs \
         FROM deliveries FINAL WHERE tenant = ? AND {col} IS NOT NULL AND (? = '' OR {col} = ?) AND assumeNotNull({col}) > ? \
         GROUP BY id ORDER BY id LIMIT ?"
    );
    let only = only.unwrap_or_default();
    db.run(db.query(&sql).bind(tenant).bind(only).bind(only).bind(after).bind(limit).fetch_all::<FunnelRow>()).await
}
