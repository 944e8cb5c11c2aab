//! Every ClickHouse query of the API, with its `Row` types. Values are always bound (`?`),
//! columns selected with `?fields` where a row type has them; the only SQL assembled from
//! pieces are fixed fragments chosen from closed enums (a group-by column), never request text.
//!
//! * `stats`: counters and attributed counters per bucket, unique recipients.
//! * `messages`: deliveries (latest status) and their chronology.
//! * `events`: the activity feed.
//! * `catalog`: funnels per broadcast, sequence or template.
//! * `engagement`: one recipient's opens, clicks, replies and score.
//! * `suppressions`: the suppression list.
//! * `health`: sender health flags.
//! * `insights`: bounce reasons and delivery latency.

pub mod catalog;
pub mod engagement;
pub mod events;
pub mod health;
pub mod insights;
pub mod messages;
pub mod stats;
pub mod suppressions;

use crate::config::ClickHouseConfig;
use crate::error::ApiError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The ClickHouse client and the per-query time limit.
#[derive(Clone)]
pub struct Db {
    pub client: clickhouse::Client,
    max_execution_time_secs: u32,
    /// `backfills`' `complete_from` of `recipient_days` (migration 16), once read.
    recipient_days_from: Arc<tokio::sync::OnceCell<chrono::NaiveDate>>,
}

impl Db {
    /// Every query carries `max_execution_time` (and `readonly`-friendly settings only).
    pub fn new(cfg: &ClickHouseConfig) -> Db {
        let client = clickhouse::Client::default()
            .with_url(&cfg.url)
            .with_database(&cfg.database)
            .with_user(&cfg.user)
            .with_password(&cfg.password)
            .with_option("max_execution_time", cfg.max_execution_time_secs.to_string());
        Db { client, max_execution_time_secs: cfg.max_execution_time_secs, recipient_days_from: Default::default() }
    }

    /// The first UTC day `recipient_days` holds whole (migration 16's `backfills` row), read once:
    /// the row never changes once written. `None` while it cannot be read (an older schema, the
    /// table not there yet, ClickHouse down): the caller reads the slower table, which is exact.
    pub async fn recipient_days_from(&self) -> Option<chrono::NaiveDate> {
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct From {
            complete_from: String,
        }
        let read = || async {
            let sql = "SELECT toString(complete_from) AS complete_from FROM backfills WHERE name = 'recipient_days' ORDER BY recorded_at DESC LIMIT 1";
            let row = self.run(self.query(sql).fetch_optional::<From>()).await.ok().flatten().ok_or(())?;
            row.complete_from.parse::<chrono::NaiveDate>().map_err(|_| ())
        };
        self.recipient_days_from.get_or_try_init(read).await.ok().copied()
    }

    pub fn query(&self, sql: &str) -> clickhouse::query::Query {
        self.client.query(sql)
    }

    /// A `FINAL` query over `events` filtered by delivery key or recipient, which the table's
    /// bloom-filter indexes find (migration 0008). Every version of an event row has the same
    /// delivery key and recipient, so the granules those indexes select already hold every
    /// version FINAL must merge: ClickHouse need not widen the selection to every granule
    /// sharing their primary-key range (`use_skip_indexes_if_final_exact_mode = 0`; ~10x fewer
    /// rows read on the 10 M-event benchmark).
    pub fn lookup(&self, sql: &str) -> clickhouse::query::Query {
        self.client.query(sql).with_option("use_skip_indexes_if_final_exact_mode", "0")
    }

    /// A `FINAL` query over `events` whose `PREWHERE` holds only what every version of an event
    /// row shares: tenant, event id, time, type, channel, provider, recipient (a replayed copy is
    /// the same row; a re-attributed copy differs only in attribution and `reattributed`). So the
    /// `PREWHERE` keeps every version of a matching event and none of another, and may run before
    /// `FINAL` merges (`apply_prewhere_after_final = 0`, stated rather than left to the default);
    /// every version of an event lies in its time's month partition (`PARTITION BY
    /// toYYYYMM(occurred_at)`), so partitions outside the range are skipped and each is merged
    /// alone. Attribution conditions go in `WHERE`, after `FINAL`. On the 10 M-event benchmark a
    /// month of bounce reasons went from 0.95 s to ~0.16 s (BENCHMARKS.md §5). Also for
    /// `attributed_failures` (migration 21), whose versions of a row differ only in attribution
    /// and `version`.
    pub fn events_final(&self, sql: &str) -> clickhouse::query::Query {
        self.client
            .query(sql)
            .with_option("apply_prewhere_after_final", "0")
            .with_option("defer_partition_pruning_after_final", "0")
            .with_option("do_not_merge_across_partitions_select_final", "1")
    }

    /// Runs a query future: ClickHouse's own timeout (code 159) and a client-side deadline a
    /// little after it both answer 503 `query_timeout`; any other failure 503 `clickhouse_unavailable`.
    pub async fn run<T>(&self, fut: impl Future<Output = clickhouse::error::Result<T>>) -> Result<T, ApiError> {
        let limit = Duration::from_secs(self.max_execution_time_secs as u64 + 2);
        match tokio::time::timeout(limit, fut).await {
            Err(_) => Err(ApiError::Timeout(self.max_execution_time_secs)),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if is_timeout(&e) => Err(ApiError::Timeout(self.max_execution_time_secs)),
            Ok(Err(e)) => Err(ApiError::Unavailable(e)),
        }
    }

    /// `/readyz`: ClickHouse answers a trivial query.
    pub async fn ping(&self) -> Result<(), ApiError> {
        self.run(self.query("SELECT 1").fetch_one::<u8>()).await.map(|_| ())
    }
}

fn is_timeout(e: &clickhouse::error::Error) -> bool {
    match e {
        clickhouse::error::Error::TimedOut => true,
        clickhouse::error::Error::BadResponse(m) => m.contains("Code: 159") || m.contains("TIMEOUT_EXCEEDED"),
        _ => false,
    }
}

/// A delivery's first known time (UTC ms): the earliest of its status time and its first
/// queued/sent/delivered/bounced/failed times. The order of `/v1/messages`, and what puts a
/// delivery in a stats range for the provisional share.
pub const FIRST_SEEN_MS: &str = "toUnixTimestamp64Milli(least(status_at, ifNull(first_queued_at, status_at), ifNull(first_sent_at, status_at), \
     ifNull(first_delivered_at, status_at), ifNull(first_bounced_at, status_at), ifNull(first_failed_at, status_at)))";

/// `Option<String>` filters bind as `''` when absent (`(? = '' OR col = ?)`).
pub fn or_empty(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timeouts_are_recognised() {
        use clickhouse::error::Error;
        assert!(super::is_timeout(&Error::BadResponse("Code: 159. DB::Exception: Timeout exceeded: elapsed 1.2 seconds (TIMEOUT_EXCEEDED)".into())));
        assert!(super::is_timeout(&Error::TimedOut));
        assert!(!super::is_timeout(&Error::BadResponse("Code: 60. DB::Exception: Unknown table".into())));
    }
}
