//! Dashboard query on 10 million events: day / week / month stats for one tenant read
//! from `counters` only, and unique human openers per day read from `unique_recipients` (and
//! from `recipient_days`, with the summary's 30-day people reached, opening and clicking),
//! each against the same answer computed from `events` (the baseline, measured in the
//! same run). Goal: well under 1 s.
//!
//! `dashboard-bench --clickhouse-url http://127.0.0.1:8123 [--events 10000000] [--runs 5]`
//!
//! Creates a fresh database, migrates it with `aggregator::migrate`, generates the
//! events server-side (`INSERT INTO events SELECT ... FROM numbers(..)`, ~6 per delivery,
//! 90 days, 4 tenants, 4 channels, 8 providers, 13 event types, ~400,000 recipients
//! spelled in two cases, a fifth of opens/clicks machine), builds the counters with one
//! `INSERT INTO counters SELECT ... GROUP BY` per period (`unique_recipients` is filled by
//! its materialized view while the events are inserted), then times each query (one
//! warm-up, median of `--runs`). Exits non-zero if the two answers differ.

use aggregator::config::ClickHouseConfig;
use anyhow::{bail, Context};
use clap::Parser;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
struct Args {
    /// ClickHouse HTTP interface.
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,
    /// Events to generate.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Timed runs per query (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Tenant the dashboard shows (the largest of the generated ones by default).
    #[arg(long, default_value = "acme")]
    tenant: String,
    /// Keep the database afterwards (dropped by default).
    #[arg(long)]
    keep: bool,
}

struct Ch {
    http: reqwest::Client,
    url: String,
    database: String,
}

impl Ch {
    /// Runs `sql` (TabSeparated unless it says otherwise) with `{t:String}` bound to `tenant`.
    async fn run(&self, sql: &str, tenant: &str) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(format!("{}/", self.url))
            .query(&[("database", self.database.as_str()), ("default_format", "TabSeparated"), ("param_t", tenant)])
            .body(sql.to_string())
            .send()
            .await
            .context("ClickHouse reachable")?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            bail!("query failed ({status}): {body}\n{sql}");
        }
        Ok(body)
    }

    async fn number(&self, sql: &str) -> anyhow::Result<u64> {
        let body = self.run(sql, "").await?;
        body.trim().parse().with_context(|| format!("not a number: {body:?} from {sql}"))
    }

    /// One warm-up, then `runs` timed runs; returns the median and the answer.
    async fn time(&self, sql: &str, tenant: &str, runs: usize) -> anyhow::Result<(Duration, String)> {
        let answer = self.run(sql, tenant).await?;
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let again = self.run(sql, tenant).await?;
            times.push(t.elapsed());
            if again != answer {
                bail!("the answer changed between runs:\n{sql}");
            }
        }
        times.sort();
        Ok((times[times.len() / 2], answer))
    }
}

/// One dashboard view: its name, the query on the aggregate table and the same answer from events.
struct View {
    name: &'static str,
    counters: String,
    events: String,
}

fn views() -> Vec<View> {
    // (period, bucket of an event, first bucket shown: 30 days, 12 weeks, 3 months)
    let specs = [
        ("day", "toDate(occurred_at)", "today() - 29"),
        ("week", "toMonday(occurred_at)", "toMonday(today()) - 77"),
        ("month", "toStartOfMonth(occurred_at)", "addMonths(toStartOfMonth(today()), -2)"),
    ];
    let mut views: Vec<View> = specs
        .iter()
        .map(|(period, bucket, since)| View {
            name: period,
            counters: format!(
                "SELECT bucket_start, event_type, sum(events) AS n FROM counters \
                 WHERE tenant = {{t:String}} AND period = '{period}' AND bucket_start >= {since} \
                 GROUP BY bucket_start, event_type ORDER BY bucket_start, event_type"
            ),
            events: format!(
                "SELECT {bucket} AS bucket_start, event_type, count() AS n FROM events \
                 WHERE tenant = {{t:String}} AND {bucket} >= {since} \
                 GROUP BY bucket_start, event_type ORDER BY bucket_start, event_type"
            ),
        })
        .collect();
    // unique human openers per day, last 30 days: sets merged across every other key
    views.push(View {
        name: "uniques",
        counters: "SELECT bucket_start, uniqExactMerge(recipients) AS n FROM unique_recipients \
                   WHERE tenant = {t:String} AND period = 'day' AND bucket_start >= today() - 29 \
                   AND event_type IN ('opened', 'read') AND machine = '' \
                   GROUP BY bucket_start ORDER BY bucket_start"
            .into(),
        events: "SELECT toDate(occurred_at) AS bucket_start, uniqExact(lower(recipient)) AS n FROM events \
                 WHERE tenant = {t:String} AND toDate(occurred_at) >= today() - 29 \
                 AND event_type IN ('opened', 'read') AND machine = '' \
                 GROUP BY bucket_start ORDER BY bucket_start"
            .into(),
    });
    // the same per day from `recipient_days` (migration 16: a row per person and day)
    let openers_from_events = views.last().expect("the uniques view").events.clone();
    views.push(View {
        name: "people",
        counters: "SELECT bucket_start, uniqExact(recipient) AS n FROM recipient_days \
                   WHERE tenant = {t:String} AND period = 'day' AND bucket_start >= today() - 29 \
                   AND event_type IN ('opened', 'read') GROUP BY bucket_start ORDER BY bucket_start"
            .into(),
        events: openers_from_events,
    });
    // the summary's 30-day people reached, opening, clicking (one union over the days)
    let kind = "multiIf(event_type = 'delivered', 'reached', event_type = 'clicked', 'clicked', 'opened')";
    views.push(View {
        name: "people30",
        counters: format!(
            "SELECT {kind} AS kind, uniqExact(recipient) AS n FROM recipient_days \
             WHERE tenant = {{t:String}} AND period = 'day' AND bucket_start >= today() - 29 GROUP BY kind ORDER BY kind"
        ),
        events: format!(
            "SELECT {kind} AS kind, uniqExact(lower(recipient)) AS n FROM events \
             WHERE tenant = {{t:String}} AND toDate(occurred_at) >= today() - 29 \
             AND event_type IN ('delivered', 'opened', 'read', 'clicked') AND machine = '' GROUP BY kind ORDER BY kind"
        ),
    });
    views
}

/// Events `start..start + count`: ~6 per delivery (`d = number / 6`), delivery attributes
/// from a hash of `d`, the event type from a hash of the event, times over 90 days before `now_ms`.
fn generate_sql(start: u64, count: u64, now_ms: i64) -> String {
    format!(
        "INSERT INTO events (event_id, tenant, channel, provider, provider_message_id, provider_event_id, \
           provider_event_name, delivery_key, recipient, broadcast_id, message_class, labels, metadata, event_type, \
           bounce_class, occurred_at, received_at, time_source, cost_amount, cost_unit, raw_topic, raw_partition, \
           raw_offset, events_partition, events_offset, machine)
         SELECT
           lower(hex(MD5(toString(number)))) AS event_id,
           ['acme', 'acme', 'acme', 'acme', 'globex-corp', 'globex-corp', 'initech', 'umbrella-health'][1 + hd % 8] AS tenant,
           multiIf(intDiv(hd, 8) % 100 < 80, 'email', intDiv(hd, 8) % 100 < 92, 'sms', intDiv(hd, 8) % 100 < 97, 'whatsapp', 'push') AS channel,
           multiIf(channel = 'email', ['ses', 'sendgrid', 'postmark', 'mailgun', 'resend'][1 + intDiv(hd, 1000) % 5],
                   channel = 'push', ['fcm', 'apns'][1 + intDiv(hd, 1000) % 2], 'twilio') AS provider,
           concat('0100018f', lower(hex(MD5(concat('m', toString(d))))), '-000000000000000000') AS provider_message_id,
           concat(provider_message_id, '-', toString(number % 6)) AS provider_event_id,
           event_type AS provider_event_name,
           lower(hex(MD5(concat('dk', toString(d))))) AS delivery_key,
           concat(if(d % 5 = 0, 'U', 'u'), leftPad(toString(d % 400000), 7, '0'), '@example-mail.com') AS recipient,
           concat('bc-', toString(intDiv(hd, 100000) % 97)) AS broadcast_id,
           'marketing' AS message_class,
           CAST([] AS Array(String)) AS labels,
           '{{}}' AS metadata,
           multiIf(r < 17, 'queued', r < 34, 'sent', r < 50, 'delivered', r < 68, 'opened', r < 76, 'clicked',
                   r < 81, 'deferred', r < 86, 'bounced', r < 88, 'failed', r < 89, 'complained',
                   r < 91, 'unsubscribed', r < 98, 'read', r < 99, 'replied', 'unknown') AS event_type,
           if(event_type = 'bounced', ['hard', 'soft', 'undetermined'][1 + intDiv(he, 100) % 3], '') AS bounce_class,
           fromUnixTimestamp64Milli(toInt64({now_ms} - 600000 - toInt64(hd % 7776000000) + toInt64(number % 6) * 60000), 'UTC') AS occurred_at,
           fromUnixTimestamp64Milli(toInt64({now_ms} - 598000 - toInt64(hd % 7776000000) + toInt64(number % 6) * 60000), 'UTC') AS received_at,
           'provider' AS time_source,
           if(event_type = 'queued', toDecimal128('0.00075', 10), toDecimal128('0', 10)) AS cost_amount,
           if(event_type = 'queued', 'USD', '') AS cost_unit,
           'sendtrace.raw.v1' AS raw_topic,
           toInt32(d % 12) AS raw_partition,
           toInt64(number) AS raw_offset,
           toInt32(d % 12) AS events_partition,
           toInt64(number) AS events_offset,
           if(event_type IN ('opened', 'clicked') AND intDiv(he, 10000) % 5 = 0, 'apple_mpp', '') AS machine
         FROM (SELECT number, intDiv(number, 6) AS d, cityHash64(intDiv(number, 6)) AS hd, cityHash64(number) AS he,
                      cityHash64(number) % 100 AS r
               FROM numbers({start}, {count}))"
    )
}

/// Counters of one period from all events (what the aggregator's deltas sum to).
fn counters_sql(period: &str, bucket: &str) -> String {
    format!(
        "INSERT INTO counters (tenant, period, bucket_start, channel, provider, event_type, bounce_class, cost_unit, events, cost_amount)
         SELECT tenant, '{period}', {bucket} AS b, channel, provider, event_type, bounce_class, cost_unit, count(), sum(cost_amount)
         FROM events GROUP BY tenant, b, channel, provider, event_type, bounce_class, cost_unit"
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let database = format!("bench_dashboard_{}", &id[..8]);
    let ch = Ch { http: reqwest::Client::new(), url: args.clickhouse_url.trim_end_matches('/').to_string(), database: database.clone() };

    let cfg = ClickHouseConfig { url: ch.url.clone(), database: database.clone(), ..Default::default() };
    let applied = aggregator::migrate::migrate(&cfg, "UTC").await.context("migrate")?;
    println!("database {database}: migrations {applied:?} applied");

    let now_ms = chrono::Utc::now().timestamp_millis();
    let chunk = 1_000_000u64;
    let t = Instant::now();
    let mut start = 0;
    while start < args.events {
        let count = chunk.min(args.events - start);
        ch.run(&generate_sql(start, count, now_ms), "").await?;
        start += count;
        eprint!("\rgenerated {start} events ({:.0} s)", t.elapsed().as_secs_f64());
    }
    eprintln!();
    let generated = t.elapsed();
    let t = Instant::now();
    for (period, bucket) in [("day", "toDate(occurred_at)"), ("week", "toMonday(occurred_at)"), ("month", "toStartOfMonth(occurred_at)")] {
        ch.run(&counters_sql(period, bucket), "").await?;
    }
    let counted = t.elapsed();

    let events_rows = ch.number("SELECT count() FROM events").await?;
    let counter_rows = ch.number("SELECT count() FROM counters").await?;
    let unique_rows = ch.number("SELECT count() FROM unique_recipients").await?;
    let tenant_events = ch.number(&format!("SELECT count() FROM events WHERE tenant = '{}'", args.tenant.replace('\'', ""))).await?;
    let parts = ch.run("SELECT table, count() FROM system.parts WHERE database = currentDatabase() AND active GROUP BY table ORDER BY table", "").await.unwrap_or_default();
    println!("rows: events {events_rows} (tenant {}: {tenant_events}), counters {counter_rows}, unique_recipients {unique_rows}", args.tenant);
    println!("active parts: {}", parts.trim().replace('\n', ", ").replace('\t', " "));
    println!("setup: generate (unique_recipients view included) {:.1} s, build counters {:.1} s", generated.as_secs_f64(), counted.as_secs_f64());

    let (floor, _) = ch.time("SELECT 1", "", args.runs).await?;
    println!("endpoint round trip (SELECT 1): median {:.1} ms", ms(floor));
    println!();
    println!("{:<8} {:>6} {:>14} {:>14} {:>16} {:>16}", "view", "rows", "counters ms", "events ms", "events/counters", "counters/SELECT1");
    let mut mismatch = Vec::new();
    let mut worst = Duration::ZERO;
    for v in views() {
        let (c_ms, c_ans) = ch.time(&v.counters, &args.tenant, args.runs).await?;
        let (e_ms, e_ans) = ch.time(&v.events, &args.tenant, args.runs).await?;
        let rows = c_ans.lines().count();
        println!("{:<8} {:>6} {:>14.1} {:>14.1} {:>15.1}x {:>15.2}x", v.name, rows, ms(c_ms), ms(e_ms), ms(e_ms) / ms(c_ms), ms(c_ms) / ms(floor));
        if c_ans != e_ans || rows == 0 {
            mismatch.push(v.name);
        }
        worst = worst.max(c_ms);
    }
    println!();
    println!(
        "slowest counters query: {:.1} ms ({:.3} of the 1 s goal)",
        ms(worst),
        worst.as_secs_f64()
    );

    if !args.keep {
        ch.run(&format!("DROP DATABASE IF EXISTS `{database}`"), "").await?;
    }
    if !mismatch.is_empty() {
        bail!("counters and events disagree (or are empty) for: {mismatch:?}");
    }
    println!("answers equal: counters == events for day, week and month; unique_recipients and recipient_days == events for unique openers; recipient_days == events for 30-day people");
    Ok(())
}
