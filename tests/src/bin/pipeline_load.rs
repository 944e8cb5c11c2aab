//! `pipeline-load`: the whole pipeline under an open-loop load (issue 14, goal 3).
//!
//! Posts unique webhooks (SES through SNS, SendGrid batches, send records; see `e2e::load`) to a
//! running ingest at `--rate` events/s for `--seconds`, whatever the answers, then waits until
//! every event is in ClickHouse and prints, from ClickHouse's own clocks, the events/s the
//! pipeline sustained and the freshness of each event (`inserted_at - received_at`: from ingest
//! receiving it to its row being written) at p50/p99/max. `scripts/load.sh` starts the stack in
//! release builds and runs it with the stand-ins' own figures beside it.
//!
//!   pipeline-load --ingest-url http://127.0.0.1:8080 --clickhouse-url http://127.0.0.1:8123 --rate 5000 --seconds 20

use clap::Parser;
use e2e::load::{self, Plan};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "pipeline-load")]
struct Cli {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    ingest_url: String,
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,
    #[arg(long, default_value = "sendtrace")]
    database: String,
    /// A tenant ingest knows (the local stack's is `demo`).
    #[arg(long, default_value = "demo")]
    tenant: String,
    /// Events per second offered.
    #[arg(long, default_value_t = 5000.0)]
    rate: f64,
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    #[arg(long, default_value_t = 50)]
    sendgrid_batch: usize,
    #[arg(long, default_value_t = 100)]
    records_batch: usize,
    /// How long to wait for the last events after the posting ends.
    #[arg(long, default_value_t = 120)]
    drain_secs: u64,
    /// Exit non-zero unless p99 freshness is below this many ms (and every event landed).
    #[arg(long)]
    max_p99_ms: Option<f64>,
    /// `<stage>=<metrics URL>`: samples the stage's consumer lag (records, summed over
    /// partitions) every second during the run and prints its peak, to see which stage falls behind.
    #[arg(long = "watch")]
    watches: Vec<String>,
}

/// Sum of `sendtrace_<stage>_consumer_lag_records` over partitions, from a Prometheus text page.
fn lag_of(page: &str, stage: &str) -> f64 {
    let name = format!("sendtrace_{stage}_consumer_lag_records");
    page.lines()
        .filter(|l| l.starts_with(&name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Samples every watched stage's lag each second until `stop`; returns (stage, peak lag, mean lag).
async fn watch(watches: Vec<(String, String)>, stop: tokio_util::sync::CancellationToken) -> Vec<(String, f64, f64)> {
    let http = reqwest::Client::new();
    let mut peak = vec![(0.0f64, 0.0f64, 0usize); watches.len()];
    while !stop.is_cancelled() {
        for (i, (stage, url)) in watches.iter().enumerate() {
            if let Ok(r) = http.get(url).timeout(Duration::from_secs(2)).send().await {
                if let Ok(page) = r.text().await {
                    let lag = lag_of(&page, stage);
                    peak[i].0 = peak[i].0.max(lag);
                    peak[i].1 += lag;
                    peak[i].2 += 1;
                }
            }
        }
        tokio::select! { _ = stop.cancelled() => break, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
    }
    watches.into_iter().zip(peak).map(|((s, _), (p, sum, n))| (s, p, sum / n.max(1) as f64)).collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let run = format!("{:x}", chrono::Utc::now().timestamp_millis());
    let plan = Plan {
        ingest_url: cli.ingest_url.trim_end_matches('/').to_string(),
        tenant: cli.tenant.clone(),
        run: run.clone(),
        rate: cli.rate,
        seconds: cli.seconds,
        max_in_flight: cli.max_in_flight,
        sendgrid_batch: cli.sendgrid_batch,
        records_batch: cli.records_batch,
    };
    eprintln!("pipeline-load: building the requests of run {run} ({} events/s for {} s)", cli.rate, cli.seconds);
    let (reqs, events) = load::requests(&plan);
    let mut per: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for r in &reqs {
        let e = per.entry(r.provider.as_str()).or_default();
        e.0 += 1;
        e.1 += r.events;
    }
    let mix: Vec<String> = per.iter().map(|(p, (n, e))| format!("{p} {n} requests / {e} events")).collect();
    eprintln!("pipeline-load: {} requests, {events} events ({}); posting", reqs.len(), mix.join(", "));
    let watches: Vec<(String, String)> = cli.watches.iter().filter_map(|w| w.split_once('=')).map(|(s, u)| (s.to_string(), u.to_string())).collect();
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(watch(watches, stop.clone()));
    let posted = load::post(&plan, reqs).await;
    eprintln!("pipeline-load: posted in {:.1} s; waiting for ClickHouse", posted.elapsed.as_secs_f64());
    let expected = posted.accepted_events;
    let landed = load::wait_landed(&cli.clickhouse_url, &cli.database, &cli.tenant, &run, expected, Duration::from_secs(cli.drain_secs)).await?;
    stop.cancel();
    let lags = watcher.await?;
    let offered = events as f64 / posted.elapsed.as_secs_f64();
    println!("pipeline-load run {run}: offered {:.0} events/s for {:.1} s ({} requests, {} events)", offered, posted.elapsed.as_secs_f64(), posted.requests, posted.events);
    println!(
        "  ingest answers: {} 2xx first time, {} after retries, {} never; {} late (all {} slots busy); from scheduled time to 2xx p50 {:.1} ms p99 {:.1} ms",
        posted.accepted_first, posted.retried, posted.refused, posted.late, cli.max_in_flight, posted.pct(0.5), posted.pct(0.99)
    );
    println!(
        "  ClickHouse: {} of the {} accepted events ({} rows), {:.0} events/s sustained (first received to last written {:.1} s)",
        landed.events, expected, landed.rows, landed.rate(), landed.span_s
    );
    println!("  freshness (inserted_at - received_at): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms", landed.p50_ms, landed.p99_ms, landed.max_ms);
    for (stage, peak, mean) in &lags {
        println!("  {stage} consumer lag during the run: peak {peak:.0} records, mean {mean:.0}");
    }
    anyhow::ensure!(posted.refused == 0, "{} requests never accepted", posted.refused);
    anyhow::ensure!(landed.events as usize == expected, "{} accepted events missing after {} s", expected as i64 - landed.events as i64, cli.drain_secs);
    if let Some(max) = cli.max_p99_ms {
        anyhow::ensure!(landed.p99_ms < max, "p99 freshness {:.0} ms ≥ {max} ms", landed.p99_ms);
    }
    Ok(())
}
