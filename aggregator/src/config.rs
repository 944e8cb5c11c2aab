//! Aggregator configuration: defaults that run against the local stack.

use runtime::kafka::KafkaConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP interface URL.
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: String,
    /// Event rows older than this are dropped by ClickHouse (TTL, set at migration); counters outlive them.
    pub events_ttl_days: u32,
    /// Engagement score weights (the `engagement` view, set at migration).
    pub engagement: EngagementWeights,
    /// Name of the ClickHouse cluster (`remote_servers`) `aggregator migrate` creates the tables on:
    /// `ON CLUSTER`, `Replicated*MergeTree` local tables and `Distributed` tables under the usual
    /// names (`schemas::cluster`; `aggregator migrate --cluster <name>` sets it too). Empty: one
    /// server, the default. The services need no change: they address the `Distributed` tables.
    pub cluster: String,
    /// How request and response bodies travel: `lz4` (ClickHouse's own block framing with
    /// checksums, the crate's default: several times fewer bytes over a network) or `none`.
    /// Compressing every insert body was 7.5 % of the aggregator's CPU under load
    /// (BENCHMARKS.md §6, 2026-12-03); `none` saves that, and the server's decompression, where
    /// bandwidth is free (the same host, as the local stack).
    pub compression: Compression,
}

/// `clickhouse.compression`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Lz4,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngagementWeights {
    pub open_weight: u32,
    pub third_open_bonus: u32,
    pub click_weight: u32,
    pub reply_weight: u32,
    pub score_reset_days: u32,
}

impl Default for EngagementWeights {
    fn default() -> Self {
        EngagementWeights { open_weight: 5, third_open_bonus: 10, click_weight: 15, reply_weight: 30, score_reset_days: 30 }
    }
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig { url: "http://127.0.0.1:8123".into(), database: "sendtrace".into(), user: "default".into(), password: String::new(), events_ttl_days: 365, engagement: EngagementWeights::default(), cluster: String::new(), compression: Compression::Lz4 }
    }
}

impl ClickHouseConfig {
    /// A client for the configured database, compressed as `compression` says.
    ///
    /// `deduplicate_blocks_in_dependent_materialized_views = 1`: when a retried insert into
    /// `events` is dropped as a duplicate (same dedup token), ClickHouse still passes the block
    /// to the views on `events` (`unique_recipients_mv`), so a view write that failed the first
    /// time is made good by the retry. That view's sets are idempotent, so a second delivery is
    /// harmless. (Older servers skip the views for a deduplicated block unless this is set.)
    ///
    /// `max_partitions_per_insert_block`: the tables are partitioned by month, and a batch may
    /// hold events of any month `admission` accepts; ClickHouse's default (100) would refuse a
    /// batch spanning more months, forever. The bound is the number of months there are.
    pub fn client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.url)
            .with_database(&self.database)
            .with_user(&self.user)
            .with_password(&self.password)
            .with_compression(match self.compression {
                Compression::Lz4 => clickhouse::Compression::Lz4,
                Compression::None => clickhouse::Compression::None,
            })
            .with_option("deduplicate_blocks_in_dependent_materialized_views", "1")
            .with_option("max_partitions_per_insert_block", crate::admission::MAX_MONTHS.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouseConfig,
    /// Consumer group of the aggregator.
    pub group_id: String,
    /// Topic of canonical events.
    pub events_topic: String,
    /// Create the events topic at start if missing.
    pub create_topics: bool,
    /// Address for `/metrics`, `/healthz` and `/readyz`.
    pub admin_addr: String,
    /// Most events per batch (read from all assigned partitions together; each partition's
    /// share is written as one unit of about ten ClickHouse round trips). Large, because those
    /// round trips, not the events, are what a batch costs: at 2,000 the local stack landed
    /// ~650 events/s with the aggregator lagging (BENCHMARKS.md §9). A batch fills only while
    /// the consumer is behind; otherwise `batch_linger_ms` ends it.
    pub batch_max_events: usize,
    /// How long to wait to fill a batch.
    pub batch_linger_ms: u64,
    /// Deliveries kept in memory (split evenly over the partitions held); colder ones are
    /// evicted and reloaded from ClickHouse.
    pub max_deliveries_in_memory: usize,
    /// Bytes of event rows kept in memory for the deliveries this aggregator created (`recent`):
    /// a late send record moves them without reading `events` back (split evenly over the
    /// partitions held). 0: read every time.
    pub max_history_bytes_in_memory: usize,
    /// Fingerprints of stored deliveries kept to skip the state read of new ones
    /// (`stored_keys`; 9–18 bytes each, split evenly over the partitions held). A partition with
    /// more stored deliveries than its share reads every delivery not in memory. 0: no filter.
    pub max_stored_keys_in_memory: usize,
    /// Longest pause between ClickHouse retries.
    pub max_retry_backoff_ms: u64,
    /// IANA time zone for a second set of day/week/month counters (`day:<zone>` ..); `UTC` for none.
    /// `aggregator migrate` builds it into the `unique_recipients_mv` view: run migrate with the same value.
    pub reporting_time_zone: String,
    /// Opens/clicks this soon after delivery count as machine (scanner) events.
    pub scanner_window_secs: i64,
    /// Soft bounces within `soft_bounce_window_days` that suppress marketing mail to an address.
    pub soft_bounce_threshold: usize,
    pub soft_bounce_window_days: i64,
    /// Compacted topic the suppression list is published on (key `tenant/address`, JSON value).
    pub suppressions_topic: String,
    /// Sender health evaluation (bounce and complaint rates).
    pub health: crate::sender_health::HealthConfig,
    /// Topic for events the aggregator will not apply (`schemas::DeadLetter`, `stage = "aggregator"`):
    /// refused by `event_limits`, unreadable, or refused by ClickHouse. The normalizer's by default.
    pub dead_letter_topic: String,
    /// A dead letter carries the refused record itself only up to this many bytes; a larger one
    /// is left out (its events-topic coordinates point to it), so a dead letter always fits the broker.
    pub dead_letter_max_raw_bytes: usize,
    /// Bounds an event must keep to be applied (`[event_limits]`); the others are dead-lettered.
    pub event_limits: crate::admission::Limits,
    /// How often the broker and ClickHouse are probed for `/readyz` and consumer lag measured,
    /// and how long a probe may take.
    pub readiness: runtime::readiness::ReadinessConfig,
    /// Let the kernel back this process's memory with transparent huge pages. Off by default:
    /// zeroing each fresh 2 MiB page cost 21–32 % of the aggregator's CPU under load (`memory`).
    pub transparent_huge_pages: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            kafka: KafkaConfig::default(),
            clickhouse: ClickHouseConfig::default(),
            group_id: "sendtrace-aggregator".into(),
            events_topic: schemas::topics::EVENTS.into(),
            create_topics: true,
            admin_addr: "127.0.0.1:9102".into(),
            batch_max_events: 20_000,
            batch_linger_ms: 200,
            max_deliveries_in_memory: 1_000_000,
            max_history_bytes_in_memory: 64 << 20,
            max_stored_keys_in_memory: 10_000_000,
            max_retry_backoff_ms: 5000,
            reporting_time_zone: "UTC".into(),
            scanner_window_secs: crate::machine::DEFAULT_SCANNER_WINDOW_SECS,
            soft_bounce_threshold: 3,
            soft_bounce_window_days: 7,
            suppressions_topic: "sendtrace.suppressions.v1".into(),
            health: crate::sender_health::HealthConfig::default(),
            dead_letter_topic: schemas::topics::DEAD_LETTER.into(),
            dead_letter_max_raw_bytes: 64 * 1024,
            event_limits: crate::admission::Limits::default(),
            readiness: runtime::readiness::ReadinessConfig::default(),
            transparent_huge_pages: false,
        }
    }
}
