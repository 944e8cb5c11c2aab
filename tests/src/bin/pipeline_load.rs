//! `pipeline-load`: the whole pipeline under an open-loop load (issue 14, goal 3).
//!
//! Posts unique webhooks (SES through SNS, SendGrid batches, send records; see `e2e::load`) to a
//! running ingest at `--rate` events/s for `--seconds`, whatever the answers, then waits until
//! every event is in ClickHouse and prints, from ClickHouse's own clocks, the events/s the
//! pipeline sustained and the freshness of each event (its first row's `inserted_at` -
//! `received_at`: from ingest receiving it to its row being written) at p50/p99/max; rows
//! written again later (a late send record's re-attribution, a replay) are counted apart. `scripts/load.sh` starts the stack in
//! release builds and runs it with the stand-ins' own figures beside it.
//!
//!   pipeline-load --ingest-url http://127.0.0.1:8080 --clickhouse-url http://127.0.0.1:8123 --rate 5000 --seconds 20

use clap::Parser;
use e2e::load::{self, Plan};
use e2e::observe::{self, CpuMeter};
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
    /// Requests open at most; one that finds them all busy waits and is counted late. At 10 k
    /// events/s (~5 k requests/s) and the devstack's 50 ms linger ~300 are open on average,
    /// with peaks past 512 (849 requests late at 512 on 2026-12-07, none at 2,048).
    #[arg(long, default_value_t = 2048)]
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
    /// `<name>=<pid>`: a process on this machine whose CPU time during the run (posting and
    /// drain) is printed, per event, beside the load client's own (the CPU budget).
    #[arg(long = "cpu", value_parser = observe::parse_named_pid)]
    cpus: Vec<(String, u32)>,
    /// Which of the `--cpu` processes are the devstack's stand-ins (their share is summed apart).
    #[arg(long, value_delimiter = ',', default_value = "tansu,clickhouse")]
    stand_ins: Vec<String>,
    /// The rate the CPU budget is held against (issue 14 goal 3: 10 k events/s).
    #[arg(long, default_value_t = 10_000.0)]
    goal_rate: f64,
}

/// Sum of `sendtrace_<stage>_consumer_lag_records` over partitions, from a Prometheus text page.
fn lag_of(page: &str, stage: &str) -> f64 {
    observe::prometheus_sum(page, &format!("sendtrace_{stage}_consumer_lag_records")).unwrap_or(0.0)
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

/// Where the machine's CPU went during the run, per process and per landed event, and what that
/// cost per event allows on this machine's cores: the whole pipeline's ceiling at this cost, and
/// the stand-ins' (tansu, the chdb endpoint) alone. A ceiling from CPU per event is an upper
/// bound: it leaves out waits, and spinning while waiting (librdkafka's) is counted as work.
fn print_budget(cli: &Cli, wall: Duration, spent: &[observe::CpuSpent], events: u64) {
    if cli.cpus.is_empty() || events == 0 {
        return;
    }
    let cores = observe::cores();
    let per_event = |d: Duration| d.as_secs_f64() * 1e6 / events as f64;
    println!(
        "  CPU during the run ({:.1} s, posting and drain; {cores} cores = {:.1} CPU-s available), per landed event:",
        wall.as_secs_f64(),
        wall.as_secs_f64() * cores as f64
    );
    let (mut all, mut stand_ins) = (Duration::ZERO, Duration::ZERO);
    for s in spent {
        match s.cpu {
            Some(cpu) => {
                let stand_in = cli.stand_ins.contains(&s.name);
                // (librdkafka's threads' share: spinning while acknowledgements are awaited, §7)
                let kafka = s.kafka_client.filter(|k| !k.is_zero()).map(|k| format!(", of which {:.0} in its Kafka client's threads", per_event(k))).unwrap_or_default();
                println!("    {:<12} {:>7.1} CPU-s {:>7.0} µs/event{}{kafka}", s.name, cpu.as_secs_f64(), per_event(cpu), if stand_in { " (stand-in)" } else { "" });
                all += cpu;
                if stand_in {
                    stand_ins += cpu;
                }
            }
            None => println!("    {:<12} (not readable: exited?)", s.name),
        }
    }
    let ceiling = |d: Duration| cores as f64 * 1e6 / per_event(d).max(f64::MIN_POSITIVE);
    println!(
        "    all          {:>7.1} CPU-s {:>7.0} µs/event: at this cost {cores} cores carry at most {:.0} events/s",
        all.as_secs_f64(),
        per_event(all),
        ceiling(all)
    );
    println!(
        "    stand-ins    {:>7.1} CPU-s {:>7.0} µs/event ({}): alone they would take {:.2} of the {cores} cores at {:.0} events/s (at most {:.0} events/s with all {cores})",
        stand_ins.as_secs_f64(),
        per_event(stand_ins),
        cli.stand_ins.join(", "),
        per_event(stand_ins) * cli.goal_rate / 1e6,
        cli.goal_rate,
        ceiling(stand_ins)
    );
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
    let meter = CpuMeter::start(&cli.cpus);
    let posted = load::post(&plan, reqs).await;
    eprintln!("pipeline-load: posted in {:.1} s; waiting for ClickHouse", posted.elapsed.as_secs_f64());
    let expected = posted.accepted_events;
    let landed = load::wait_landed(&cli.clickhouse_url, &cli.database, &cli.tenant, &run, expected, Duration::from_secs(cli.drain_secs)).await?;
    let (wall, spent) = meter.stop("load client");
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
    println!("  freshness (first row's inserted_at - received_at): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms", landed.p50_ms, landed.p99_ms, landed.max_ms);
    println!(
        "  rewritten later (re-attributed or replayed): {} events, the latest row {:.0} ms after its event was received",
        landed.rewritten, landed.rewritten_max_ms
    );
    for (stage, peak, mean) in &lags {
        println!("  {stage} consumer lag during the run: peak {peak:.0} records, mean {mean:.0}");
    }
    print_budget(&cli, wall, &spent, landed.events);
    anyhow::ensure!(posted.refused == 0, "{} requests never accepted", posted.refused);
    anyhow::ensure!(landed.events as usize == expected, "{} accepted events missing after {} s", expected as i64 - landed.events as i64, cli.drain_secs);
    if let Some(max) = cli.max_p99_ms {
        anyhow::ensure!(landed.p99_ms < max, "p99 freshness {:.0} ms ≥ {max} ms", landed.p99_ms);
    }
    Ok(())
}
