//! The stream behind the analysts' queries (docs/analysts.md) and the Grafana panels
//! (deploy/grafana): the generator's stream ([`crate::generate::stream`]: shuffled order,
//! duplicates, send records after provider events, scanner and Apple-proxy opens, people
//! with two deliveries spelled in another case) spread over what analysts group by:
//! channels (a fifth of the people are SMS numbers of several country codes), providers
//! (SES, SendGrid, Twilio), recipient domains, templates and sequences on the send records,
//! sending domains and accounts (metadata, for sender health), click URLs, bounce reasons,
//! costs in two currencies, and opens spread over the hour after delivery.
//!
//! Every choice is a function of the delivery (or of the event and its delivery), so the
//! duplicates of an event stay identical, ids included. The truth the tests compare with is
//! computed from [`Stream::distinct`] of the result.

use crate::generate::{stream, Stream};
use crate::{wait_until, Pipeline, Stack};
use schemas::{BounceClass, Channel, Event, EventType, Money};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Country calling codes of the SMS recipients: one, two and three digits.
pub const COUNTRY_CODES: [&str; 7] = ["1", "44", "33", "353", "7", "852", "49"];
/// Recipient domains of the email recipients (the second delivery of a person upper-cases it).
pub const DOMAINS: [&str; 4] = ["example.com", "mail.example.org", "inbox.test", "corp.example.net"];
/// Template of a send record, by delivery.
pub const TEMPLATES: [&str; 4] = ["welcome", "newsletter", "promo", "receipt"];
/// Click URLs, by delivery.
pub const URLS: [&str; 3] = ["https://shop.example.com/sale", "https://shop.example.com/new?utm=mail", "https://blog.example.com/post"];
/// The sending domain of deliveries that bounced (most of them) or drew a complaint: a sender
/// the health monitor should flag; every other email delivery is sent from `news.example.com`.
pub const BULK_DOMAIN: &str = "bulk.example.com";
pub const NEWS_DOMAIN: &str = "news.example.com";

/// Sender health's `min_sent` in [`feed`]'s pipeline (senders with fewer sent are not judged).
pub const MIN_SENT: u64 = 40;

/// The reporting zone the analysts' pipeline runs with (`day:<zone>` periods).
pub const ZONE: &str = "America/New_York";

/// SMS price per message by country code, and its currency.
pub fn sms_price(cc: &str) -> (rust_decimal::Decimal, &'static str) {
    match cc {
        "1" => (rust_decimal::Decimal::new(79, 4), "USD"),
        "44" => (rust_decimal::Decimal::new(400, 4), "USD"),
        "33" => (rust_decimal::Decimal::new(715, 4), "EUR"),
        "353" => (rust_decimal::Decimal::new(650, 4), "EUR"),
        "7" => (rust_decimal::Decimal::new(1225, 4), "USD"),
        "852" => (rust_decimal::Decimal::new(480, 4), "USD"),
        _ => (rust_decimal::Decimal::new(820, 4), "EUR"),
    }
}

/// What one delivery of the generated stream becomes.
struct Plan {
    d: usize,
    sms: Option<&'static str>,
    recipient: String,
    provider: &'static str,
    sending_domain: &'static str,
}

fn delivery_index(msg: &str) -> usize {
    msg.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// `user7@example.com` / `User7@Example.COM` → (7, upper-cased).
fn person(rcpt: &str) -> (usize, bool) {
    let upper = rcpt.starts_with('U');
    let n = rcpt[4..].split('@').next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (n, upper)
}

/// The generator's stream of `deliveries` deliveries (seed `seed`), for `tenant`, spread as the module says.
pub fn analysts_stream(seed: u64, deliveries: usize, tenant: &str) -> Stream {
    let base = stream(seed, deliveries);
    // per delivery: (hard-bounced, drew a complaint); the bulk sender sends every complained
    // delivery and seven in eight hard-bounced ones
    let mut bad: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for e in &base.events {
        let b = bad.entry(e.provider_message_id.clone()).or_default();
        b.0 |= e.event_type == EventType::Bounced && e.bounce_class == Some(BounceClass::Hard);
        b.1 |= e.event_type == EventType::Complained;
    }
    let mut events = Vec::with_capacity(base.events.len());
    for e in base.events {
        let d = delivery_index(&e.provider_message_id);
        let (p, upper) = person(&e.recipient);
        let sms = (p % 5 == 4).then(|| COUNTRY_CODES[p % COUNTRY_CODES.len()]);
        let recipient = match sms {
            Some(cc) => format!("+{cc}{}", 200_000_000 + (p * 7919) % 700_000_000),
            None if upper => format!("User{p}@{}", DOMAINS[p % DOMAINS.len()].to_ascii_uppercase()),
            None => format!("user{p}@{}", DOMAINS[p % DOMAINS.len()]),
        };
        let provider = if sms.is_some() {
            "twilio"
        } else if d % 3 == 2 {
            "sendgrid"
        } else {
            "ses"
        };
        let (hard, complained) = bad.get(&e.provider_message_id).copied().unwrap_or_default();
        let sending_domain = if complained || (hard && !d.is_multiple_of(8)) { BULK_DOMAIN } else { NEWS_DOMAIN };
        let plan = Plan { d, sms, recipient, provider, sending_domain };
        if let Some(e) = reshape(e, &plan, tenant) {
            events.push(e);
        }
    }
    Stream { events }
}

/// One event under its delivery's plan; `None` for what an SMS cannot have (opens, clicks, complaints, deferrals).
fn reshape(mut e: Event, plan: &Plan, tenant: &str) -> Option<Event> {
    let d = plan.d;
    if plan.sms.is_some() {
        match e.event_type {
            EventType::Opened | EventType::Clicked | EventType::Complained | EventType::Deferred => return None,
            EventType::Bounced => {
                e.event_type = EventType::Failed;
                e.bounce_class = None;
                e.error_code = Some("30003".into());
                e.error_reason = Some("Unreachable destination handset".into());
            }
            _ => {}
        }
        e.channel = Channel::Sms;
    } else {
        e.metadata.insert("from_domain".into(), plan.sending_domain.into());
        e.metadata.insert("sending_account".into(), if plan.provider == "ses" { "111111111111".into() } else { "sg-main".into() });
        if e.event_type == EventType::Bounced {
            let (code, reason) = match (e.bounce_class, d % 2) {
                (Some(BounceClass::Soft), _) => ("4.2.2", "452 4.2.2 mailbox full"),
                (_, 0) => ("5.1.1", "550 5.1.1 user unknown"),
                _ => ("5.7.1", "554 5.7.1 blocked by policy"),
            };
            e.error_code = Some(code.into());
            e.error_reason = Some(reason.into());
        }
        if e.event_type == EventType::Clicked {
            e.click_url = Some(URLS[d % URLS.len()].into());
        }
    }
    // opens and what follows them: spread over the hour after delivery (whole seconds, so
    // time to first open is exact; at least a minute after delivery, so never `too_fast`)
    if matches!(e.event_type, EventType::Opened | EventType::Clicked | EventType::Complained | EventType::Unsubscribed | EventType::Deferred) {
        e.occurred_at += ((d * 7919) % 3000) as i64 * 1000;
        e.received_at = e.occurred_at;
    }
    if e.provider_event_name == "send_record" {
        e.template_key = Some(TEMPLATES[d % TEMPLATES.len()].into());
        e.sequence_id = d.is_multiple_of(5).then(|| "onboarding".to_string());
        e.cost = match plan.sms {
            Some(cc) => {
                let (amount, unit) = sms_price(cc);
                Some(Money::new(amount, unit))
            }
            None if plan.provider == "sendgrid" => None,
            None => e.cost,
        };
    } else {
        e.provider_event_name = e.event_type.as_str().into();
    }
    e.tenant = tenant.into();
    e.provider = plan.provider.into();
    e.recipient = plan.recipient.clone();
    let pe = e.provider_event_id.clone().unwrap_or_default();
    e.event_id = schemas::ids::event_id(tenant, plan.provider, schemas::ids::EventSource::ProviderEventId(&pe), e.event_type.as_str(), &e.recipient);
    e.delivery_key = schemas::ids::delivery_key(tenant, plan.provider, &e.provider_message_id, &e.recipient);
    Some(e)
}

/// The pipeline the analysts' tests read: reporting zone [`ZONE`], sender health evaluated every
/// second over 7 days (min [`MIN_SENT`] sent), fed with tenant `acme`'s stream (`deliveries`) and tenant
/// `beta`'s (a third as many, another seed: every query must filter by tenant). Returns once
/// every event, delivery, counter and suppression of both streams is applied.
pub async fn feed(stack: &Stack, name: &str, deliveries: usize) -> (Pipeline, Stream, Stream) {
    let env = vec![
        ("SENDTRACE_REPORTING_TIME_ZONE".to_string(), ZONE.to_string()),
        ("SENDTRACE_HEALTH__INTERVAL_SECS".to_string(), "1".to_string()),
        ("SENDTRACE_HEALTH__WINDOW_HOURS".to_string(), "168".to_string()),
        ("SENDTRACE_HEALTH__MIN_SENT".to_string(), MIN_SENT.to_string()),
    ];
    let mut p = Pipeline::with_aggregator_env(stack, name, env).await;
    let topic = format!("{}.health", p.events_topic);
    p.aggregator_env.push(("SENDTRACE_HEALTH__TOPIC".into(), topic));
    p.start_aggregator().await;
    let acme = analysts_stream(71, deliveries, "acme");
    let beta = analysts_stream(72, deliveries / 3, "beta");
    acme.produce(&stack.brokers, &p.events_topic, 0..acme.events.len()).await;
    beta.produce(&stack.brokers, &p.events_topic, 0..beta.events.len()).await;
    let events = (acme.distinct().len() + beta.distinct().len()) as u64;
    let deliveries = (acme.expected_status().len() + beta.expected_status().len()) as u64;
    let suppressed = (expected_suppressions(&acme).len() + expected_suppressions(&beta).len()) as u64;
    wait_until("both streams applied", Duration::from_secs(300), || async {
        let applied = p.number("SELECT count() FROM events FINAL").await == events
            && p.number("SELECT count() FROM deliveries FINAL").await == deliveries
            && p.number("SELECT sum(events) FROM counters WHERE period = 'day'").await == events
            && p.number("SELECT toUInt64(sum(events)) FROM attributed_counters WHERE period = 'day'").await == events
            && p.number("SELECT count() FROM suppressions FINAL").await == suppressed;
        applied.then_some(())
    })
    .await;
    (p, acme, beta)
}

/// A suppression entry as the aggregator keeps it: the strongest (severity, then latest) per address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Suppression {
    pub severity: u8,
    pub occurred_at: i64,
    pub reason: &'static str,
}

/// Brute-force suppression list of a stream (complaint 5, hard bounce 4, unsubscribe 3; the
/// stream has at most two soft bounces per address, below the soft-bounce threshold).
pub fn expected_suppressions(s: &Stream) -> BTreeMap<String, Suppression> {
    let mut m: BTreeMap<String, Suppression> = BTreeMap::new();
    for e in s.distinct().values() {
        let (severity, reason) = match (e.event_type, e.bounce_class) {
            (EventType::Complained, _) => (5, "complaint"),
            (EventType::Bounced, Some(BounceClass::Hard)) => (4, "hard_bounce"),
            (EventType::Unsubscribed, _) => (3, "unsubscribe"),
            _ => continue,
        };
        let cand = Suppression { severity, occurred_at: e.occurred_at, reason };
        let cur = m.entry(e.recipient.to_ascii_lowercase()).or_insert_with(|| cand.clone());
        if cand > *cur {
            *cur = cand;
        }
    }
    m
}

/// Machine reason ('' for people) of each distinct event ([`Stream::machine_reasons`]).
pub fn machine_of(s: &Stream) -> BTreeMap<String, &'static str> {
    s.machine_reasons()
}

/// The send record's attribution of each delivery: (broadcast, sequence, template), '' when none.
pub fn attribution(s: &Stream) -> BTreeMap<String, (String, String, String)> {
    s.distinct()
        .values()
        .filter(|e| e.provider_event_name == "send_record")
        .map(|e| {
            let f = |v: &Option<String>| v.clone().unwrap_or_default();
            (e.delivery_key.clone(), (f(&e.broadcast_id), f(&e.sequence_id), f(&e.template_key)))
        })
        .collect()
}

/// UTC day of a time, `YYYY-MM-DD`.
pub fn utc_day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().date_naive().to_string()
}

/// Runs `sql` on the ClickHouse HTTP interface in `database` with query parameters
/// (`param_<name>`) and `readonly = 2`, the profile of the read-only user analysts and Grafana
/// use (deploy/grafana/clickhouse-reader.xml: no writes, settings allowed); rows as JSON, 64-bit
/// integers as numbers, decimals as exact strings. Panics with ClickHouse's message when the query fails.
pub async fn run_sql(clickhouse_url: &str, database: &str, sql: &str, params: &[(String, String)]) -> Vec<serde_json::Value> {
    let mut pairs: Vec<(String, String)> = vec![
        ("database".into(), database.into()),
        ("readonly".into(), "2".into()),
        ("default_format".into(), "JSONEachRow".into()),
        ("output_format_json_quote_64bit_integers".into(), "0".into()),
        ("output_format_json_quote_decimals".into(), "1".into()),
    ];
    pairs.extend(params.iter().map(|(k, v)| (format!("param_{k}"), v.clone())));
    let url = format!("{clickhouse_url}/?{}", serde_urlencoded::to_string(&pairs).expect("params"));
    let resp = reqwest::Client::new().post(url).body(sql.to_string()).send().await.expect("ClickHouse reachable");
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "query failed ({status}): {body}\n{sql}");
    body.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("JSON row")).collect()
}

/// A sender as the health monitor keys it: (provider, sending domain, sending account).
pub type Sender = (String, String, String);

/// Per email sender of a stream: the delivery keys counted as sent, hard-bounced and complained
/// (the monitor's definitions, `aggregator::store::sender_stats_sql`), over every event of the stream.
pub fn sender_counts(s: &Stream) -> BTreeMap<Sender, [BTreeSet<String>; 3]> {
    let mut m: BTreeMap<Sender, [BTreeSet<String>; 3]> = BTreeMap::new();
    for e in s.distinct().values().filter(|e| e.channel == Channel::Email) {
        let k = (e.provider.clone(), e.metadata.get("from_domain").cloned().unwrap_or_default(), e.metadata.get("sending_account").cloned().unwrap_or_default());
        let w = m.entry(k).or_default();
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
    m
}

/// The senders the monitor must end up flagging ([`feed`]'s settings: at least [`MIN_SENT`] sent,
/// hard bounces over 3 % or complaints over 0.1 % of sent).
pub fn expected_flagged(s: &Stream) -> BTreeSet<Sender> {
    sender_counts(s)
        .into_iter()
        .filter(|(_, [sent, hard, compl])| {
            let n = sent.len() as f64;
            sent.len() as u64 >= MIN_SENT && (hard.len() as f64 > 0.03 * n || compl.len() as f64 > 0.001 * n)
        })
        .map(|(k, _)| k)
        .collect()
}

/// How each table must be read (docs/analysts.md, "How to read each table"), checked on a query's
/// text: ReplacingMergeTree tables with `FINAL`, the summing counters with `sum`/`sumIf`, the
/// recipient sets with `uniqExactMerge`. Returns the first rule `sql` breaks.
pub fn reading_rule_broken(sql: &str) -> Option<String> {
    let words: Vec<&str> = sql.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if !w.eq_ignore_ascii_case("FROM") && !w.eq_ignore_ascii_case("JOIN") {
            continue;
        }
        let Some(table) = words.get(i + 1).map(|t| t.trim_end_matches([')', ';']).rsplit('.').next().unwrap_or_default()) else { continue };
        let next = words.get(i + 2).copied().unwrap_or_default();
        match table {
            "events" | "deliveries" | "delivery_order" | "delivery_latency" | "suppressions" | "suppression_changes" | "sender_health" if !next.eq_ignore_ascii_case("FINAL") => return Some(format!("`{table}` without FINAL")),
            "counters" | "attributed_counters" | "delivery_status_counts" | "funnels" | "funnel_recipients" | "funnel_statuses" if !sql.contains("sum(") && !sql.contains("sumIf(") => return Some(format!("`{table}` without sum()")),
            "event_times" if !sql.contains("max(") => return Some("`event_times` without max()".into()),
            "delivery_send_lag" if !sql.contains("max(") => return Some("`delivery_send_lag` without max()".into()),
            "unique_recipients" if !sql.contains("uniqExactMerge(") => return Some("`unique_recipients` without uniqExactMerge()".into()),
            _ => {}
        }
    }
    None
}
