//! The read API's exports, bounce reasons, latency, recipient feed, suppression changes and
//! live stream on the real stack.
//!
//! * `exports_bounces_latency_and_the_recipient_feed`: a generated stream (duplicates,
//!   shuffled, machine opens) with provider bounce codes goes through the aggregator; the
//!   CSV and NDJSON exports equal the JSON pages (and resume from any row's token); bounce
//!   classes and latency quantiles equal a brute-force computation over the generated truth
//!   (one delivery queued 20 days before its send, inside the range).
//! * `suppressions_by_hand_and_the_live_stream_through_ingest`: SES notifications posted to
//!   ingest; `/v1/stream` delivers an event posted after the subscription; a hard-bounced
//!   address removed through the API and hard-bounced again is suppressed again, with the
//!   three steps in its history and on the suppression topic; manual adds; scopes; tenants.

use e2e::generate::{stream, Stream};
use e2e::{wait_until, Pipeline, Stack};
use schemas::{EventType, Event};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const KEYS: &str = r#"
[tenants.acme.keys.ops]
key = "acme-key"
scopes = ["stats", "messages", "suppressions:write"]

[tenants.acme.keys.reader]
key = "acme-reader"
scopes = ["stats", "messages"]

[tenants.beta.keys.ops]
key = "beta-key"
scopes = ["stats", "messages", "suppressions:write"]
"#;

struct Api {
    url: String,
    client: reqwest::Client,
}

impl Api {
    async fn send(&self, method: reqwest::Method, key: &str, path: &str, accept: Option<&str>, body: Option<Value>) -> (u16, String) {
        let mut r = self.client.request(method, format!("{}{path}", self.url)).bearer_auth(key);
        if let Some(a) = accept {
            r = r.header("accept", a);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("api reachable");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let (s, t) = self.send(reqwest::Method::GET, key, path, None, None).await;
        (s, serde_json::from_str(&t).unwrap_or(Value::Null))
    }

    async fn ok(&self, key: &str, path: &str) -> Value {
        let (status, body) = self.get(key, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    async fn all_pages(&self, key: &str, path: &str, field: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &token {
                Some(t) => format!("{path}{sep}page_token={t}"),
                None => path.to_string(),
            };
            let body = self.ok(key, &url).await;
            out.extend(body[field].as_array().expect("items").iter().cloned());
            match body["next_page_token"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
            assert!(out.len() < 1_000_000, "pages end");
        }
        out
    }

    /// An export as NDJSON rows (each with its `resume_token`).
    async fn ndjson(&self, key: &str, path: &str) -> Vec<Value> {
        let (status, text) = self.send(reqwest::Method::GET, key, path, Some("application/x-ndjson"), None).await;
        assert_eq!(status, 200, "{path}: {text}");
        text.lines().map(|l| serde_json::from_str(l).expect("an NDJSON line")).collect()
    }

    /// An export as CSV: header and rows.
    async fn csv(&self, key: &str, path: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let (status, text) = self.send(reqwest::Method::GET, key, path, Some("text/csv"), None).await;
        assert_eq!(status, 200, "{path}: {text}");
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header = r.headers().expect("a CSV header").iter().map(str::to_string).collect();
        let rows = r.records().map(|rec| rec.expect("a CSV row").iter().map(str::to_string).collect()).collect();
        (header, rows)
    }
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("a number: {v}"))
}

fn without_token(mut v: Value) -> Value {
    v.as_object_mut().expect("an object").remove("resume_token").expect("every exported row has a resume_token");
    v
}

/// Exports equal the JSON pages: NDJSON row by row, CSV cell by cell; resuming from a row's
/// token gives exactly the rows after it.
async fn assert_exports(api: &Api, path: &str, field: &str) {
    let pages = api.all_pages("acme-key", &format!("{path}?page_size=17"), field).await;
    assert!(pages.len() > 40, "{path}: enough rows to span export chunks ({})", pages.len());
    let nd = api.ndjson("acme-key", path).await;
    let tokens: Vec<String> = nd.iter().map(|r| r["resume_token"].as_str().unwrap().to_string()).collect();
    let rows: Vec<Value> = nd.into_iter().map(without_token).collect();
    assert_eq!(rows, pages, "{path}: NDJSON export = the JSON pages");
    let (header, csv_rows) = api.csv("acme-key", path).await;
    assert_eq!(header.last().map(String::as_str), Some("resume_token"));
    assert_eq!(csv_rows.len(), pages.len(), "{path}: CSV rows");
    for (row, page) in csv_rows.iter().zip(&pages) {
        for (col, cell) in header.iter().zip(row) {
            if col == "resume_token" {
                continue;
            }
            let want = match &page[col] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(cell, &want, "{path}: CSV column {col}");
        }
    }
    let k = pages.len() / 3;
    let rest = api.ndjson("acme-key", &format!("{path}?page_token={}", tokens[k])).await;
    assert_eq!(rest.into_iter().map(without_token).collect::<Vec<_>>(), pages[k + 1..].to_vec(), "{path}: resumed after row {k}");
    let (status, _) = api.send(reqwest::Method::GET, "acme-key", path, Some("image/png"), None).await;
    assert_eq!(status, 406, "{path}: unacceptable media type");
}

/// Provider codes given to the generated bounces, and the class each must land in.
const CODES: &[(&str, &str, &str)] = &[
    ("NoEmail", "smtp; 550 5.1.1 <someone@example.com>... User unknown", "bad_mailbox"),
    ("MailboxFull", "smtp; 552 5.2.2 Mailbox full", "mailbox_full"),
    ("General", "smtp; 554 5.7.1 Service unavailable; client host blocked using Spamhaus", "blocked"),
    ("General", "Host or domain name not found (NXDOMAIN)", "dns"),
];

fn with_bounce_codes(mut s: Stream) -> (Stream, BTreeMap<String, &'static str>) {
    let mut class = BTreeMap::new();
    for e in &mut s.events {
        if e.event_type == EventType::Bounced {
            let i = e.event_id.bytes().map(|b| b as usize).sum::<usize>() % CODES.len();
            e.error_code = Some(CODES[i].0.into());
            e.error_reason = Some(CODES[i].1.into());
            class.insert(e.event_id.clone(), CODES[i].2);
        }
    }
    (s, class)
}

/// ClickHouse's `quantileExact`: the element at `floor(level * n)` of the sorted values.
fn quantile(sorted: &[i64], level: f64) -> i64 {
    sorted[((level * sorted.len() as f64) as usize).min(sorted.len() - 1)]
}

/// (send day, provider, channel) → (send → delivered ms, delivered → first human open ms).
#[allow(clippy::type_complexity)]
fn latency_truth(s: &Stream) -> BTreeMap<String, (Vec<i64>, Vec<i64>)> {
    let machine = s.is_machine();
    let mut by_delivery: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    let distinct = s.distinct();
    for e in distinct.values() {
        by_delivery.entry(e.delivery_key.as_str()).or_default().push(e);
    }
    let mut out: BTreeMap<String, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for events in by_delivery.values() {
        let first = |pred: &dyn Fn(&Event) -> bool| events.iter().filter(|e| pred(e)).map(|e| e.occurred_at).min();
        let human = |e: &Event| !machine[&e.event_id];
        let sent = first(&|e| e.event_type == EventType::Sent).or_else(|| first(&|e| e.event_type == EventType::Queued));
        let delivered = first(&|e| {
            e.event_type == EventType::Delivered || (human(e) && matches!(e.event_type, EventType::Opened | EventType::Read | EventType::Clicked | EventType::Replied))
        });
        let opened = first(&|e| human(e) && e.event_type == EventType::Opened);
        let Some(sent) = sent else { continue };
        let day = chrono::DateTime::from_timestamp_millis(sent).unwrap().date_naive().to_string();
        let slot = out.entry(day).or_default();
        if let Some(d) = delivered {
            if d >= sent {
                slot.0.push(d - sent);
            }
            if let Some(o) = opened.filter(|o| *o >= d) {
                slot.1.push(o - d);
            }
        }
    }
    for v in out.values_mut() {
        v.0.sort();
        v.1.sort();
    }
    out
}

#[tokio::test]
async fn exports_bounces_latency_and_the_recipient_feed() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "api-live").await;
    let (mut acme, class_of) = with_bounce_codes(stream(61, 70));
    // a scheduled send: one delivered delivery queued 20 days before it was sent, so first
    // known long before the latency range read below, which holds its send: the read reaches
    // back by the tenant's send lag (`delivery_send_lag`, migration 18) or misses it
    let delivered: BTreeSet<String> = acme.events.iter().filter(|e| e.event_type == EventType::Delivered).map(|e| e.delivery_key.clone()).collect();
    let queued = acme.events.iter().find(|e| e.event_type == EventType::Queued && delivered.contains(&e.delivery_key)).expect("a delivered delivery").event_id.clone();
    for e in acme.events.iter_mut().filter(|e| e.event_id == queued) {
        e.occurred_at -= 20 * 86_400_000;
    }
    acme.produce(&stack.brokers, &p.events_topic, 0..acme.events.len()).await;
    p.start_aggregator().await;
    let distinct = acme.distinct().len() as u64;
    let deliveries = acme.expected_status().len() as u64;
    wait_until("the stream applied", Duration::from_secs(240), || async {
        (p.number("SELECT count() FROM events FINAL").await >= distinct && p.number("SELECT count() FROM deliveries FINAL").await >= deliveries).then_some(())
    })
    .await;
    let (url, _api) = p.start_api(KEYS).await;
    let api = Api { url, client: reqwest::Client::new() };

    assert_exports(&api, "/v1/events", "events").await;
    assert_exports(&api, "/v1/messages", "messages").await;

    // bounce reasons: every class as brute force says, by provider and by domain
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Duration::days(7);
    let body = api.ok("acme-key", &format!("/v1/stats/bounces?from={from}&to={today}")).await;
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for e in acme.distinct().values().filter(|e| matches!(e.event_type, EventType::Bounced | EventType::Failed)) {
        *want.entry(class_of[&e.event_id].to_string()).or_default() += 1;
    }
    let total: i64 = want.values().sum();
    assert!(total > 5, "enough bounces to tell classes apart ({total})");
    assert_eq!(n(&body["total"]), total);
    let got: BTreeMap<String, i64> = body["classes"].as_array().unwrap().iter().filter(|c| n(&c["count"]) > 0).map(|c| (c["class"].as_str().unwrap().to_string(), n(&c["count"]))).collect();
    assert_eq!(got, want, "bounce classes");
    let by_provider: i64 = body["by_provider"].as_array().unwrap().iter().map(|r| n(&r["count"])).sum();
    assert_eq!(by_provider, total, "by provider sums to the total");
    let domains: BTreeSet<&str> = body["by_domain"].as_array().unwrap().iter().map(|r| r["domain"].as_str().unwrap()).collect();
    assert_eq!(domains, BTreeSet::from(["example.com"]), "domains are lower-cased: User..@Example.COM counts as example.com");
    assert_eq!(body["truncated"], Value::Bool(false));

    // latency: quantiles per send day equal the brute force
    let body = api.ok("acme-key", &format!("/v1/stats/latency?from={from}&to={today}")).await;
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 1, "one provider and channel: {body}");
    assert_eq!((series[0]["provider"].as_str(), series[0]["channel"].as_str()), (Some("ses"), Some("email")));
    let truth = latency_truth(&acme);
    let buckets = series[0]["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 8, "every day of the range");
    let mut seen = 0;
    for b in buckets {
        let day = b["bucket"].as_str().unwrap();
        let (d, o) = truth.get(day).cloned().unwrap_or_default();
        for (name, want) in [("send_to_delivered", &d), ("delivered_to_first_open", &o)] {
            let q = &b[name];
            assert_eq!(n(&q["count"]) as usize, want.len(), "{day} {name} count");
            if want.is_empty() {
                assert!(q["p50_ms"].is_null(), "{day} {name}: no quantile without values");
            } else {
                let got = (n(&q["p50_ms"]), n(&q["p90_ms"]), n(&q["p99_ms"]));
                assert_eq!(got, (quantile(want, 0.5), quantile(want, 0.9), quantile(want, 0.99)), "{day} {name}");
            }
        }
        seen += d.len();
    }
    assert!(seen > 20, "latency pairs seen ({seen})");

    // one recipient's feed: every spelling of the address, newest first
    let addr = "user1@example.com";
    let feed = api.all_pages("acme-key", &format!("/v1/recipients/{addr}/events?page_size=3"), "events").await;
    let ids: Vec<&str> = feed.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    let want: BTreeSet<String> = acme.distinct().values().filter(|e| e.recipient.eq_ignore_ascii_case(addr)).map(|e| e.event_id.clone()).collect();
    assert_eq!(ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(), want, "{addr}: its events");
    assert_eq!(ids.len(), want.len(), "{addr}: none twice");
    let times: Vec<&str> = feed.iter().map(|e| e["occurred_at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let (status, body) = api.get("beta-key", &format!("/v1/recipients/{addr}/events")).await;
    assert_eq!((status, body["events"].as_array().map(Vec::len)), (200, Some(0)), "another tenant sees none of it");
}

/// The suppression topic's records for `key`, oldest first.
fn topic_values(brokers: &str, topic: &str, key: &str) -> Vec<Value> {
    e2e::kafka::read_all(brokers, topic, 4, Duration::from_secs(1))
        .into_iter()
        .filter(|(k, _)| k.as_deref() == Some(key.as_bytes()))
        .map(|(_, v)| serde_json::from_slice(&v).expect("a JSON suppression record"))
        .collect()
}

async fn suppression(api: &Api, key: &str, addr: &str) -> Value {
    api.ok(key, &format!("/v1/suppressions/{addr}")).await
}

#[tokio::test]
async fn suppressions_by_hand_and_the_live_stream_through_ingest() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "api-supp").await;
    p.start_all().await;
    let (url, _api) = p.start_api(KEYS).await;
    let api = Api { url: url.clone(), client: reqwest::Client::new() };
    let addr = format!("bounce-{}@example.net", uuid::Uuid::new_v4().simple());

    // the live stream: subscribe, then post a delivery; the subscription sees it
    let mut sse = reqwest::Client::new().get(format!("{url}/v1/stream?recipient={addr}")).bearer_auth("acme-key").send().await.expect("stream");
    assert_eq!(sse.status().as_u16(), 200);
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let msg = format!("live-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(p.post_sns("acme", &e2e::ses::body("event_delivery.json", &msg, Some(&[addr.as_str()]))).await.0, 200);
    let got = tokio::time::timeout(Duration::from_secs(90), async {
        let mut buf = String::new();
        while let Some(chunk) = sse.chunk().await.expect("stream body") {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            for block in buf.split("\n\n") {
                if block.lines().any(|l| l == "event: event") {
                    let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                    return serde_json::from_str::<Value>(&data).expect("event JSON");
                }
            }
        }
        panic!("stream ended");
    })
    .await
    .expect("the delivery posted after subscribing arrives on the stream");
    assert_eq!((got["recipient"].as_str(), got["event_type"].as_str()), (Some(addr.as_str()), Some("delivered")));
    drop(sse);

    // a hard bounce suppresses the address
    let bounce = |at: chrono::DateTime<chrono::Utc>| e2e::ses::body_at("event_bounce_permanent.json", &format!("b-{}", uuid::Uuid::new_v4().simple()), Some(&[addr.as_str()]), at);
    assert_eq!(p.post_sns("acme", &bounce(chrono::Utc::now() - chrono::Duration::hours(1))).await.0, 200);
    let s = wait_until("suppressed by the hard bounce", Duration::from_secs(90), || async {
        let s = suppression(&api, "acme-key", &addr).await;
        (s["suppressed"] == Value::Bool(true)).then_some(s)
    })
    .await;
    assert_eq!((s["current"]["reason"].as_str(), s["current"]["source"].as_str()), (Some("hard_bounce"), Some("event")));
    assert_eq!(suppression(&api, "beta-key", &addr).await["suppressed"], Value::Bool(false), "another tenant's list");

    // removing: the scope is needed, a reason is needed, then it is gone from the list
    let del = format!("/v1/suppressions/{addr}?reason=customer%20asked%20to%20be%20mailed%20again");
    assert_eq!(api.send(reqwest::Method::DELETE, "acme-reader", &del, None, None).await.0, 403, "without suppressions:write");
    let (status, text) = api.send(reqwest::Method::DELETE, "acme-key", &format!("/v1/suppressions/{addr}"), None, None).await;
    assert_eq!(status, 400, "no reason: {text}");
    assert!(text.contains("\"parameter\":\"reason\""), "{text}");
    assert_eq!(api.send(reqwest::Method::DELETE, "beta-key", &del, None, None).await.0, 404, "another tenant cannot remove it");
    let (status, text) = api.send(reqwest::Method::DELETE, "acme-key", &del, None, None).await;
    assert_eq!(status, 200, "{text}");
    let change: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((change["change"]["action"].as_str(), change["change"]["who"].as_str()), (Some("removed"), Some("ops")));
    let s = suppression(&api, "acme-key", &addr).await;
    assert_eq!(s["suppressed"], Value::Bool(false), "{s}");
    let list = api.all_pages("acme-key", "/v1/suppressions?address_prefix=bounce-", "suppressions").await;
    assert!(!list.iter().any(|e| e["address"] == addr.as_str()), "removed from the list");
    let key = format!("acme/{addr}");
    let records = topic_values(&stack.brokers, &p.suppressions_topic, &key);
    assert_eq!(records.last().map(|r| r["removed"].clone()), Some(Value::Bool(true)), "the removal is on the topic: {records:?}");
    assert_eq!(api.send(reqwest::Method::DELETE, "acme-key", &del, None, None).await.0, 404, "not suppressed any more");

    // a later hard bounce suppresses it again, though the table keeps the older entry
    tokio::time::sleep(Duration::from_millis(5)).await; // the bounce's time must follow the removal's (ms clock)
    assert_eq!(p.post_sns("acme", &bounce(chrono::Utc::now())).await.0, 200);
    let s = wait_until("suppressed again by a later hard bounce", Duration::from_secs(90), || async {
        let s = suppression(&api, "acme-key", &addr).await;
        (s["suppressed"] == Value::Bool(true)).then_some(s)
    })
    .await;
    let steps: Vec<(String, String)> = s["history"].as_array().unwrap().iter().map(|h| (h["action"].as_str().unwrap().into(), h["source"].as_str().unwrap().into())).collect();
    let want: Vec<(String, String)> = [("suppressed", "event"), ("removed", "api"), ("suppressed", "event")].iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(steps, want, "the history: {s}");
    assert_eq!(s["history"][1]["note"].as_str(), Some("customer asked to be mailed again"));
    let list = api.all_pages("acme-key", "/v1/suppressions?address_prefix=bounce-", "suppressions").await;
    assert!(list.iter().any(|e| e["address"] == addr.as_str()), "back in the list");
    wait_until("the aggregator publishes the entry again", Duration::from_secs(30), || async {
        let records = topic_values(&stack.brokers, &p.suppressions_topic, &key);
        records.last().filter(|r| r.get("removed").is_none() && r["reason"] == "hard_bounce").map(|_| ())
    })
    .await;

    // adding by hand: bad input names each problem; a good list is added, kept with who and why
    let (status, text) = api.send(reqwest::Method::POST, "acme-key", "/v1/suppressions", None, Some(serde_json::json!({"addresses": ["ok@example.org", "has space@x"], "reason": ""}))).await;
    assert_eq!(status, 400, "{text}");
    for param in ["addresses[1]", "reason"] {
        assert!(text.contains(&format!("\"parameter\":\"{param}\"")), "{param}: {text}");
    }
    let (status, text) = api.send(reqwest::Method::POST, "acme-key", "/v1/suppressions", None, Some(serde_json::json!({"addresses": []}))).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(api.send(reqwest::Method::POST, "acme-reader", "/v1/suppressions", None, Some(serde_json::json!({"addresses": ["x@y.z"], "reason": "r"}))).await.0, 403);
    let manual = format!("manual-{}@Example.org", uuid::Uuid::new_v4().simple());
    let (status, text) =
        api.send(reqwest::Method::POST, "acme-key", "/v1/suppressions", None, Some(serde_json::json!({"addresses": [manual, manual.to_uppercase()], "reason": "legal request", "scope": "email"}))).await;
    assert_eq!(status, 201, "{text}");
    let changes: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(changes["changes"].as_array().map(Vec::len), Some(1), "one address however spelled");
    let lower = manual.to_ascii_lowercase();
    let s = suppression(&api, "acme-key", &lower).await;
    assert_eq!(
        (s["suppressed"].clone(), s["current"]["source"].as_str(), s["current"]["reason"].as_str(), s["current"]["who"].as_str(), s["current"]["note"].as_str()),
        (Value::Bool(true), Some("api"), Some("manual"), Some("ops"), Some("legal request"))
    );
    let list = api.ok("acme-key", "/v1/suppressions?reason=manual").await;
    assert_eq!(list["suppressions"].as_array().unwrap().iter().filter(|e| e["address"] == lower.as_str()).count(), 1);
    let records = topic_values(&stack.brokers, &p.suppressions_topic, &format!("acme/{lower}"));
    assert_eq!(records.last().map(|r| r["reason"].clone()), Some(Value::from("manual")), "manual adds are published");
    assert_eq!(suppression(&api, "beta-key", &lower).await["suppressed"], Value::Bool(false), "another tenant's list");
}
