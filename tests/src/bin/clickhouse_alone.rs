//! `clickhouse-alone`: the ClickHouse endpoint's own cost of the aggregator's unit of work,
//! measured on that endpoint in the same run (issue 14, goal 3: "where the devstack's stand-ins
//! set the limit, show it with a same-run measurement of the stand-in alone").
//!
//! After a `pipeline-load` run, it replays one aggregator unit's ClickHouse calls with the run's
//! own rows, without the aggregator: the `pending` manifest, the two state reads (`deliveries
//! FINAL` for a unit's distinct deliveries, new keys, and `events FINAL` for half as many held ones,
//! 1,000 keys per `IN` list as the aggregator sends them), the `events` insert, the five middle inserts together, the `deliveries` insert and the
//! `done` manifest, in the aggregator's order. Rows are the run's own (`SELECT … FORMAT RowBinary`),
//! as many per table as one unit wrote on average, inserted as `RowBinary` into scratch copies of
//! the tables (`<table>__alone`, emptied first). A unit's size comes from the aggregator's
//! `sendtrace_aggregator_batch_records` histogram (`--aggregator-metrics`) or `--unit-events`.
//!
//! Prints the unit's time (p50 and the slowest of `--repeat`), its parts, and the ceiling it sets:
//! events per unit ÷ time per unit, for units in series (one aggregator's partitions are).
//!
//!   clickhouse-alone --clickhouse-url http://127.0.0.1:8123 --aggregator-metrics http://127.0.0.1:9102/metrics

use clap::Parser;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "clickhouse-alone")]
struct Cli {
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,
    #[arg(long, default_value = "sendtrace")]
    database: String,
    /// The aggregator's metrics page: its mean unit size (`sendtrace_aggregator_batch_records`).
    #[arg(long)]
    aggregator_metrics: Option<String>,
    /// Events per unit when no metrics page is given (or it has no units yet).
    #[arg(long, default_value_t = 2500)]
    unit_events: usize,
    /// Units replayed.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
}

/// The tables a unit writes, in the aggregator's order (`pipeline.rs::write_rows`); the middle
/// group goes out concurrently there, and here.
const FIRST: &str = "events";
const MIDDLE: [&str; 5] = ["counters", "attributed_counters", "delivery_status_counts", "delivery_order", "suppressions"];
const LAST: &str = "deliveries";
const MANIFEST: &str = "aggregator_offsets";
const IN_LIST_KEYS: usize = 1000;

struct Ch {
    http: reqwest::Client,
    url: String,
    database: String,
}

impl Ch {
    async fn post(&self, params: &[(&str, &str)], body: impl Into<reqwest::Body>) -> anyhow::Result<bytes::Bytes> {
        let resp = self.http.post(&self.url).query(&[("database", self.database.as_str())]).query(params).body(body).send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        anyhow::ensure!(status.is_success(), "ClickHouse {status}: {}", String::from_utf8_lossy(&bytes));
        Ok(bytes)
    }
    async fn sql(&self, sql: String) -> anyhow::Result<bytes::Bytes> {
        self.post(&[], sql).await
    }
    async fn count(&self, table: &str) -> anyhow::Result<usize> {
        Ok(String::from_utf8_lossy(&self.sql(format!("SELECT count() FROM {table} FORMAT TabSeparated")).await?).trim().parse()?)
    }
    async fn insert(&self, table: &str, rows: bytes::Bytes) -> anyhow::Result<()> {
        let token = format!("alone-{table}-{}", uuid::Uuid::new_v4());
        let sql = format!("INSERT INTO {table}__alone FORMAT RowBinary");
        self.post(&[("query", sql.as_str()), ("insert_deduplication_token", token.as_str())], rows).await.map(|_| ())
    }
}

/// Mean records per aggregator unit, from its Prometheus page.
async fn unit_size(url: &str) -> Option<usize> {
    let page = reqwest::get(url).await.ok()?.text().await.ok()?;
    let value = |name: &str| page.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    let (sum, count) = (value("sendtrace_aggregator_batch_records_sum")?, value("sendtrace_aggregator_batch_records_count")?);
    (count > 0.0).then(|| (sum / count).round() as usize)
}

fn quoted_list(keys: &[String]) -> String {
    keys.iter().map(|k| format!("'{}'", k.replace('\\', "\\\\").replace('\'', "\\'"))).collect::<Vec<_>>().join(",")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let ch = Ch { http: reqwest::Client::new(), url: cli.clickhouse_url.trim_end_matches('/').to_string() + "/", database: cli.database.clone() };
    let per_unit = match &cli.aggregator_metrics {
        Some(url) => unit_size(url).await.unwrap_or(cli.unit_events),
        None => cli.unit_events,
    };
    let events_total = ch.count(FIRST).await?;
    anyhow::ensure!(events_total > 0, "no events in ClickHouse: run pipeline-load first");
    let units = (events_total as f64 / per_unit.max(1) as f64).max(1.0);

    // One unit's rows per table: the table's rows ÷ the units that wrote them.
    let mut rows = std::collections::BTreeMap::new();
    for table in std::iter::once(FIRST).chain(MIDDLE).chain([LAST]) {
        let n = (ch.count(table).await? as f64 / units).ceil() as usize;
        ch.sql(format!("CREATE TABLE IF NOT EXISTS {table}__alone AS {table}")).await?;
        let data = ch.sql(format!("SELECT * FROM {table} LIMIT {n} FORMAT RowBinary")).await?;
        rows.insert(table, (n, data));
    }
    ch.sql(format!("CREATE TABLE IF NOT EXISTS {MANIFEST}__alone AS {MANIFEST}")).await?;
    let manifest = ch.sql(format!("SELECT * FROM {MANIFEST} LIMIT 1 FORMAT RowBinary")).await?;
    // The reads as the load makes them: every delivery is new, so `deliveries` is asked for a
    // unit's distinct deliveries (its `deliveries` rows), keys it does not hold yet (fresh ones
    // here); `events` for the deliveries a late send record may re-attribute (half of them here,
    // an approximation), which it holds.
    let deliveries = rows.get(LAST).map(|r| r.0).unwrap_or(per_unit);
    let fresh: Vec<String> = (0..deliveries).map(|_| format!("{:064x}", uuid::Uuid::new_v4().as_u128())).collect();
    let held: Vec<String> = String::from_utf8_lossy(&ch.sql(format!("SELECT DISTINCT delivery_key FROM events LIMIT {} FORMAT TabSeparated", deliveries / 2)).await?)
        .lines()
        .map(str::to_string)
        .collect();
    let summary: Vec<String> = rows.iter().map(|(t, (n, d))| format!("{t} {n} rows / {} KB", d.len() / 1024)).collect();
    println!(
        "clickhouse-alone: one aggregator unit = {per_unit} events ({:.0} units in the run): {}; reads of {} + {} keys",
        units,
        summary.join(", "),
        fresh.len(),
        held.len()
    );

    let mut times: Vec<(Duration, Duration)> = Vec::new();
    for _ in 0..cli.repeat {
        for table in rows.keys().chain([&MANIFEST]) {
            ch.sql(format!("TRUNCATE TABLE {table}__alone")).await?;
        }
        let started = Instant::now();
        ch.insert(MANIFEST, manifest.clone()).await?;
        let reads = Instant::now();
        for chunk in fresh.chunks(IN_LIST_KEYS) {
            ch.sql(format!("SELECT * FROM deliveries FINAL WHERE delivery_key IN ({}) FORMAT RowBinary", quoted_list(chunk))).await?;
        }
        for chunk in held.chunks(IN_LIST_KEYS) {
            ch.sql(format!("SELECT * FROM events FINAL WHERE delivery_key IN ({}) FORMAT RowBinary", quoted_list(chunk))).await?;
        }
        let reads = reads.elapsed();
        ch.insert(FIRST, rows[FIRST].1.clone()).await?;
        let (a, b, c, d, e) = tokio::join!(
            ch.insert(MIDDLE[0], rows[MIDDLE[0]].1.clone()),
            ch.insert(MIDDLE[1], rows[MIDDLE[1]].1.clone()),
            ch.insert(MIDDLE[2], rows[MIDDLE[2]].1.clone()),
            ch.insert(MIDDLE[3], rows[MIDDLE[3]].1.clone()),
            ch.insert(MIDDLE[4], rows[MIDDLE[4]].1.clone()),
        );
        (a?, b?, c?, d?, e?);
        ch.insert(LAST, rows[LAST].1.clone()).await?;
        ch.insert(MANIFEST, manifest.clone()).await?;
        times.push((started.elapsed(), reads));
    }
    for table in rows.keys().chain([&MANIFEST]) {
        ch.sql(format!("DROP TABLE IF EXISTS {table}__alone")).await?;
    }
    times.sort();
    let (p50, reads) = times[times.len() / 2];
    let slowest = times.last().map(|t| t.0).unwrap_or_default();
    println!(
        "clickhouse-alone: a unit's ClickHouse calls take p50 {:.0} ms (reads {:.0} ms), slowest {:.0} ms of {}: at most {:.0} events/s through units in series",
        p50.as_secs_f64() * 1e3,
        reads.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3,
        cli.repeat,
        per_unit as f64 / p50.as_secs_f64()
    );
    Ok(())
}
