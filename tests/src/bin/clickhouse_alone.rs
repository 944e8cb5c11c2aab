//! `clickhouse-alone`: the ClickHouse endpoint's own cost of the aggregator's unit of work,
//! measured on that endpoint in the same run (issue 14, goal 3: "where the devstack's stand-ins
//! set the limit, show it with a same-run measurement of the stand-in alone").
//!
//! After a `pipeline-load` run, it replays one aggregator unit's ClickHouse calls with the run's
//! own rows, through the aggregator's own store functions (`load_deliveries`, `load_events`,
//! `insert_buffer`: the same statements, compression and dedup tokens) but without the rest of
//! the aggregator: the `pending` manifest, the two state reads (`deliveries
//! FINAL` for a unit's distinct deliveries, new keys, and `events FINAL` for as many held ones as
//! the aggregator read per unit, `sendtrace_aggregator_history_reads_total{from="clickhouse"}`;
//! half the unit's deliveries without its metrics page; 1,000 keys per `IN` list as the aggregator sends them), the `events` insert, the five middle inserts together, the `deliveries` insert and the
//! `done` manifest, in the aggregator's order. Rows are the run's own (`SELECT … FORMAT RowBinary`),
//! as many per table as one unit wrote on average (the columns the aggregator writes: those
//! without a default), inserted as `RowBinary` into scratch copies of the tables (`<table>__alone`, emptied first). A unit's size comes from the aggregator's
//! `sendtrace_aggregator_batch_records` histogram (`--aggregator-metrics`) or `--unit-events`.
//!
//! Prints the unit's time (p50 and the slowest of `--repeat`), its parts, and the ceiling it sets:
//! events per unit ÷ time per unit, for units in series (one partition's are; an aggregator
//! drains its partitions concurrently, which a one-query-at-a-time endpoint serves in turn).
//!
//!   clickhouse-alone --clickhouse-url http://127.0.0.1:8123 --aggregator-metrics http://127.0.0.1:9102/metrics

use aggregator::store::{insert_buffer, load_deliveries, load_events, RowBuffer, TenantKey};
use clap::Parser;
use e2e::observe;
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
    /// The ClickHouse endpoint's process id (on this machine): prints its CPU time per event of
    /// the replayed units, the stand-in's own cost.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// The tables a unit writes, in the aggregator's order (`pipeline.rs::write_rows`); the middle
/// group goes out concurrently there, and here.
const FIRST: &str = "events";
const MIDDLE: [&str; 8] = ["counters", "attributed_counters", "delivery_status_counts", "delivery_order", "suppressions", "funnels", "funnel_recipients", "funnel_statuses"];
const LAST: &str = "deliveries";
const MANIFEST: &str = "aggregator_offsets";

/// One table's share of a unit: its scratch copy's name, the columns written, and the rows.
struct Share {
    scratch: String,
    columns: Vec<String>,
    rows: RowBuffer,
}

impl Share {
    async fn insert(&self, client: &clickhouse::Client) -> anyhow::Result<()> {
        let columns: Vec<&str> = self.columns.iter().map(String::as_str).collect();
        let token = format!("alone-{}", uuid::Uuid::new_v4());
        Ok(insert_buffer(client, &self.scratch, &columns, &token, &self.rows).await?)
    }
}

async fn text(client: &clickhouse::Client, sql: &str) -> anyhow::Result<String> {
    let bytes = client.query(sql).fetch_bytes("TabSeparated")?.collect().await?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_string())
}

/// `rows` rows of `table` (the columns the aggregator writes) and an empty scratch copy of it.
async fn share(client: &clickhouse::Client, table: &str, rows: usize) -> anyhow::Result<Share> {
    let columns: Vec<String> =
        text(client, &format!("SELECT name FROM system.columns WHERE database = currentDatabase() AND table = '{table}' AND default_kind = '' ORDER BY position"))
            .await?
            .lines()
            .map(str::to_string)
            .collect();
    let list = columns.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(",");
    let bytes = client.query(&format!("SELECT {list} FROM {table} LIMIT {rows}")).fetch_bytes("RowBinary")?.collect().await?;
    let scratch = format!("{table}__alone");
    client.query(&format!("CREATE TABLE IF NOT EXISTS {scratch} AS {table}")).execute().await?;
    Ok(Share { scratch, columns, rows: RowBuffer { bytes: bytes.to_vec(), rows } })
}

/// Mean records per aggregator unit, and mean deliveries whose earlier event rows it read from
/// ClickHouse per unit (those `aggregator::recent` did not hold), from its Prometheus page.
async fn unit_shape(url: &str) -> Option<(usize, usize, usize)> {
    let page = reqwest::get(url).await.ok()?.text().await.ok()?;
    let value = |name: &str| observe::prometheus_sum(&page, name);
    let (sum, count) = (value("sendtrace_aggregator_batch_records_sum")?, value("sendtrace_aggregator_batch_records_count")?);
    let read = value("sendtrace_aggregator_history_reads_total{from=\"clickhouse\"}").unwrap_or(0.0);
    let skipped = value("sendtrace_aggregator_state_reads_skipped_total").unwrap_or(0.0);
    (count > 0.0).then(|| ((sum / count).round() as usize, (read / count).round() as usize, (skipped / count).round() as usize))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let client = clickhouse::Client::default().with_url(&cli.clickhouse_url).with_database(&cli.database);
    let shape = match &cli.aggregator_metrics {
        Some(url) => unit_shape(url).await,
        None => None,
    };
    let per_unit = shape.map_or(cli.unit_events, |s| s.0);
    let count = |table: &'static str| {
        let client = client.clone();
        async move { anyhow::Ok(text(&client, &format!("SELECT count() FROM {table}")).await?.parse::<usize>()?) }
    };
    let events_total = count(FIRST).await?;
    anyhow::ensure!(events_total > 0, "no events in ClickHouse: run pipeline-load first");
    let units = (events_total as f64 / per_unit.max(1) as f64).max(1.0);

    // One unit's rows per table: the table's rows ÷ the units that wrote them.
    let mut shares = std::collections::BTreeMap::new();
    for table in std::iter::once(FIRST).chain(MIDDLE).chain([LAST]) {
        let n = (count(table).await? as f64 / units).ceil() as usize;
        shares.insert(table, share(&client, table, n).await?);
    }
    let manifest = share(&client, MANIFEST, 1).await?;
    // The reads as the load makes them: every delivery is new, so `deliveries` is asked for a
    // unit's distinct deliveries (its `deliveries` rows), keys it does not hold yet (fresh ones
    // here); `events` for the deliveries a late send record may re-attribute whose rows the
    // aggregator did not hold (as many as it read per unit; without its metrics page, half the
    // unit's deliveries, as before it held any). New deliveries its stored-keys filter answered
    // (`sendtrace_aggregator_state_reads_skipped_total`, per unit) are not asked.
    let deliveries = shares[LAST].rows.rows.saturating_sub(shape.map_or(0, |s| s.2));
    let history_keys = shape.map_or(deliveries / 2, |s| s.1);
    let tenant = text(&client, "SELECT any(tenant) FROM events").await?;
    let fresh: Vec<TenantKey> = (0..deliveries).map(|_| (tenant.clone(), format!("{:064x}", uuid::Uuid::new_v4().as_u128()))).collect();
    let held: Vec<TenantKey> = text(&client, &format!("SELECT DISTINCT tenant, delivery_key FROM events LIMIT {history_keys}"))
        .await?
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(t, k)| (t.to_string(), k.to_string()))
        .collect();
    let summary: Vec<String> = shares.iter().map(|(t, s)| format!("{t} {} rows / {} KB", s.rows.rows, s.rows.bytes.len() / 1024)).collect();
    println!(
        "clickhouse-alone: one aggregator unit = {per_unit} events ({:.0} units in the run): {}; reads of {} + {} keys",
        units,
        summary.join(", "),
        fresh.len(),
        held.len()
    );

    let mut times: Vec<(Duration, Duration)> = Vec::new();
    let server_cpu = cli.server_pid.and_then(observe::cpu_time);
    // the endpoint's CPU during the two state reads: (deliveries, events)
    let (mut deliveries_cpu, mut events_cpu) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..cli.repeat {
        for s in shares.values().chain([&manifest]) {
            client.query(&format!("TRUNCATE TABLE {}", s.scratch)).execute().await?;
        }
        let started = Instant::now();
        manifest.insert(&client).await?;
        let reads = Instant::now();
        let cpu = || cli.server_pid.and_then(observe::cpu_time).unwrap_or_default();
        let before = cpu();
        load_deliveries(&client, &fresh).await?;
        let after_deliveries = cpu();
        load_events(&client, &held).await?;
        deliveries_cpu += after_deliveries.saturating_sub(before);
        events_cpu += cpu().saturating_sub(after_deliveries);
        let reads = reads.elapsed();
        shares[FIRST].insert(&client).await?;
        let (a, b, c, d, e, f, g, h) = tokio::join!(
            shares[MIDDLE[0]].insert(&client),
            shares[MIDDLE[1]].insert(&client),
            shares[MIDDLE[2]].insert(&client),
            shares[MIDDLE[3]].insert(&client),
            shares[MIDDLE[4]].insert(&client),
            shares[MIDDLE[5]].insert(&client),
            shares[MIDDLE[6]].insert(&client),
            shares[MIDDLE[7]].insert(&client),
        );
        for r in [a, b, c, d, e, f, g, h] {
            r?;
        }
        shares[LAST].insert(&client).await?;
        manifest.insert(&client).await?;
        times.push((started.elapsed(), reads));
    }
    let server_spent = cli.server_pid.and_then(|pid| observe::cpu_since(pid, server_cpu));
    for s in shares.values().chain([&manifest]) {
        client.query(&format!("DROP TABLE IF EXISTS {}", s.scratch)).execute().await?;
    }
    times.sort();
    let (p50, reads) = times[times.len() / 2];
    let slowest = times.last().map(|t| t.0).unwrap_or_default();
    println!(
        "clickhouse-alone: a unit's ClickHouse calls take p50 {:.0} ms (reads {:.0} ms), slowest {:.0} ms of {}: at most {:.0} events/s through one partition's units in series",
        p50.as_secs_f64() * 1e3,
        reads.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3,
        cli.repeat,
        per_unit as f64 / p50.as_secs_f64()
    );
    if let Some(spent) = server_spent {
        // the truncates between units are counted too: a small over-estimate
        let events = (per_unit * cli.repeat).max(1) as f64;
        let per_event = spent.as_secs_f64() * 1e6 / events;
        println!(
            "clickhouse-alone: the endpoint's process spent {:.2} CPU-s on {} units: {per_event:.0} µs/event, of which the state reads of `deliveries` {:.0} and of `events` {:.0} (its CPU alone allows at most {:.0} events/s per core)",
            spent.as_secs_f64(),
            cli.repeat,
            deliveries_cpu.as_secs_f64() * 1e6 / events,
            events_cpu.as_secs_f64() * 1e6 / events,
            1e6 / per_event.max(f64::MIN_POSITIVE)
        );
    }
    Ok(())
}
