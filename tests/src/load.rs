//! An open-loop load on the whole pipeline (issue 14, goal 3): webhooks posted to ingest at a
//! fixed event rate whatever the answers, and, per event, the time from ingest receiving it to
//! its row being written in ClickHouse (`events.inserted_at - events.received_at`, migration 11).
//!
//! The traffic is unique deliveries (nothing deduplicates away), each reported the way its
//! provider reports it:
//! * **SES through SNS** (the dominant share): one notification per event (delivery or hard
//!   bounce, then an open for a third), a fresh SNS `MessageId` each (the report id);
//! * **SendGrid**: its Event Webhook's JSON arrays, up to `sendgrid_batch` events a POST, signed
//!   per POST (ECDSA, its signature carries a timestamp);
//! * **the sender's own send records** (API key), batched as senders send them.
//!
//! Bodies come from the providers' documented fixtures (`ses/fixtures/event_*.json`, the
//! SendGrid Event Webhook fields of `sendgrid/fixtures`), built once as templates; a request
//! only substitutes its ids, so the client spends its CPU on posting, not on building.
//! SNS signatures are not recomputed: the demo tenant pins the SNS topic and does not check
//! signatures (the samples are signed with a test key no running ingest trusts); the edge's
//! signature cost is measured by `ingest-bench` instead.

use crate::samples;
use schemas::{ProviderId, Route};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to post, and how fast.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ingest_url: String,
    pub tenant: String,
    /// Every message id of this run starts with it (`ld-<run>-`), so its rows can be found.
    pub run: String,
    /// Events per second offered (open loop).
    pub rate: f64,
    pub seconds: f64,
    /// Requests in flight at most; a request that finds them all busy waits and is counted late.
    pub max_in_flight: usize,
    pub sendgrid_batch: usize,
    pub records_batch: usize,
}

/// One POST and the events it carries.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// SendGrid signs at each attempt (its signatures expire).
    pub sign_sendgrid: bool,
    pub events: usize,
    pub provider: ProviderId,
}

/// SES-through-SNS notification templates with placeholders for the ids.
struct SesTemplates {
    delivery: String,
    bounce: String,
    open: String,
    sns_id: String,
}

const MSG: &str = "@@MESSAGE_ID@@";
const RCPT: &str = "placeholder-recipient@load.example";

impl SesTemplates {
    fn new() -> SesTemplates {
        let at = chrono::Utc::now() - chrono::Duration::minutes(30);
        let one = |f: &str| String::from_utf8(crate::ses::body_at(f, MSG, Some(&[RCPT]), at)).expect("UTF-8 JSON");
        let delivery = one("event_delivery.json");
        let sns_id = serde_json::from_str::<serde_json::Value>(&delivery).expect("SNS JSON")["MessageId"].as_str().expect("MessageId").to_string();
        // every template gets the same SNS MessageId, replaced per request
        let same_id = |s: String| {
            let v: serde_json::Value = serde_json::from_str(&s).expect("SNS JSON");
            s.replace(v["MessageId"].as_str().expect("MessageId"), &sns_id)
        };
        SesTemplates { delivery, bounce: same_id(one("event_bounce_permanent.json")), open: same_id(one("event_open.json")), sns_id }
    }

    fn request(&self, tenant: &str, template: &str, message_id: &str, recipient: &str) -> Request {
        let sns_id = uuid::Uuid::new_v4().to_string();
        let body = template.replace(MSG, message_id).replace(RCPT, recipient).replace(&self.sns_id, &sns_id);
        let headers = vec![
            ("content-type".into(), "text/plain; charset=UTF-8".into()),
            ("x-amz-sns-message-type".into(), "Notification".into()),
            ("x-amz-sns-message-id".into(), sns_id),
        ];
        Request { path: Route::Webhook.path(ProviderId::Ses, tenant), headers, body: body.into_bytes(), sign_sendgrid: false, events: 1, provider: ProviderId::Ses }
    }
}

/// Events a plan's requests carry, by (provider, event type): the brute-force truth.
pub type Truth = std::collections::BTreeMap<(&'static str, &'static str), usize>;

/// The requests of a plan, in posting order, and the number of events they carry.
pub fn requests(plan: &Plan) -> (Vec<Request>, usize) {
    let (reqs, truth) = requests_with_truth(plan);
    (reqs, truth.values().sum())
}

/// As [`requests`], with the events by (provider, event type).
pub fn requests_with_truth(plan: &Plan) -> (Vec<Request>, Truth) {
    let mut truth = Truth::new();
    let want = (plan.rate * plan.seconds).ceil() as usize;
    let ses = SesTemplates::new();
    let tenant = plan.tenant.as_str();
    let api_headers = vec![("content-type".to_string(), "application/json".to_string()), ("x-api-key".to_string(), samples::api_key(tenant))];
    let sent_at = (chrono::Utc::now() - chrono::Duration::minutes(31)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let sg_time = (chrono::Utc::now() - chrono::Duration::minutes(29)).timestamp();
    let mut out = Vec::new();
    let mut events = 0;
    let mut count = |provider: &'static str, ty: &'static str| *truth.entry((provider, ty)).or_default() += 1;
    let mut sendgrid: Vec<serde_json::Value> = Vec::new();
    let mut records: Vec<serde_json::Value> = Vec::new();
    // the batched routes: each request is its template with a JSON array of items as its body
    let sendgrid_batch = Request { path: Route::Webhook.path(ProviderId::Sendgrid, tenant), headers: Vec::new(), body: Vec::new(), sign_sendgrid: true, events: 0, provider: ProviderId::Sendgrid };
    let records_batch = Request { path: Route::Sends.path(ProviderId::Sender, tenant), headers: api_headers, body: Vec::new(), sign_sendgrid: false, events: 0, provider: ProviderId::Sender };
    let mut i = 0usize;
    while events < want {
        let message_id = format!("ld-{}-{i}", plan.run);
        let recipient = format!("r{i}@load.example");
        // seven in ten through SES, three through SendGrid; one in ten bounces; a third opened;
        // half have the sender's send record
        let via_ses = i % 10 < 7;
        let bounce = i % 10 == 3;
        let opened = !bounce && i.is_multiple_of(3);
        if i.is_multiple_of(2) {
            records.push(json!({"channel": "email", "provider": if via_ses { "ses" } else { "sendgrid" }, "provider_message_id": message_id,
                                "recipient": recipient, "sent_at": sent_at, "broadcast": format!("load-{}", i % 5)}));
            events += 1;
            count(if via_ses { "ses" } else { "sendgrid" }, "queued");
            if records.len() >= plan.records_batch {
                flush(&mut records, &records_batch, &mut out);
            }
        }
        if via_ses {
            out.push(ses.request(tenant, if bounce { &ses.bounce } else { &ses.delivery }, &message_id, &recipient));
            events += 1;
            count("ses", if bounce { "bounced" } else { "delivered" });
            if opened {
                out.push(ses.request(tenant, &ses.open, &message_id, &recipient));
                events += 1;
                count("ses", "opened");
            }
        } else {
            sendgrid.push(if bounce {
                json!({"email": recipient, "timestamp": sg_time, "event": "bounce", "type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 unknown recipient",
                       "sg_event_id": format!("{message_id}-b"), "sg_message_id": message_id})
            } else {
                json!({"email": recipient, "timestamp": sg_time, "event": "delivered", "response": "250 OK", "sg_event_id": format!("{message_id}-d"), "sg_message_id": message_id})
            });
            events += 1;
            count("sendgrid", if bounce { "bounced" } else { "delivered" });
            if opened {
                count("sendgrid", "opened");
                sendgrid.push(json!({"email": recipient, "timestamp": sg_time + 60, "event": "open", "useragent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "ip": "203.0.113.7",
                                      "sg_event_id": format!("{message_id}-o"), "sg_message_id": message_id}));
                events += 1;
            }
            if sendgrid.len() >= plan.sendgrid_batch {
                flush(&mut sendgrid, &sendgrid_batch, &mut out);
            }
        }
        i += 1;
    }
    flush(&mut sendgrid, &sendgrid_batch, &mut out);
    flush(&mut records, &records_batch, &mut out);
    (out, truth)
}

/// Appends `template` carrying `items` as one JSON array, if there are any, and empties them.
fn flush(items: &mut Vec<serde_json::Value>, template: &Request, out: &mut Vec<Request>) {
    if !items.is_empty() {
        out.push(Request { body: serde_json::to_vec(&items).expect("JSON"), events: items.len(), ..template.clone() });
        items.clear();
    }
}

/// What the client saw.
#[derive(Debug, Default)]
pub struct Posted {
    pub requests: usize,
    pub events: usize,
    /// Answered 2xx at the first attempt / after retries / never.
    pub accepted_first: usize,
    pub retried: usize,
    pub refused: usize,
    /// Events of the requests answered 2xx: what ClickHouse must hold.
    pub accepted_events: usize,
    /// Requests that found every slot busy when their time came (the client or ingest fell behind).
    pub late: usize,
    /// From each request's scheduled time to its 2xx (queueing included), ms, sorted.
    pub latencies_ms: Vec<f64>,
    pub elapsed: Duration,
}

impl Posted {
    pub fn pct(&self, p: f64) -> f64 {
        if self.latencies_ms.is_empty() {
            return 0.0;
        }
        self.latencies_ms[((self.latencies_ms.len() as f64 - 1.0) * p).round() as usize]
    }
}

/// Attempts per request before the client gives up on it (its events are then not expected).
const ATTEMPTS: u32 = 15;

/// Posts `reqs` open-loop: request `n` is due when the events before it would have been offered
/// at `plan.rate`, whatever happened to the earlier ones. A non-2xx answer is retried (as the
/// providers do) with a backoff from 200 ms to 5 s, up to `ATTEMPTS` times.
pub async fn post(plan: &Plan, reqs: Vec<Request>) -> Posted {
    let client = reqwest::Client::builder().pool_max_idle_per_host(plan.max_in_flight).build().expect("HTTP client");
    let slots = Arc::new(tokio::sync::Semaphore::new(plan.max_in_flight));
    let late = Arc::new(AtomicUsize::new(0));
    let start = tokio::time::Instant::now();
    let mut offered = 0usize;
    let mut tasks = Vec::with_capacity(reqs.len());
    let n = reqs.len();
    let events: usize = reqs.iter().map(|r| r.events).sum();
    for r in reqs {
        let due = start + Duration::from_secs_f64(offered as f64 / plan.rate);
        offered += r.events;
        tokio::time::sleep_until(due).await;
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                late.fetch_add(1, Ordering::Relaxed);
                slots.clone().acquire_owned().await.expect("semaphore open")
            }
        };
        let (client, url, tenant) = (client.clone(), plan.ingest_url.clone(), plan.tenant.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            // as the providers do: again until accepted, backing off (SNS: up to hours)
            let mut backoff = Duration::from_millis(200);
            for attempt in 0..ATTEMPTS {
                let mut req = client.post(format!("{url}{}", r.path)).timeout(Duration::from_secs(30)).body(r.body.clone());
                let signed = if r.sign_sendgrid { samples::sendgrid_headers(&tenant, &r.body) } else { Vec::new() };
                for (k, v) in r.headers.iter().chain(&signed) {
                    req = req.header(k, v);
                }
                if let Ok(resp) = req.send().await {
                    if resp.status().is_success() {
                        let ms = due.elapsed().as_secs_f64() * 1000.0;
                        return (attempt, Some(ms), r.events);
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            (ATTEMPTS, None, r.events)
        }));
    }
    let mut p = Posted { requests: n, events, ..Default::default() };
    for t in tasks {
        match t.await.expect("a request task") {
            (attempt, Some(ms), events) => {
                if attempt == 0 {
                    p.accepted_first += 1;
                } else {
                    p.retried += 1;
                }
                p.accepted_events += events;
                p.latencies_ms.push(ms);
            }
            (_, None, _) => p.refused += 1,
        }
    }
    p.elapsed = start.elapsed();
    p.late = late.load(Ordering::Relaxed);
    p.latencies_ms.sort_by(f64::total_cmp);
    p
}

/// What ClickHouse holds of a run.
#[derive(Debug, Default, Clone)]
pub struct Landed {
    /// Distinct events of the run in `events`.
    pub events: u64,
    /// Rows (a replayed event can be a second row until a merge).
    pub rows: u64,
    /// Each event's freshness, its first row's `inserted_at` - its first `received_at`
    /// (when it became visible), quantiles, ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Events with a later row (a re-attribution rewrote it, or a replay): how many, and the
    /// latest such row's `inserted_at` - its event's `received_at`, ms. Not freshness: the
    /// event was visible since its first row.
    pub rewritten: u64,
    pub rewritten_max_ms: f64,
    /// From the first event received to the last row written, s.
    pub span_s: f64,
}

impl Landed {
    pub fn rate(&self) -> f64 {
        if self.span_s > 0.0 {
            self.events as f64 / self.span_s
        } else {
            0.0
        }
    }
}

/// Reads what ClickHouse holds of run `run` of `tenant`.
pub async fn landed(http: &reqwest::Client, clickhouse_url: &str, database: &str, tenant: &str, run: &str) -> anyhow::Result<Landed> {
    // per event: its first row (when it became visible) and its last (a re-attribution or a
    // replay writes the row again later, with the event's `received_at`: counted apart)
    let sql = format!(
        "SELECT count() AS n, sum(c) AS rows, quantilesExact(0.5, 0.99, 1)(first) AS q, \
           countIf(c > 1) AS rewritten, maxIf(last, c > 1) AS rewritten_max, \
           dateDiff('millisecond', min(r), max(i)) / 1000 AS span \
         FROM (SELECT event_id, count() AS c, min(received_at) AS r, max(inserted_at) AS i, \
                 dateDiff('millisecond', min(received_at), min(inserted_at)) AS first, \
                 dateDiff('millisecond', min(received_at), max(inserted_at)) AS last \
               FROM events WHERE {} GROUP BY event_id) FORMAT JSONEachRow",
        of_run(tenant, run)
    );
    let v: serde_json::Value = serde_json::from_str(&query(http, clickhouse_url, database, sql).await?)?;
    let num = |v: &serde_json::Value| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0.0);
    let q = v["q"].as_array().cloned().unwrap_or_default();
    let qi = |i: usize| q.get(i).map(num).unwrap_or(0.0);
    Ok(Landed {
        events: num(&v["n"]) as u64,
        rows: num(&v["rows"]) as u64,
        p50_ms: qi(0),
        p99_ms: qi(1),
        max_ms: qi(2),
        rewritten: num(&v["rewritten"]) as u64,
        rewritten_max_ms: num(&v["rewritten_max"]),
        span_s: num(&v["span"]),
    })
}

/// The rows of run `run` of `tenant` in `events`.
fn of_run(tenant: &str, run: &str) -> String {
    format!("tenant = '{tenant}' AND startsWith(provider_message_id, 'ld-{run}-')")
}

async fn query(http: &reqwest::Client, clickhouse_url: &str, database: &str, sql: String) -> anyhow::Result<String> {
    let resp = http.post(format!("{clickhouse_url}/?database={database}")).body(sql).send().await?;
    anyhow::ensure!(resp.status().is_success(), "ClickHouse: {}", resp.text().await?);
    Ok(resp.text().await?.trim().to_string())
}

/// Polls until every event of the run is in ClickHouse, or `timeout`; then reads the figures.
/// The poll only counts, so the quantiles are computed once, not every 500 ms against the
/// ClickHouse the pipeline is still writing to.
pub async fn wait_landed(clickhouse_url: &str, database: &str, tenant: &str, run: &str, expected: usize, timeout: Duration) -> anyhow::Result<Landed> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    let count = format!("SELECT uniqExact(event_id) FROM events WHERE {} FORMAT TabSeparated", of_run(tenant, run));
    loop {
        let n: usize = query(&http, clickhouse_url, database, count.clone()).await?.parse()?;
        if n >= expected || Instant::now() > deadline {
            return landed(&http, clickhouse_url, database, tenant, run).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
