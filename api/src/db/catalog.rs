//! Funnels per broadcast, sequence or template, from the signed sums the aggregator keeps of the
//! latest delivery rows (`funnels`, `funnel_recipients`, migration 17): attribution from late
//! send records applies, as in `broadcast_stats`, and the sums equal the same counts over
//! `deliveries FINAL` (which this read scanned, every delivery of the tenant, until
//! migration 17; BENCHMARKS.md §5).

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
    /// Its value in the `dimension` column of `funnels` and `funnel_recipients`.
    fn name(self) -> &'static str {
        match self {
            Dimension::Broadcast => "broadcast",
            Dimension::Sequence => "sequence",
            Dimension::Template => "template",
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
    /// Rows of `funnel_recipients` that took a recipient out of the id (-1) not merged away yet:
    /// while there are any, `unique_recipients` is recounted exactly (`funnels`).
    pub recipient_exits: u64,
    pub last_activity_at: i64,
    /// Cost per currency: the currencies (ascending) and, beside each, the sum of the
    /// deliveries' costs in it (`Decimal128(10)`'s integer) and how many deliveries it sums
    /// (deliveries without a cost left out). `sumMap` drops a key only when all its sums are
    /// zero; the count of a currency that has deliveries never is, so one whose costs sum to 0
    /// stays, at 0.
    pub costs: (Vec<String>, Vec<i128>, Vec<i64>),
}

impl FunnelRow {
    /// `costs` as (currency, amount) pairs.
    pub fn costs(&self) -> impl Iterator<Item = (&str, i128)> {
        self.costs.0.iter().map(String::as_str).zip(self.costs.1.iter().copied())
    }
}

/// One page of funnels, by id ascending, after `after` (exclusive); or one id when `only` is set.
/// From the signed sums of `funnels` and `funnel_recipients` (migration 17): a few rows per id,
/// not the tenant's every delivery. An id is listed while it has a delivery (`deliveries > 0`);
/// a recipient is the id's while its sum is above 0.
///
/// Unique recipients: a recipient row is +1 (a delivery to them entered the id) or -1 (one
/// left it), and a merge drops a (id, recipient) whose rows sum to 0. So in an id without a -1
/// row every recipient's sum is at least 1, and they are its distinct recipients,
/// `uniqExact(recipient)`, counted in the same pass as the -1 rows; only an id with -1 rows
/// (deliveries moved to another broadcast, not merged yet: rare) is recounted by summing each
/// recipient's rows (`exact_recipients`). The sums for every id of a page were ~20 % slower
/// (BENCHMARKS.md §5).
pub async fn funnels(db: &Db, tenant: &str, dim: Dimension, only: Option<&str>, after: &str, limit: u32) -> Result<Vec<FunnelRow>, ApiError> {
    let dim = dim.name();
    // The page's ids first (`f`, a few rows per id); the recipients counted for those ids only.
    let sql = "WITH f AS ( \
           SELECT id, sum(deliveries) AS deliveries, sum(sent) AS sent, sum(delivered) AS delivered, sum(opened_human) AS opened_human, sum(opened_all) AS opened_all, \
             sum(opens_human) AS opens_human, sum(opens_all) AS opens_all, sum(clicked_human) AS clicked_human, sum(clicked_all) AS clicked_all, \
             sum(clicks_human) AS clicks_human, sum(clicks_all) AS clicks_all, sum(hard_bounces) AS hard_bounces, sum(complaints) AS complaints, \
             sum(unsubscribes) AS unsubscribes, sum(failed) AS failed, max(last_status_at) AS last_status_at, \
             sumMapIf([toString(cost_unit)], [toDecimal128(cost_amount, 10)], [funnels.deliveries], cost_unit != '') AS costs \
           FROM funnels WHERE tenant = ? AND dimension = ? AND (? = '' OR id = ?) AND id > ? \
           GROUP BY id HAVING deliveries > 0 ORDER BY id LIMIT ? \
         ) \
         SELECT f.id AS id, toUInt64(f.deliveries) AS deliveries, toUInt64(f.sent) AS sent, toUInt64(f.delivered) AS delivered, \
         toUInt64(f.opened_human) AS opened_human, toUInt64(f.opened_all) AS opened_all, toUInt64(f.opens_human) AS opens_human, toUInt64(f.opens_all) AS opens_all, \
         toUInt64(f.clicked_human) AS clicked_human, toUInt64(f.clicked_all) AS clicked_all, toUInt64(f.clicks_human) AS clicks_human, toUInt64(f.clicks_all) AS clicks_all, \
         toUInt64(f.hard_bounces) AS hard_bounces, toUInt64(f.complaints) AS complaints, toUInt64(f.unsubscribes) AS unsubscribes, toUInt64(f.failed) AS failed, \
         toUInt64(r.n) AS unique_recipients, toUInt64(r.exits) AS recipient_exits, \
         toUnixTimestamp64Milli(f.last_status_at) AS last_activity_at, f.costs AS costs \
         FROM f LEFT JOIN ( \
           SELECT id, uniqExact(recipient) AS n, countIf(deliveries < 0) AS exits FROM funnel_recipients \
           WHERE tenant = ? AND dimension = ? AND id IN (SELECT id FROM f) GROUP BY id \
         ) AS r ON r.id = f.id \
         ORDER BY id";
    let only = only.unwrap_or_default();
    let mut rows = db
        .run(
            db.query(sql)
                .bind(tenant)
                .bind(dim)
                .bind(only)
                .bind(only)
                .bind(after)
                .bind(limit)
                .bind(tenant)
                .bind(dim)
                .fetch_all::<FunnelRow>(),
        )
        .await?;
    let moved: Vec<&str> = rows.iter().filter(|r| r.recipient_exits > 0).map(|r| r.id.as_str()).collect();
    if !moved.is_empty() {
        let exact = exact_recipients(db, tenant, dim, &moved).await?;
        for r in rows.iter_mut().filter(|r| r.recipient_exits > 0) {
            r.unique_recipients = exact.iter().find(|(id, _)| *id == r.id).map_or(0, |(_, n)| *n);
        }
    }
    Ok(rows)
}

#[derive(Debug, Row, Deserialize)]
struct RecipientCount {
    id: String,
    n: u64,
}

/// The recipients of each of `ids` whose rows sum above 0.
async fn exact_recipients(db: &Db, tenant: &str, dim: &str, ids: &[&str]) -> Result<Vec<(String, u64)>, ApiError> {
    let sql = "SELECT id, toUInt64(countIf(n > 0)) AS n FROM ( \
                 SELECT id, recipient, sum(deliveries) AS n FROM funnel_recipients \
                 WHERE tenant = ? AND dimension = ? AND has(?, id) GROUP BY id, recipient \
               ) GROUP BY id";
    let rows = db.run(db.query(sql).bind(tenant).bind(dim).bind(ids).fetch_all::<RecipientCount>()).await?;
    Ok(rows.into_iter().map(|r| (r.id, r.n)).collect())
}
