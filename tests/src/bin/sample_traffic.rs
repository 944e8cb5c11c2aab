//! `sample-traffic`: the local demo's traffic generator and stats printer.
//!
//! * `config`: prints the ingest tenant config holding the demo secrets.
//! * `post`: posts every provider's documented samples, signed, to ingest.
//! * `stats`: prints a summary read back from ClickHouse over HTTP.

use clap::{Parser, Subcommand};
use e2e::samples;
use std::collections::BTreeMap;

#[derive(Parser)]
#[command(name = "sample-traffic")]
struct Cli {
    #[arg(long, default_value = "demo")]
    tenant: String,
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    ingest_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Config,
    Post,
    Stats {
        #[arg(long, default_value = "http://127.0.0.1:8123")]
        clickhouse_url: String,
        #[arg(long, default_value = "sendtrace")]
        database: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Config => print!("{}", samples::ingest_toml(&cli.tenant, &cli.ingest_url)),
        Command::Post => {
            let all = samples::all(&cli.tenant, &cli.ingest_url);
            let results = samples::post_all(&cli.ingest_url, &all).await;
            let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
            let mut failed = 0;
            for (s, status, text) in &results {
                let e = per.entry(s.provider.as_str()).or_default();
                if (200..300).contains(status) {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                    failed += 1;
                    eprintln!("{} {}: HTTP {status} {text}", s.provider, s.fixture);
                }
            }
            println!("posted sample traffic to {}:", cli.ingest_url);
            for (p, (ok, bad)) in &per {
                println!("  {p:<9} {ok:>3} accepted  {bad:>3} refused");
            }
            anyhow::ensure!(failed == 0, "{failed} samples refused");
        }
        Command::Stats { clickhouse_url, database } => {
            let client = reqwest::Client::new();
            let queries = [
                ("Deliveries by channel, provider and latest status",
                 "SELECT channel, provider, status, count() AS deliveries FROM deliveries FINAL GROUP BY channel, provider, status ORDER BY channel, provider, status"),
                ("Today's counters (UTC day) by channel and event type",
                 "SELECT channel, event_type, bounce_class, sum(events) AS events FROM counters WHERE period = 'day' GROUP BY channel, event_type, bounce_class ORDER BY channel, event_type, bounce_class"),
                ("Cost by currency (from provider-reported prices and send records)",
                 "SELECT cost_unit, sum(cost_amount) AS cost, sum(events) AS priced_events FROM counters WHERE period = 'month' AND cost_unit != '' GROUP BY cost_unit"),
                ("Suppression list by scope and reason",
                 "SELECT scope, reason, count() AS addresses FROM suppressions FINAL GROUP BY scope, reason ORDER BY scope, reason"),
                ("By broadcast this month (attributed_counters; send records and provider tags)",
                 "SELECT broadcast_id, event_type, sum(events) AS events, sum(cost_amount) AS cost FROM attributed_counters WHERE period = 'month' AND broadcast_id != '' GROUP BY broadcast_id, event_type HAVING events != 0 ORDER BY broadcast_id, event_type"),
                ("Unique recipients this month by channel and event type (exact, people only)",
                 "SELECT channel, event_type, uniqExactMerge(recipients) AS recipients FROM unique_recipients WHERE period = 'month' AND machine = '' GROUP BY channel, event_type ORDER BY channel, event_type"),
                ("Machine opens and clicks (kept, counted apart)",
                 "SELECT event_type, machine, sum(events) AS events FROM counters WHERE period = 'day' AND event_type IN ('opened', 'clicked') GROUP BY event_type, machine ORDER BY event_type, machine"),
                ("Totals",
                 "SELECT (SELECT count() FROM events FINAL) AS events, (SELECT count() FROM deliveries FINAL) AS deliveries, (SELECT sum(events) FROM counters WHERE period = 'day') AS counted"),
            ];
            for (title, sql) in queries {
                let resp = client
                    .post(format!("{clickhouse_url}/?database={database}&default_format=PrettyCompactMonoBlock"))
                    .body(sql)
                    .send()
                    .await?;
                let status = resp.status();
                let text = resp.text().await?;
                anyhow::ensure!(status.is_success(), "query failed: {text}");
                println!("\n== {title}\n{text}");
            }
        }
    }
    Ok(())
}
