//! Read API latency on the 10 M-event database of `dashboard-bench`: p50 / p95 of each
//! endpoint for a 30-day range, against two baselines measured in the same run: the API's own
//! trivial answer (`/healthz`: HTTP and the client, no query) and ClickHouse's (`SELECT 1` over
//! its HTTP interface: the round trip every query pays).
//!
//! `dashboard-bench --keep` builds and keeps the database (it prints its name); then
//! `api-bench --clickhouse-url http://127.0.0.1:8123 --database bench_dashboard_<id> [--runs 30]`
//! fills `deliveries` from its events when empty (one row per delivery key: first time of each
//! milestone, latest event as status), starts the API in-process on a free port with a key of
//! `--tenant` and times each endpoint (one warm-up, then `--runs` sequential requests). A
//! messages page "at depth" uses the token after `--depth` rows (keyset: no offset).

use anyhow::{bail, Context};
use clap::Parser;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,
    /// A database built by `dashboard-bench --keep`.
    #[arg(long)]
    database: String,
    #[arg(long, default_value = "acme")]
    tenant: String,
    /// Timed requests per endpoint (after one warm-up).
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Rows before the deep messages page.
    #[arg(long, default_value_t = 20_000)]
    depth: usize,
}

const DELIVERIES_SQL: &str = "INSERT INTO deliveries (tenant, delivery_key, channel, provider, provider_message_id, recipient, broadcast_id, \
    message_class, labels, status, status_at, bounce_class, first_queued_at, first_sent_at, first_delivered_at, last_delivered_at, \
    first_opened_at, last_opened_at, first_clicked_at, last_clicked_at, first_bounced_at, first_complained_at, first_failed_at, \
    first_unsubscribed_at, first_read_at, first_replied_at, open_count, click_count, soft_bounce_count, deferral_count, event_count, \
    cost_amount, cost_unit, seen_event_hashes, version, updated_at) \
  SELECT tenant, delivery_key, any(channel), any(provider), any(provider_message_id), any(recipient), any(broadcast_id), any(message_class), [], \
    argMax(event_type, occurred_at), max(occurred_at), max(bounce_class), \
    minIfOrNull(occurred_at, event_type = 'queued'), minIfOrNull(occurred_at, event_type = 'sent'), minIfOrNull(occurred_at, event_type = 'delivered'), \
    maxIfOrNull(occurred_at, event_type = 'delivered'), minIfOrNull(occurred_at, event_type = 'opened' AND machine = ''), \
    maxIfOrNull(occurred_at, event_type = 'opened' AND machine = ''), minIfOrNull(occurred_at, event_type = 'clicked' AND machine = ''), \
    maxIfOrNull(occurred_at, event_type = 'clicked' AND machine = ''), minIfOrNull(occurred_at, event_type = 'bounced'), \
    minIfOrNull(occurred_at, event_type = 'complained'), minIfOrNull(occurred_at, event_type = 'failed'), minIfOrNull(occurred_at, event_type = 'unsubscribed'), \
    minIfOrNull(occurred_at, event_type = 'read'), minIfOrNull(occurred_at, event_type = 'replied'), \
    toUInt32(countIf(event_type = 'opened' AND machine = '')), toUInt32(countIf(event_type = 'clicked' AND machine = '')), \
    toUInt32(countIf(event_type = 'bounced' AND bounce_class = 'soft')), toUInt32(countIf(event_type = 'deferred')), toUInt32(count()), \
    sum(cost_amount), anyIf(cost_unit, cost_unit != ''), [], 1, now64(3) \
  FROM events GROUP BY tenant, delivery_key";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn timed(client: &reqwest::Client, req: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder, runs: usize) -> anyhow::Result<(Duration, Duration, usize)> {
    let first = req(client).send().await?;
    let status = first.status();
    let bytes = first.bytes().await?.len();
    if !status.is_success() {
        bail!("status {status}");
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let r = req(client).send().await?;
        if !r.status().is_success() {
            bail!("status {}", r.status());
        }
        r.bytes().await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok((pct(&times, 0.5), pct(&times, 0.95), bytes))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ch_url = args.clickhouse_url.trim_end_matches('/').to_string();
    let http = reqwest::Client::new();
    let ch = |sql: String| {
        let http = http.clone();
        let url = ch_url.clone();
        let db = args.database.clone();
        async move {
            let r = http.post(format!("{url}/")).query(&[("database", db.as_str())]).body(sql.clone()).send().await.context("ClickHouse reachable")?;
            let status = r.status();
            let text = r.text().await?;
            if !status.is_success() {
                bail!("{status}: {text}\n{sql}");
            }
            Ok::<String, anyhow::Error>(text)
        }
    };
    let events: u64 = ch("SELECT count() FROM events".into()).await?.trim().parse()?;
    let mut deliveries: u64 = ch("SELECT count() FROM deliveries".into()).await?.trim().parse()?;
    if deliveries == 0 {
        let t = Instant::now();
        ch(DELIVERIES_SQL.into()).await?;
        deliveries = ch("SELECT count() FROM deliveries".into()).await?.trim().parse()?;
        println!("deliveries built from events in {:.1} s", t.elapsed().as_secs_f64());
    }
    // the funnels' signed sums, as migrations 17 and 19 fill them from the deliveries (the
    // database was migrated before it had any)
    for (table, migration) in [("funnels", "funnels"), ("funnel_statuses", "funnel_statuses")] {
        if ch(format!("SELECT count() FROM {table}")).await?.trim() == "0" {
            let t = Instant::now();
            let (_, _, sql) = schemas::ddl::MIGRATIONS.iter().find(|m| m.1 == migration).context("the funnels' migration")?;
            for stmt in schemas::ddl::statements(sql).into_iter().filter(|s| s.starts_with("INSERT INTO")) {
                ch(stmt).await?;
            }
            println!("{table} filled from the deliveries in {:.1} s", t.elapsed().as_secs_f64());
        }
    }
    println!("database {}: events {events}, deliveries {deliveries}", args.database);

    let mut cfg = api::config::Config::default();
    cfg.clickhouse.url = ch_url.clone();
    cfg.clickhouse.database = args.database.clone();
    let keys = cfg.tenants.entry(args.tenant.clone()).or_default();
    keys.keys.insert("bench".into(), api::config::KeyConfig { key: "bench-key".into(), scopes: vec!["stats".into(), "messages".into()] });
    cfg.validate().map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, api::app(api::AppState::new(cfg))).await });

    let client = reqwest::Client::new();
    let get = |path: String| {
        let url = format!("{base}{path}");
        move |c: &reqwest::Client| c.get(&url).bearer_auth("bench-key")
    };
    // a token `depth` rows into the messages list
    let mut token = String::new();
    let mut seen = 0;
    while seen < args.depth {
        let path = if token.is_empty() { "/v1/messages?page_size=1000".to_string() } else { format!("/v1/messages?page_size=1000&page_token={token}") };
        let body: serde_json::Value = client.get(format!("{base}{path}")).bearer_auth("bench-key").send().await?.json().await?;
        seen += body["messages"].as_array().map(Vec::len).unwrap_or(0);
        match body["next_page_token"].as_str() {
            Some(t) => token = t.to_string(),
            None => bail!("fewer than {} deliveries", args.depth),
        }
    }
    let first: serde_json::Value = client.get(format!("{base}/v1/messages?page_size=1")).bearer_auth("bench-key").send().await?.json().await?;
    let message_id = first["messages"][0]["id"].as_str().unwrap_or_default().to_string();
    let recipient = first["messages"][0]["recipient"].as_str().unwrap_or_default().to_string();
    // the first broadcast of the funnels list (~1 % of the tenant's events in the generated data)
    let broadcasts: serde_json::Value = client.get(format!("{base}/v1/broadcasts?page_size=1")).bearer_auth("bench-key").send().await?.json().await?;
    let Some(broadcast) = broadcasts["items"][0]["id"].as_str().map(String::from) else { bail!("no broadcast listed: {broadcasts}") };
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Duration::days(29);
    let since = format!("{from}T00:00:00Z");

    let (h50, h95, _) = timed(&client, get("/healthz".into()), args.runs).await?;
    let ch_floor = {
        let url = format!("{ch_url}/?query=SELECT%201");
        move |c: &reqwest::Client| c.get(&url)
    };
    let (c50, c95, _) = timed(&client, ch_floor, args.runs).await?;
    println!("baselines: /healthz p50 {:.2} ms p95 {:.2} ms; ClickHouse SELECT 1 p50 {:.2} ms p95 {:.2} ms ({} runs each)", ms(h50), ms(h95), ms(c50), ms(c95), args.runs);
    println!();
    println!("{:<58} {:>9} {:>9} {:>10} {:>10} {:>9}", "endpoint (30 days)", "p50 ms", "p95 ms", "p95/SEL1", "p95-SEL1", "bytes");
    let endpoints: Vec<(&str, String)> = vec![
        ("stats day", format!("/v1/stats?granularity=day&from={from}&to={today}")),
        ("stats day by channel + previous period", format!("/v1/stats?granularity=day&from={from}&to={today}&group_by=channel&compare=previous_period")),
        ("stats week by provider", format!("/v1/stats?granularity=week&from={from}&to={today}&group_by=provider")),
        ("stats by broadcast (attributed)", format!("/v1/stats?granularity=day&from={from}&to={today}&group_by=broadcast")),
        ("summary 30 days", "/v1/stats/summary?days=30".into()),
        ("messages, first page (50)", "/v1/messages".into()),
        (Box::leak(format!("messages, page at depth {}", args.depth).into_boxed_str()), format!("/v1/messages?page_token={token}")),
        ("messages, status=bounced", "/v1/messages?status=bounced".into()),
        ("message + chronology", format!("/v1/messages/{message_id}")),
        ("events, last 30 days (50)", format!("/v1/events?from={since}")),
        ("events of one broadcast (50)", format!("/v1/events?from={since}&broadcast={broadcast}")),
        ("recipient's events", format!("/v1/recipients/{recipient}/events")),
        ("recipient engagement", format!("/v1/recipients/{recipient}/engagement")),
        ("broadcasts with funnels", "/v1/broadcasts".into()),
        ("a broadcast's report (counts by status, first page)", format!("/v1/broadcasts/{broadcast}/report")),
        ("bounce reasons", format!("/v1/stats/bounces?from={from}&to={today}")),
        ("bounce reasons of one broadcast", format!("/v1/stats/bounces?from={from}&to={today}&broadcast={broadcast}")),
        ("latency by day", format!("/v1/stats/latency?from={from}&to={today}")),
        ("suppressions", "/v1/suppressions".into()),
        ("sender health", "/v1/senders/health".into()),
    ];
    let mut stats_worst = Duration::ZERO;
    for (name, path) in endpoints {
        match timed(&client, get(path.clone()), args.runs).await {
            Ok((p50, p95, bytes)) => {
                println!("{:<58} {:>9.1} {:>9.1} {:>9.2}x {:>10.1} {:>9}", name, ms(p50), ms(p95), ms(p95) / ms(c95), ms(p95) - ms(c95), bytes);
                if name.starts_with("stats") || name.starts_with("summary") || name.starts_with("messages") {
                    stats_worst = stats_worst.max(p95);
                }
            }
            Err(e) => println!("{name:<58} failed: {e} ({path})"),
        }
    }
    println!();
    println!("slowest p95 of stats, summary and messages pages: {:.1} ms (goal 100 ms)", ms(stats_worst));
    Ok(())
}
