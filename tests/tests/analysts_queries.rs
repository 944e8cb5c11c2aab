//! docs/analysts.md on the real stack: every ready query of the guide (a `<!-- query: name -->`
//! line, then a ```sql block) is extracted, run against ClickHouse with its parameters, and its
//! answer compared with a brute-force computation over the generated events (never with another
//! SQL query). The stream ([`e2e::analysts::analysts_stream`]) goes through the events topic and
//! the aggregator, with a second tenant's stream beside it (a query without its tenant filter
//! fails). Each query runs over two windows, one holding the whole five-day stream and one its
//! last two days, so the range filters must cut where the truth does. A query in the guide
//! without a check here, or a check without its query, fails.

use e2e::analysts::{self, attribution, expected_flagged, expected_suppressions, feed, machine_of, reading_rule_broken, run_sql, sender_counts, utc_day, COUNTRY_CODES, MIN_SENT, ZONE};
use e2e::generate::Stream;
use e2e::{wait_until, Pipeline, Stack};
use rust_decimal::Decimal;
use schemas::{BounceClass, Event, EventType};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

/// Every query with a check below; each must be in the guide and vice versa.
const CHECKED: &[&str] = &[
    "funnel_by_broadcast",
    "funnel_by_broadcast_all_time",
    "bounce_reasons_by_provider_domain",
    "cost_per_delivered_sms_by_country",
    "unique_human_openers_7d",
    "unique_human_openers_by_day",
    "time_to_first_open",
    "delivery_latency_by_day",
    "sender_health_over_time",
    "sender_flags",
    "daily_delivery_rate_by_provider",
    "complaints_by_template",
    "suppression_list_growth",
    "top_clicked_urls",
    "events_per_day_by_type",
    "machine_opens_by_reason",
    "most_engaged_recipients",
];

struct Query {
    name: String,
    sql: String,
}

/// The ready queries of docs/analysts.md, in order.
fn doc_queries() -> Vec<Query> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/analysts.md")).expect("docs/analysts.md");
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.trim().strip_prefix("<!-- query:").and_then(|r| r.strip_suffix("-->")) else { continue };
        let fence = lines.next().unwrap_or_default();
        assert_eq!(fence.trim(), "```sql", "query {name}: the marker must be followed by a ```sql block");
        let sql: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        out.push(Query { name: name.trim().to_string(), sql: sql.join("\n") });
    }
    out
}

/// `{name:Type}` placeholders of a query.
fn placeholders(sql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = sql;
    while let Some(i) = rest.find('{') {
        rest = &rest[i + 1..];
        if let Some(j) = rest.find('}') {
            if let Some((name, _ty)) = rest[..j].split_once(':') {
                if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    out.insert(name.to_string());
                }
            }
        }
    }
    out
}

/// What the checks read: the pipeline, tenant `acme`'s stream, and one time window.
struct Ctx<'a> {
    p: &'a Pipeline,
    s: &'a Stream,
    events: &'a [Event],
    machine: &'a BTreeMap<String, &'static str>,
    /// The default parameters (a check may override some): the window and the rest.
    params: BTreeMap<String, String>,
    /// `{from:DateTime64(3)}` (inclusive) and `{to:DateTime64(3)}` (exclusive), in ms.
    from_ms: i64,
    to_ms: i64,
    /// `{from_day:Date}` and `{to_day:Date}`, both included.
    from_day: String,
    to_day: String,
    /// Whether the window holds the whole stream (then the stream's variety is asserted too).
    full: bool,
}

impl Ctx<'_> {
    fn in_time(&self, ms: i64) -> bool {
        ms >= self.from_ms && ms < self.to_ms
    }

    fn in_days(&self, day: &str) -> bool {
        day >= self.from_day.as_str() && day <= self.to_day.as_str()
    }

    /// Runs `sql` with the default parameters, `overrides` replacing some; rows as JSON
    /// (64-bit integers as numbers, decimals as exact strings).
    async fn run(&self, sql: &str, overrides: &[(&str, &str)]) -> Vec<Value> {
        let params: Vec<(String, String)> = placeholders(sql)
            .into_iter()
            .map(|name| {
                let v = overrides.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()).or_else(|| self.params.get(&name).cloned());
                let v = v.unwrap_or_else(|| panic!("no value for parameter {{{name}}}"));
                (name, v)
            })
            .collect();
        run_sql(&self.p.stack.clickhouse_url, &self.p.database, sql, &params).await
    }

    fn human(&self, e: &Event) -> bool {
        self.machine.get(&e.event_id).is_none_or(|m| m.is_empty())
    }

    /// Facts of every delivery, from its distinct events (the aggregator's rules, brute force).
    fn deliveries(&self) -> BTreeMap<String, Dl> {
        let attr = attribution(self.s);
        let mut m: BTreeMap<String, Dl> = BTreeMap::new();
        for e in self.events {
            let d = m.entry(e.delivery_key.clone()).or_default();
            d.channel = e.channel.as_str().to_string();
            d.provider = e.provider.clone();
            d.recipient = e.recipient.clone();
            if let Some((b, _, t)) = attr.get(&e.delivery_key) {
                d.broadcast = b.clone();
                d.template = t.clone();
            }
            if let Some(c) = &e.cost {
                d.cost += c.amount;
                d.cost_unit = c.unit.clone();
            }
            let human = self.human(e);
            if !human {
                continue; // machine opens move nothing but their own counts
            }
            let r = aggregator::rules::rank(e.event_type, e.bounce_class);
            if r > d.rank {
                d.rank = r;
                d.status = e.event_type.as_str().to_string();
            }
            let min = |slot: &mut Option<i64>, t: i64| *slot = Some(slot.map_or(t, |s| s.min(t)));
            match e.event_type {
                EventType::Queued => min(&mut d.first_queued, e.occurred_at),
                EventType::Sent => {
                    d.sent = true;
                    min(&mut d.first_sent, e.occurred_at);
                }
                EventType::Delivered => min(&mut d.delivered_at, e.occurred_at),
                EventType::Opened | EventType::Read => {
                    min(&mut d.delivered_at, e.occurred_at);
                    min(&mut d.first_open, e.occurred_at);
                    d.opens += 1;
                }
                EventType::Clicked | EventType::Replied => {
                    min(&mut d.delivered_at, e.occurred_at);
                    d.clicks += u64::from(e.event_type == EventType::Clicked);
                }
                _ => {}
            }
        }
        m
    }
}

#[derive(Default, Debug)]
struct Dl {
    channel: String,
    provider: String,
    recipient: String,
    broadcast: String,
    template: String,
    rank: u8,
    status: String,
    first_queued: Option<i64>,
    sent: bool,
    first_sent: Option<i64>,
    delivered_at: Option<i64>,
    first_open: Option<i64>,
    opens: u64,
    clicks: u64,
    cost: Decimal,
    cost_unit: String,
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or_else(|| panic!("an integer: {v}")),
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("an integer: {v}")),
        _ => panic!("an integer: {v}"),
    }
}

fn float(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or_default(),
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("a number: {v}")),
        _ => panic!("a number: {v}"),
    }
}

fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => Decimal::from_str(s).unwrap_or_else(|_| panic!("a decimal: {v}")),
        Value::Number(n) => Decimal::from_str(&n.to_string()).unwrap_or_else(|_| panic!("a decimal: {v}")),
        _ => panic!("a decimal: {v}"),
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("a string: {v}")).to_string()
}

fn local_day(ms: i64, period: &str) -> String {
    use chrono::TimeZone;
    match period.strip_prefix("day:") {
        Some(zone) => {
            let tz: chrono_tz::Tz = zone.parse().expect("zone");
            let utc = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
            tz.from_utc_datetime(&utc.naive_utc()).date_naive().to_string()
        }
        None => utc_day(ms),
    }
}

/// The element at ⌊level × n⌋ of the sorted values (ClickHouse's quantileExact).
fn quantile_exact(sorted: &[i64], level: f64) -> i64 {
    let i = ((level * sorted.len() as f64).floor() as usize).min(sorted.len() - 1);
    sorted[i]
}

/// The delivery's time the guide's delivery queries filter on: coalesce(first_queued_at, ..)
/// (every generated delivery has a send record).
fn queued(d: &Dl) -> i64 {
    d.first_queued.expect("every generated delivery has a send record")
}

/// A delivery's stages as the funnel queries count them: (delivery, sent, delivered, human
/// open, human click, hard bounce, complaint, unsubscribe, failure).
fn funnel_stages(d: &Dl) -> [bool; 9] {
    let st = d.status.as_str();
    [
        true,
        d.sent || d.delivered_at.is_some(),
        d.delivered_at.is_some(),
        d.opens > 0,
        d.clicks > 0,
        st == "bounced",
        st == "complained",
        st == "unsubscribed",
        st == "failed",
    ]
}

async fn check(ctx: &Ctx<'_>, q: &Query) {
    let sql = q.sql.as_str();
    match q.name.as_str() {
        "funnel_by_broadcast" => {
            let mut want: BTreeMap<String, [i64; 9]> = BTreeMap::new();
            for d in ctx.deliveries().values().filter(|d| ctx.in_time(queued(d))) {
                let w = want.entry(d.broadcast.clone()).or_default();
                for (i, f) in funnel_stages(d).into_iter().enumerate() {
                    w[i] += i64::from(f);
                }
            }
            let cols = ["deliveries", "sent", "delivered", "human_openers", "human_clickers", "hard_bounced", "complained", "unsubscribed", "failed"];
            let got: BTreeMap<String, [i64; 9]> = ctx.run(sql, &[]).await.iter().map(|r| (text(&r["broadcast"]), cols.map(|c| int(&r[c])))).collect();
            assert_eq!(got, want, "funnel by broadcast ({cols:?})");
            assert!(!ctx.full || (want.len() >= 3 && want.values().all(|w| w[5] + w[6] + w[8] > 0)), "the stream has bounces, complaints and failures in every broadcast");
        }
        "funnel_by_broadcast_all_time" => {
            // every attributed delivery, whatever its time; and its distinct people (lower case)
            let mut want: BTreeMap<String, ([i64; 9], BTreeSet<String>)> = BTreeMap::new();
            for d in ctx.deliveries().values().filter(|d| !d.broadcast.is_empty()) {
                let w = want.entry(d.broadcast.clone()).or_default();
                for (i, f) in funnel_stages(d).into_iter().enumerate() {
                    w.0[i] += i64::from(f);
                }
                w.1.insert(d.recipient.to_ascii_lowercase());
            }
            let want: BTreeMap<String, ([i64; 9], i64)> = want.into_iter().map(|(b, (n, people))| (b, (n, people.len() as i64))).collect();
            let cols = ["deliveries", "sent", "delivered", "human_openers", "human_clickers", "hard_bounced", "complained", "unsubscribed", "failed"];
            let got: BTreeMap<String, ([i64; 9], i64)> = ctx.run(sql, &[]).await.iter().map(|r| (text(&r["broadcast"]), (cols.map(|c| int(&r[c])), int(&r["people"])))).collect();
            assert_eq!(got, want, "funnel by broadcast, all time ({cols:?}, people)");
            assert!(want.len() >= 3 && want.values().any(|(n, people)| n[0] > *people), "broadcasts, one with a person twice");
        }
        "bounce_reasons_by_provider_domain" => {
            type Key = (String, String, String, String);
            let mut want: BTreeMap<Key, (i64, BTreeSet<String>)> = BTreeMap::new();
            for e in ctx.events.iter().filter(|e| e.event_type == EventType::Bounced && ctx.in_time(e.occurred_at)) {
                let domain = e.recipient.rsplit_once('@').map(|(_, d)| d).unwrap_or(&e.recipient).to_ascii_lowercase();
                let reason = e.error_reason.clone().or(e.error_code.clone()).unwrap_or_default();
                let bc = e.bounce_class.map(|b| b.as_str()).unwrap_or_default().to_string();
                let w = want.entry((e.provider.clone(), domain, bc, reason)).or_default();
                w.0 += 1;
                w.1.insert(e.delivery_key.clone());
            }
            let want: BTreeMap<Key, (i64, i64)> = want.into_iter().map(|(k, (n, s))| (k, (n, s.len() as i64))).collect();
            let rows = ctx.run(sql, &[]).await;
            let got: BTreeMap<Key, (i64, i64)> = rows
                .iter()
                .map(|r| ((text(&r["provider"]), text(&r["recipient_domain"]), text(&r["bounce_class"]), text(&r["reason"])), (int(&r["bounces"]), int(&r["deliveries"]))))
                .collect();
            assert_eq!(got, want, "bounce reasons");
            let counts: Vec<i64> = rows.iter().map(|r| int(&r["bounces"])).collect();
            assert!(counts.windows(2).all(|w| w[0] >= w[1]), "most frequent first: {counts:?}");
            assert!(!ctx.full || want.keys().map(|k| &k.1).collect::<BTreeSet<_>>().len() >= 3, "several recipient domains");
        }
        "cost_per_delivered_sms_by_country" => {
            let mut want: BTreeMap<(String, String), (i64, i64, Decimal)> = BTreeMap::new();
            for d in ctx.deliveries().values().filter(|d| d.channel == "sms" && ctx.in_time(queued(d))) {
                let cc = COUNTRY_CODES.iter().find(|c| d.recipient[1..].starts_with(*c)).expect("a generated country code");
                let w = want.entry((cc.to_string(), d.cost_unit.clone())).or_default();
                w.0 += 1;
                w.1 += i64::from(d.delivered_at.is_some());
                w.2 += d.cost;
            }
            let rows = ctx.run(sql, &[]).await;
            let got: BTreeMap<(String, String), (i64, i64, Decimal)> =
                rows.iter().map(|r| ((text(&r["country_code"]), text(&r["currency"])), (int(&r["messages"]), int(&r["delivered"]), dec(&r["cost"])))).collect();
            assert_eq!(got, want, "SMS messages, delivered and cost by country code and currency");
            for r in &rows {
                let (cost, delivered) = (dec(&r["cost"]), int(&r["delivered"]));
                if delivered == 0 {
                    assert!(r["cost_per_delivered"].is_null(), "{r}");
                } else {
                    let per = cost / Decimal::from(delivered);
                    assert!((dec(&r["cost_per_delivered"]) - per).abs() < Decimal::new(1, 9), "{r}: {per}");
                }
            }
            let codes: BTreeSet<usize> = want.keys().map(|k| k.0.len()).collect();
            assert!(!ctx.full || codes == BTreeSet::from([1, 2, 3]), "one-, two- and three-digit codes: {codes:?}");
        }
        "unique_human_openers_7d" => {
            let first = (chrono::Utc::now().date_naive() - chrono::Duration::days(6)).to_string();
            let want: BTreeSet<String> = ctx
                .events
                .iter()
                .filter(|e| matches!(e.event_type, EventType::Opened | EventType::Read) && ctx.human(e) && utc_day(e.occurred_at) >= first)
                .map(|e| e.recipient.to_ascii_lowercase())
                .collect();
            let rows = ctx.run(sql, &[]).await;
            assert_eq!(int(&rows[0]["human_openers"]), want.len() as i64, "unique human openers, 7 days");
            let opened_events = ctx.events.iter().filter(|e| e.event_type == EventType::Opened && ctx.human(e)).count();
            assert!(opened_events > want.len(), "the stream has people opening twice (a count of events would differ)");
        }
        "unique_human_openers_by_day" => {
            for period in ["day".to_string(), format!("day:{ZONE}")] {
                let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                for e in ctx.events.iter().filter(|e| matches!(e.event_type, EventType::Opened | EventType::Read) && ctx.human(e)) {
                    let day = local_day(e.occurred_at, &period);
                    if ctx.in_days(&day) {
                        want.entry(day).or_default().insert(e.recipient.to_ascii_lowercase());
                    }
                }
                let want: BTreeMap<String, i64> = want.into_iter().map(|(d, s)| (d, s.len() as i64)).collect();
                let got: BTreeMap<String, i64> = ctx.run(sql, &[("period", &period)]).await.iter().map(|r| (text(&r["day"]), int(&r["human_openers"]))).collect();
                assert_eq!(got, want, "unique human openers per {period}");
            }
        }
        "time_to_first_open" => {
            let mut want: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            for d in ctx.deliveries().values() {
                if let (Some(o), Some(dl)) = (d.first_open, d.delivered_at.filter(|t| ctx.in_time(*t))) {
                    want.entry(d.channel.clone()).or_default().push((o - dl) / 1000);
                }
            }
            let want: BTreeMap<String, [i64; 4]> = want
                .into_iter()
                .map(|(c, mut v)| {
                    v.sort();
                    (c, [v.len() as i64, quantile_exact(&v, 0.5), quantile_exact(&v, 0.9), *v.last().unwrap_or(&0)])
                })
                .collect();
            let got: BTreeMap<String, [i64; 4]> =
                ctx.run(sql, &[]).await.iter().map(|r| (text(&r["channel"]), ["opened", "p50_secs", "p90_secs", "max_secs"].map(|c| int(&r[c])))).collect();
            assert_eq!(got, want, "time to first open (count, p50, p90, max)");
            assert!(!ctx.full || want.values().any(|w| w[1] != w[3]), "the times differ");
        }
        "delivery_latency_by_day" => {
            // send (first sent, else queued) in the window -> first delivery, per UTC send day
            // and channel; a delivery first known before the window (queued) and sent in it counts
            let mut want: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
            for d in ctx.deliveries().values() {
                let Some(sent) = d.first_sent.or(d.first_queued).filter(|t| ctx.in_time(*t)) else { continue };
                if let Some(dl) = d.delivered_at.filter(|dl| *dl >= sent) {
                    want.entry((utc_day(sent), d.channel.clone())).or_default().push(dl - sent);
                }
            }
            let want: BTreeMap<(String, String), [i64; 3]> = want
                .into_iter()
                .map(|(k, mut v)| {
                    v.sort();
                    (k, [v.len() as i64, quantile_exact(&v, 0.5), quantile_exact(&v, 0.9)])
                })
                .collect();
            let got: BTreeMap<(String, String), [i64; 3]> =
                ctx.run(sql, &[]).await.iter().map(|r| ((text(&r["day"]), text(&r["channel"])), ["delivered", "p50_ms", "p90_ms"].map(|c| int(&r[c])))).collect();
            assert_eq!(got, want, "delivery latency by day (count, p50, p90)");
            assert!(!ctx.full || want.len() >= 3, "several days and channels");
        }
        "sender_health_over_time" => {
            type Key = (String, String, String, String);
            let mut want: BTreeMap<Key, [BTreeSet<String>; 3]> = BTreeMap::new();
            for e in ctx.events.iter().filter(|e| e.channel == schemas::Channel::Email && ctx.in_time(e.occurred_at)) {
                let domain = e.metadata.get("from_domain").cloned().unwrap_or_default();
                let account = e.metadata.get("sending_account").cloned().unwrap_or_default();
                let w = want.entry((utc_day(e.occurred_at), e.provider.clone(), domain, account)).or_default();
                use EventType::*;
                if matches!(e.event_type, Sent | Delivered | Bounced | Complained | Opened | Clicked) {
                    w[0].insert(e.delivery_key.clone());
                }
                if e.event_type == Bounced && e.bounce_class == Some(BounceClass::Hard) {
                    w[1].insert(e.delivery_key.clone());
                }
                if e.event_type == Complained {
                    w[2].insert(e.delivery_key.clone());
                }
            }
            let want: BTreeMap<Key, [i64; 3]> = want.into_iter().map(|(k, s)| (k, s.map(|s| s.len() as i64))).collect();
            let rows = ctx.run(sql, &[]).await;
            let got: BTreeMap<Key, [i64; 3]> = rows
                .iter()
                .map(|r| {
                    let k = (text(&r["day"]), text(&r["provider"]), text(&r["sending_domain"]), text(&r["sending_account"]));
                    (k, ["sent", "hard_bounces", "complaints"].map(|c| int(&r[c])))
                })
                .collect();
            assert_eq!(got, want, "per day and sender: sent, hard bounces, complaints");
            for r in &rows {
                let sent = int(&r["sent"]).max(1) as f64;
                assert!((float(&r["bounce_rate"]) - int(&r["hard_bounces"]) as f64 / sent).abs() < 1e-4, "{r}");
                assert!((float(&r["complaint_rate"]) - int(&r["complaints"]) as f64 / sent).abs() < 1e-4, "{r}");
            }
        }
        "sender_flags" => {
            // the monitor's rule over the whole stream (window 7 days, min MIN_SENT sent)
            let senders = sender_counts(ctx.s);
            let flagged_truth = expected_flagged(ctx.s);
            assert!(!flagged_truth.is_empty() && flagged_truth.len() < senders.len(), "the stream has flagged and healthy senders: {flagged_truth:?}");
            // the monitor evaluates every second: wait for its verdict on the complete stream
            let rows = wait_until("sender flags match the truth", Duration::from_secs(90), || async {
                let rows = ctx.run(sql, &[]).await;
                let flagged: BTreeSet<(String, String, String)> = rows
                    .iter()
                    .filter(|r| int(&r["flagged"]) == 1)
                    .map(|r| (text(&r["provider"]), text(&r["sending_domain"]), text(&r["sending_account"])))
                    .collect();
                (flagged == flagged_truth).then_some(rows)
            })
            .await;
            for r in &rows {
                let k = (text(&r["provider"]), text(&r["sending_domain"]), text(&r["sending_account"]));
                let [s, h, c] = &senders[&k];
                let (sent, hard, compl) = (int(&r["sent"]), int(&r["hard_bounces"]), int(&r["complaints"]));
                // the counts are those of the evaluation that changed the flag: at most the final ones
                assert!(sent <= s.len() as i64 && hard <= h.len() as i64 && compl <= c.len() as i64, "{r}");
                let over = hard as f64 > 0.03 * sent as f64 || compl as f64 > 0.001 * sent as f64;
                assert_eq!(int(&r["flagged"]) == 1, over && sent >= MIN_SENT as i64, "the row's counts explain its flag: {r}");
            }
        }
        "daily_delivery_rate_by_provider" => {
            let mut want: BTreeMap<(String, String), [i64; 2]> = BTreeMap::new();
            for e in ctx.events {
                let i = match e.event_type {
                    EventType::Sent => 0,
                    EventType::Delivered => 1,
                    _ => continue,
                };
                if ctx.in_days(&utc_day(e.occurred_at)) {
                    want.entry((utc_day(e.occurred_at), e.provider.clone())).or_default()[i] += 1;
                }
            }
            let rows = ctx.run(sql, &[]).await;
            let got: BTreeMap<(String, String), [i64; 2]> = rows.iter().map(|r| ((text(&r["day"]), text(&r["provider"])), [int(&r["sent"]), int(&r["delivered"])])).collect();
            assert_eq!(got, want, "sent and delivered per day and provider");
            for r in &rows {
                let sent = int(&r["sent"]);
                if sent == 0 {
                    assert!(r["delivery_rate"].is_null(), "{r}");
                } else {
                    assert!((float(&r["delivery_rate"]) - int(&r["delivered"]) as f64 / sent as f64).abs() < 1e-4, "{r}");
                }
            }
            assert!(!ctx.full || want.keys().map(|k| &k.1).collect::<BTreeSet<_>>().len() == 3, "three providers");
        }
        "complaints_by_template" => {
            let attr = attribution(ctx.s);
            let mut want: BTreeMap<String, [i64; 2]> = BTreeMap::new();
            for e in ctx.events {
                let i = match e.event_type {
                    EventType::Delivered => 0,
                    EventType::Complained => 1,
                    _ => continue,
                };
                if !ctx.in_days(&utc_day(e.occurred_at)) {
                    continue;
                }
                let t = attr.get(&e.delivery_key).map(|a| a.2.clone()).unwrap_or_default();
                want.entry(t).or_default()[i] += 1;
            }
            want.retain(|_, w| w[1] != 0);
            let rows = ctx.run(sql, &[]).await;
            let got: BTreeMap<String, [i64; 2]> = rows.iter().map(|r| (text(&r["template"]), [int(&r["delivered"]), int(&r["complaints"])])).collect();
            assert_eq!(got, want, "delivered and complaints per template");
            for r in &rows {
                assert!((float(&r["complaint_rate"]) - int(&r["complaints"]) as f64 / int(&r["delivered"]).max(1) as f64).abs() < 1e-6, "{r}");
            }
            let order: Vec<i64> = rows.iter().map(|r| int(&r["complaints"])).collect();
            assert!(order.windows(2).all(|w| w[0] >= w[1]) && (!ctx.full || want.len() >= 3), "most complaints first: {order:?}");
        }
        "suppression_list_growth" => {
            let mut added: BTreeMap<(String, String), i64> = BTreeMap::new();
            for s in expected_suppressions(ctx.s).values() {
                *added.entry((utc_day(s.occurred_at), s.reason.to_string())).or_default() += 1;
            }
            let mut running: BTreeMap<String, i64> = BTreeMap::new();
            let want: Vec<(String, String, i64, i64)> = added
                .into_iter()
                .map(|((day, reason), n)| {
                    let t = running.entry(reason.clone()).or_default();
                    *t += n;
                    (day, reason, n, *t)
                })
                .collect();
            let got: Vec<(String, String, i64, i64)> =
                ctx.run(sql, &[]).await.iter().map(|r| (text(&r["day"]), text(&r["reason"]), int(&r["added"]), int(&r["total"]))).collect();
            assert_eq!(got, want, "suppressions added per day and reason, running total");
            assert_eq!(running.len(), 3, "complaints, hard bounces and unsubscribes: {running:?}");
        }
        "top_clicked_urls" => {
            let mut want: BTreeMap<String, (i64, BTreeSet<String>)> = BTreeMap::new();
            for e in ctx.events.iter().filter(|e| e.event_type == EventType::Clicked && ctx.human(e) && ctx.in_time(e.occurred_at)) {
                if let Some(url) = &e.click_url {
                    let w = want.entry(url.clone()).or_default();
                    w.0 += 1;
                    w.1.insert(e.recipient.to_ascii_lowercase());
                }
            }
            let mut want: Vec<(String, i64, i64)> = want.into_iter().map(|(u, (n, s))| (u, n, s.len() as i64)).collect();
            want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            want.truncate(20);
            let got: Vec<(String, i64, i64)> = ctx.run(sql, &[]).await.iter().map(|r| (text(&r["url"]), int(&r["clicks"]), int(&r["clickers"]))).collect();
            assert_eq!(got, want, "clicks and clickers per URL, most clicked first");
            assert!(!ctx.full || want.len() == analysts::URLS.len(), "every URL clicked");
        }
        "events_per_day_by_type" => {
            for period in ["day".to_string(), format!("day:{ZONE}")] {
                let mut want: BTreeMap<(String, String), i64> = BTreeMap::new();
                for e in ctx.events.iter().filter(|e| ctx.in_days(&local_day(e.occurred_at, &period))) {
                    *want.entry((local_day(e.occurred_at, &period), e.event_type.as_str().to_string())).or_default() += 1;
                }
                let got: BTreeMap<(String, String), i64> =
                    ctx.run(sql, &[("period", &period)]).await.iter().map(|r| ((text(&r["day"]), text(&r["event_type"])), int(&r["events"]))).collect();
                assert_eq!(got, want, "events per {period} and type");
            }
        }
        "machine_opens_by_reason" => {
            let mut want: BTreeMap<String, i64> = BTreeMap::new();
            for e in ctx.events.iter().filter(|e| e.event_type == EventType::Opened && ctx.in_days(&utc_day(e.occurred_at))) {
                *want.entry(ctx.machine[&e.event_id].to_string()).or_default() += 1;
            }
            let got: BTreeMap<String, i64> = ctx.run(sql, &[]).await.iter().map(|r| (text(&r["machine"]), int(&r["opens"]))).collect();
            assert_eq!(got, want, "opens by machine reason");
            assert!(!ctx.full || want.len() == 3, "people, scanners and Apple's proxy: {want:?}");
        }
        "most_engaged_recipients" => {
            let mut per: BTreeMap<String, [i64; 4]> = BTreeMap::new();
            for e in ctx.events {
                let w = per.entry(e.recipient.clone()).or_default();
                let human = ctx.human(e);
                match e.event_type {
                    EventType::Opened | EventType::Read if human => w[0] += 1,
                    EventType::Opened | EventType::Read => w[1] += 1,
                    EventType::Clicked if human && !e.click_url.as_deref().unwrap_or("").to_ascii_lowercase().contains("unsubscribe") => w[2] += 1,
                    EventType::Replied => w[3] += 1,
                    _ => {}
                }
            }
            let mut want: Vec<(String, [i64; 4], i64)> = per
                .into_iter()
                .map(|(r, [o, m, c, rep])| {
                    let score = o * 5 + if o >= 3 { 10 } else { 0 } + c * 15 + rep * 30;
                    (r, [o, m, c, rep], score)
                })
                .filter(|w| w.2 > 0)
                .collect();
            want.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
            want.truncate(20);
            let got: Vec<(String, [i64; 4], i64)> = ctx
                .run(sql, &[])
                .await
                .iter()
                .map(|r| (text(&r["recipient"]), ["human_opens", "machine_opens", "human_clicks", "replies"].map(|c| int(&r[c])), int(&r["score"])))
                .collect();
            assert_eq!(got, want, "most engaged recipients (opens, machine opens, clicks, replies; score)");
        }
        other => panic!("docs/analysts.md query `{other}` has no check in tests/tests/analysts_queries.rs"),
    }
}

#[test]
fn every_query_in_the_guide_has_a_check_and_parameters() {
    let queries = doc_queries();
    let names: Vec<&str> = queries.iter().map(|q| q.name.as_str()).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "query names are unique: {names:?}");
    assert!(names.len() >= 10, "at least ten ready queries");
    for n in &names {
        assert!(CHECKED.contains(n), "docs/analysts.md query `{n}` has no check in tests/tests/analysts_queries.rs");
    }
    for c in CHECKED {
        assert!(unique.contains(c), "check `{c}` has no query in docs/analysts.md");
    }
    for q in &queries {
        assert!(placeholders(&q.sql).contains("tenant"), "query `{}` filters by {{tenant:String}}", q.name);
        assert!(!q.sql.contains("'acme'") && !q.sql.contains("'demo'"), "query `{}`: parameters, not literals", q.name);
        assert_eq!(reading_rule_broken(&q.sql), None, "query `{}` reads a table as the guide says not to", q.name);
    }
}

/// The guide describes every table, view and column of a migrated database: each table has a
/// `### ` section naming it (internal ones may share one), and that section names each column.
#[tokio::test(flavor = "multi_thread")]
async fn the_guide_describes_every_table_and_column() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/analysts.md")).expect("docs/analysts.md");
    let sections: Vec<&str> = text.split("\n### ").skip(1).collect();
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "analysts-columns").await;
    let rows = run_sql(&stack.clickhouse_url, &p.database, "SELECT table, name FROM system.columns WHERE database = currentDatabase() ORDER BY table, position", &[]).await;
    let tables = run_sql(&stack.clickhouse_url, &p.database, "SELECT name FROM system.tables WHERE database = currentDatabase()", &[]).await;
    assert!(tables.len() >= 12, "a migrated database: {tables:?}");
    for t in &tables {
        let table = t["name"].as_str().expect("name");
        let named = format!("`{table}`");
        let section = sections
            .iter()
            .find(|s| s.lines().next().unwrap_or_default().contains(&named))
            .or_else(|| sections.iter().find(|s| s.starts_with("Internal tables") && s.contains(&named)));
        let Some(section) = section else { panic!("docs/analysts.md has no section for table {table}") };
        for r in rows.iter().filter(|r| r["table"] == table) {
            let column = r["name"].as_str().expect("column");
            assert!(section.contains(&format!("`{column}`")), "docs/analysts.md, section of `{table}`: column `{column}` is not described");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_query_in_the_guide_answers_the_truth() {
    let queries = doc_queries();
    let stack = Stack::from_env();
    let (p, acme, _beta) = feed(&stack, "analysts", 500).await;
    let events: Vec<Event> = acme.distinct().into_values().cloned().collect();
    let machine = machine_of(&acme);
    let now = chrono::Utc::now();
    let today = now.date_naive();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
    // a window holding the whole five-day stream, then one holding only its last two days
    // (the range filters must cut where the truth does)
    for days in [30, 2] {
        let (from, to) = (now - chrono::Duration::days(days), now + chrono::Duration::days(1));
        let (from_day, to_day) = ((today - chrono::Duration::days(days)).to_string(), (today + chrono::Duration::days(1)).to_string());
        let params: BTreeMap<String, String> = [
            ("tenant", "acme".to_string()),
            ("from", fmt(from)),
            ("to", fmt(to)),
            ("from_day", from_day.clone()),
            ("to_day", to_day.clone()),
            ("period", "day".to_string()),
            ("limit", "20".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let ctx = Ctx { p: &p, s: &acme, events: &events, machine: &machine, params, from_ms: from.timestamp_millis(), to_ms: to.timestamp_millis(), from_day, to_day, full: days == 30 };
        if days == 2 {
            assert!(events.iter().any(|e| !ctx.in_time(e.occurred_at)), "part of the stream is outside the short window");
        }
        for q in &queries {
            check(&ctx, q).await;
            eprintln!("query {} matches the truth ({days}-day window)", q.name);
        }
    }
}
