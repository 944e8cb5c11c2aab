//! The read API on the real stack: two tenants' generated streams (duplicates, shuffled order,
//! late send records, machine opens, several days) go through the aggregator into ClickHouse;
//! then every number the API returns is compared with a brute-force count over the generated
//! truth, `/v1/messages` is paged while a third stream is being applied (every delivery exactly
//! once), and each tenant's key sees only its own rows.

use e2e::generate::{stream, Stream};
use api::db::events::EventFilter;
use e2e::{wait_until, Pipeline, Stack};
use schemas::{BounceClass, Event, EventType};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const KEYS: &str = r#"
[tenants.acme.keys.dash]
key = "acme-key"
scopes = ["stats", "messages"]

[tenants.beta.keys.dash]
key = "beta-key"
scopes = ["stats", "messages"]
"#;

/// A stream of tenant `beta`: the same generator, ids and keys made the tenant's own.
fn beta_stream(seed: u64, deliveries: usize) -> Stream {
    let mut s = stream(seed, deliveries);
    for e in &mut s.events {
        e.tenant = "beta".into();
        e.event_id = format!("beta-{}", e.event_id);
        e.delivery_key = format!("beta-{}", e.delivery_key);
    }
    s
}

struct Api {
    url: String,
    client: reqwest::Client,
}

impl Api {
    async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let r = self.client.get(format!("{}{path}", self.url)).bearer_auth(key).send().await.expect("api reachable");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn ok(&self, key: &str, path: &str) -> Value {
        let (status, body) = self.get(key, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// Every page of a list; the items under `field`, in order.
    async fn all_pages(&self, key: &str, path: &str, field: &str, between_pages: impl AsyncFn(usize)) -> Vec<Value> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for page in 0.. {
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
            between_pages(page).await;
            assert!(page < 10_000, "pages end");
        }
        out
    }
}

fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().date_naive().to_string()
}

/// (day, event type) → (all, human) counts, and day → hard bounces.
#[allow(clippy::type_complexity)]
fn day_truth(s: &Stream) -> (BTreeMap<(String, String), (i64, i64)>, BTreeMap<String, i64>) {
    let machine = s.is_machine();
    let mut counts: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut hard: BTreeMap<String, i64> = BTreeMap::new();
    for e in s.distinct().values() {
        let c = counts.entry((day(e.occurred_at), e.event_type.as_str().to_string())).or_default();
        c.0 += 1;
        if !machine[&e.event_id] {
            c.1 += 1;
        }
        if e.event_type == EventType::Bounced && e.bounce_class == Some(BounceClass::Hard) {
            *hard.entry(day(e.occurred_at)).or_default() += 1;
        }
    }
    (counts, hard)
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("a number: {v}"))
}

/// `/v1/stats` by day equals the truth for every day of the range and every event type.
async fn assert_stats(api: &Api, key: &str, s: &Stream) {
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Duration::days(7);
    let body = api.ok(key, &format!("/v1/stats?granularity=day&from={from}&to={today}")).await;
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 1);
    let buckets = series[0]["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 8, "every day of the range, empty ones included");
    let (counts, hard) = day_truth(s);
    let mut seen = 0;
    for b in buckets {
        let d = b["start"].as_str().unwrap();
        for ty in EventType::SYMBOLS {
            let (all, human) = counts.get(&(d.to_string(), ty.to_string())).copied().unwrap_or_default();
            assert_eq!(n(&b["totals"]["counts"][ty]), all, "{key} {d} {ty}");
            assert_eq!(n(&b["totals"]["human_counts"][ty]), human, "{key} {d} {ty} (people)");
            seen += all;
        }
        assert_eq!(n(&b["totals"]["hard_bounces"]), hard.get(d).copied().unwrap_or(0), "{key} {d} hard bounces");
        let rate = &b["totals"]["rates"]["delivery"];
        let (delivered, sent) = (n(&b["totals"]["counts"]["delivered"]), n(&b["totals"]["counts"]["sent"]));
        assert_eq!((n(&rate["numerator"]), n(&rate["denominator"])), (delivered, sent));
    }
    assert_eq!(seen as usize, s.distinct().len(), "{key}: all events fall in the range");
    // the share still without a final status: every delivery is in the range
    let status = s.expected_status();
    let pending = status.values().filter(|st| ["queued", "sent"].contains(&st.as_str())).count() as i64;
    assert_eq!((n(&body["provisional"]["numerator"]), n(&body["provisional"]["denominator"])), (pending, status.len() as i64), "{key}: provisional");
    // per broadcast (attributed counters): each event under its delivery's send record's broadcast
    let body = api.ok(key, &format!("/v1/stats?granularity=day&from={from}&to={today}&group_by=broadcast")).await;
    let mut got: BTreeSet<(String, String, String, u64)> = BTreeSet::new();
    for series in body["series"].as_array().unwrap() {
        let b = series["group"]["broadcast"].as_str().unwrap().to_string();
        for bucket in series["buckets"].as_array().unwrap() {
            for ty in EventType::SYMBOLS {
                let v = n(&bucket["totals"]["counts"][ty]);
                if v != 0 {
                    got.insert((bucket["start"].as_str().unwrap().to_string(), b.clone(), ty.to_string(), v as u64));
                }
            }
        }
    }
    assert_eq!(got, s.expected_attributed_day_counts(), "{key}: per-broadcast series");
}

/// The expected broadcast of each delivery (its send record's), and deliveries per broadcast.
fn broadcasts(s: &Stream) -> BTreeMap<String, String> {
    s.distinct()
        .values()
        .filter(|e| e.provider_event_name == "send_record")
        .filter_map(|e| Some((e.delivery_key.clone(), e.broadcast_id.clone()?)))
        .collect()
}

async fn assert_funnels(api: &Api, key: &str, s: &Stream) {
    type Funnel = (u64, u64, u64, u64, u64, BTreeMap<String, String>);
    // (deliveries, hard bounces, complaints, unsubscribes, recipients, cost per currency)
    type Truth = (u64, u64, u64, u64, BTreeSet<String>, BTreeMap<String, rust_decimal::Decimal>);
    let status = s.expected_status();
    let by_delivery = broadcasts(s);
    let recipient: BTreeMap<&str, String> = s.events.iter().map(|e| (e.delivery_key.as_str(), e.recipient.to_ascii_lowercase())).collect();
    let mut want: BTreeMap<String, Truth> = BTreeMap::new();
    for (k, b) in &by_delivery {
        let w = want.entry(b.clone()).or_default();
        w.0 += 1;
        match status[k].as_str() {
            "bounced" => w.1 += 1,
            "complained" => w.2 += 1,
            "unsubscribed" => w.3 += 1,
            _ => {}
        }
        w.4.insert(recipient[k.as_str()].clone());
    }
    // cost per currency: each distinct event's, summed into its delivery's broadcast
    for e in s.distinct().values() {
        if let (Some(c), Some(b)) = (&e.cost, by_delivery.get(&e.delivery_key)) {
            *want.get_mut(b).expect("a broadcast of the truth").5.entry(c.unit.clone()).or_default() += c.amount;
        }
    }
    let want: BTreeMap<String, Funnel> = want
        .into_iter()
        .map(|(b, w)| (b, (w.0, w.1, w.2, w.3, w.4.len() as u64, w.5.into_iter().map(|(u, a)| (u, a.normalize().to_string())).collect())))
        .collect();
    // people addressed twice in one broadcast, spelled two ways: one unique recipient (delivery rows hold the address lower-cased)
    assert!(want.values().map(|w| w.0 - w.4).sum::<u64>() > 0, "{key}: the stream has a person twice in a broadcast");
    assert!(want.values().filter(|w| !w.5.is_empty()).count() > 1, "{key}: broadcasts with a cost");
    if key == "acme-key" {
        assert!(want.values().any(|w| w.5.get("EUR").is_some_and(|a| a == "0")), "{key}: a broadcast whose cost in one currency is 0");
    }
    let items = api.all_pages(key, "/v1/broadcasts?page_size=2", "items", async |_| {}).await;
    let got: BTreeMap<String, Funnel> = items
        .iter()
        .map(|i| {
            let f = &i["funnel"];
            let cost = f["cost"].as_object().expect("cost per currency").iter().map(|(u, a)| (u.clone(), a.as_str().expect("an amount").to_string())).collect();
            let counts = (n(&f["deliveries"]) as u64, n(&f["hard_bounces"]) as u64, n(&f["complaints"]) as u64, n(&f["unsubscribes"]) as u64, n(&f["unique_recipients"]) as u64, cost);
            (i["id"].as_str().unwrap().to_string(), counts)
        })
        .collect();
    assert_eq!(got, want, "{key}: funnels (deliveries, hard bounces, complaints, unsubscribes, unique recipients, cost per currency) per broadcast");
    // each broadcast's report: its deliveries by latest status
    let mut by_status: BTreeMap<&str, BTreeMap<String, i64>> = BTreeMap::new();
    for (k, b) in &by_delivery {
        *by_status.entry(b.as_str()).or_default().entry(status[k].clone()).or_default() += 1;
    }
    assert!(by_status.values().all(|s| s.len() > 2), "{key}: several statuses in each broadcast");
    for (b, want) in by_status {
        let report = api.ok(key, &format!("/v1/broadcasts/{b}/report")).await;
        let got: BTreeMap<String, i64> = report["counts_by_status"].as_object().expect("counts").iter().map(|(s, v)| (s.clone(), n(v))).collect();
        assert_eq!(got, want, "{key}: {b}'s deliveries by status");
    }
}

async fn assert_chronology(api: &Api, key: &str, s: &Stream) {
    let distinct = s.distinct();
    let mut by_delivery: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in distinct.values() {
        by_delivery.entry(e.delivery_key.as_str()).or_default().push(e);
    }
    for (k, mut events) in by_delivery.into_iter().take(5) {
        events.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
        let body = api.ok(key, &format!("/v1/messages/{k}")).await;
        let got: Vec<(String, String)> = body["events"].as_array().unwrap().iter().map(|e| (e["event_id"].as_str().unwrap().into(), e["event_type"].as_str().unwrap().into())).collect();
        let want: Vec<(String, String)> = events.iter().map(|e| (e.event_id.clone(), e.event_type.as_str().to_string())).collect();
        assert_eq!(got, want, "{key}: chronology of {k}");
        assert_eq!(body["message"]["status"].as_str().unwrap(), s.expected_status()[k]);
    }
}

/// The summary's unique people delivered to, opening and clicking (people only), over `days`
/// days up to today (UTC) and the `days` before, against the sets of the generated truth.
async fn assert_summary_uniques(api: &Api, key: &str, s: &Stream, days: i64) {
    let today = chrono::Utc::now().date_naive();
    let (from, prev_from) = (today - chrono::Duration::days(days - 1), today - chrono::Duration::days(2 * days - 1));
    let mut want: BTreeMap<(bool, &str), BTreeSet<String>> = BTreeMap::new();
    for ((period, bucket, _, _, ty, machine, _), people) in s.expected_unique_recipients("UTC") {
        let day: chrono::NaiveDate = bucket.parse().unwrap();
        let kind = match ty.as_str() {
            "delivered" => "reached",
            "opened" | "read" => "opened",
            "clicked" => "clicked",
            _ => continue,
        };
        if period != "day" || !machine.is_empty() || day < prev_from || day > today {
            continue;
        }
        want.entry((day >= from, kind)).or_default().extend(people);
    }
    let body = api.ok(key, &format!("/v1/stats/summary?days={days}")).await;
    for (current, field) in [(true, "unique_recipients"), (false, "previous_unique_recipients")] {
        let got: Vec<u64> = ["reached", "opened", "clicked"].iter().map(|k| n(&body[field][k]) as u64).collect();
        let exp: Vec<u64> = ["reached", "opened", "clicked"].iter().map(|k| want.get(&(current, *k)).map_or(0, |p| p.len() as u64)).collect();
        assert_eq!(got, exp, "{key}: {field} (reached, opened, clicked) over {days} days");
    }
    // the events per type of both periods (one read of the counters, split by day) and their deltas
    let mut counts: BTreeMap<(bool, String), i64> = BTreeMap::new();
    for (day, ty, _, events) in s.expected_day_counts(chrono_tz::UTC) {
        let day: chrono::NaiveDate = day.parse().unwrap();
        if day >= prev_from && day <= today {
            *counts.entry((day >= from, ty)).or_default() += events as i64;
        }
    }
    for (current, field) in [(true, "totals"), (false, "previous")] {
        let got: BTreeMap<String, i64> = body[field]["counts"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), n(v))).filter(|(_, v)| *v != 0).collect();
        let exp: BTreeMap<String, i64> = counts.iter().filter(|((c, _), _)| *c == current).map(|((_, t), v)| (t.clone(), *v)).collect();
        assert_eq!(got, exp, "{key}: {field} per event type over {days} days");
    }
    for (ty, delta) in body["deltas"].as_object().unwrap() {
        let of = |c: bool| counts.get(&(c, ty.clone())).copied().unwrap_or(0);
        assert_eq!(n(delta), of(true) - of(false), "{key}: delta of {ty} over {days} days");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_numbers_equal_the_truth_and_tenants_are_apart() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "api-read").await;
    let mut acme = stream(41, 60);
    // one send record charged nothing, in another currency: its broadcast's funnel lists
    // that currency at 0 (ClickHouse's `sumMap` leaves a zero sum out; the API must not)
    let free = acme.events.iter().find(|e| e.provider_event_name == "send_record" && e.broadcast_id.is_some() && e.cost.is_some()).map(|e| e.event_id.clone()).expect("a send record with a cost");
    for e in acme.events.iter_mut().filter(|e| e.event_id == free) {
        e.cost = Some(schemas::Money::new(rust_decimal::Decimal::ZERO, "EUR"));
    }
    let beta = beta_stream(42, 25);
    acme.produce(&stack.brokers, &p.events_topic, 0..acme.events.len()).await;
    beta.produce(&stack.brokers, &p.events_topic, 0..beta.events.len()).await;
    p.start_aggregator().await;
    let distinct = (acme.distinct().len() + beta.distinct().len()) as u64;
    let deliveries = (acme.expected_status().len() + beta.expected_status().len()) as u64;
    wait_until("both streams applied", Duration::from_secs(240), || async {
        (p.number("SELECT count() FROM events FINAL").await >= distinct && p.number("SELECT count() FROM deliveries FINAL").await >= deliveries).then_some(())
    })
    .await;
    let (url, _api) = p.start_api(KEYS).await;
    let api = Api { url, client: reqwest::Client::new() };

    for (key, s) in [("acme-key", &acme), ("beta-key", &beta)] {
        assert_stats(&api, key, s).await;
        assert_funnels(&api, key, s).await;
        assert_chronology(&api, key, s).await;
        // the event feed, paged: every distinct event exactly once
        let events = api.all_pages(key, "/v1/events?page_size=37", "events", async |_| {}).await;
        let ids: Vec<String> = events.iter().map(|e| e["event_id"].as_str().unwrap().to_string()).collect();
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{key}: no event twice");
        assert_eq!(unique.into_iter().cloned().collect::<BTreeSet<_>>(), s.distinct().keys().cloned().collect(), "{key}: every event");
        // a recipient's engagement: human and machine opens over every spelling of the address
        let machine = s.is_machine();
        let addr = s.events.iter().find(|e| e.event_type == EventType::Opened).map(|e| e.recipient.to_ascii_lowercase()).unwrap();
        let distinct = s.distinct();
        let opens: Vec<&&Event> = distinct.values().filter(|e| e.recipient.to_ascii_lowercase() == addr && e.event_type == EventType::Opened).collect();
        let human = opens.iter().filter(|e| !machine[&e.event_id]).count() as i64;
        let body = api.ok(key, &format!("/v1/recipients/{addr}/engagement")).await;
        assert_eq!((n(&body["human_opens"]), n(&body["machine_opens"])), (human, opens.len() as i64 - human), "{key}: engagement of {addr}");
        // the summary's unique people, this period and the one before (the stream spans 5 days)
        for days in [2, 3, 7] {
            assert_summary_uniques(&api, key, s, days).await;
        }
        let body = api.ok(key, "/v1/stats/summary?days=7").await;
        let reached: BTreeSet<String> = s.distinct().values().filter(|e| e.event_type == EventType::Delivered).map(|e| e.recipient.to_ascii_lowercase()).collect();
        assert_eq!(n(&body["unique_recipients"]["reached"]) as usize, reached.len(), "{key}: unique recipients reached");
        assert_eq!(n(&body["totals"]["counts"]["delivered"]) as usize, s.distinct().values().filter(|e| e.event_type == EventType::Delivered).count());
    }

    // a database migrated while it held events older than their TTL: `recipient_days` lacks the
    // days before `backfills`' `complete_from` (here: every day before today, its rows deleted),
    // and a range reaching them is read from `unique_recipients`, to the same numbers; by a new
    // API process (one reads the record once)
    let complete_from = "SELECT toString(complete_from) FROM backfills WHERE name = 'recipient_days' ORDER BY recorded_at DESC LIMIT 1 FORMAT TabSeparated";
    assert_eq!(p.query(complete_from).await.trim(), "1970-01-01", "a database without rows at migration misses none");
    p.query("INSERT INTO backfills SELECT 'recipient_days', toDate(now('UTC')), now64(3, 'UTC') + INTERVAL 1 SECOND").await;
    assert_eq!(p.query(complete_from).await.trim(), chrono::Utc::now().date_naive().to_string());
    p.query("DELETE FROM recipient_days WHERE bucket_start < toDate(now('UTC'))").await;
    assert_eq!(p.number("SELECT count() FROM recipient_days WHERE bucket_start < toDate(now('UTC'))").await, 0);
    let (url, _older) = p.start_api(KEYS).await;
    let older = Api { url, client: reqwest::Client::new() };
    for (key, s) in [("acme-key", &acme), ("beta-key", &beta)] {
        for days in [2, 3, 7] {
            assert_summary_uniques(&older, key, s, days).await;
        }
    }

    // a tenant's key never sees the other tenant's rows
    let beta_messages = api.all_pages("beta-key", "/v1/messages?page_size=1000", "messages", async |_| {}).await;
    let beta_ids: BTreeSet<String> = beta_messages.iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(beta_ids, beta.expected_status().keys().cloned().collect(), "beta's key lists beta's deliveries only");
    let acme_key = acme.expected_status().keys().next().unwrap().clone();
    assert_eq!(api.get("beta-key", &format!("/v1/messages/{acme_key}")).await.0, 404, "another tenant's delivery is not found");
    assert_eq!(api.get("beta-key", "/v1/stats?tenant=acme").await.0, 403);
    let recipient = acme.events[0].recipient.clone();
    let body = api.ok("beta-key", &format!("/v1/events?recipient={recipient}")).await;
    assert!(body["events"].as_array().unwrap().iter().all(|e| e["message_id"].as_str().unwrap().starts_with("beta-")));

    // paging /v1/messages while a third stream is applied: every delivery exactly once
    let extra = stream(43, 40);
    let before: BTreeMap<String, String> = acme.expected_status();
    let producing = std::sync::atomic::AtomicBool::new(false);
    let pages = api
        .all_pages("acme-key", "/v1/messages?page_size=9", "messages", async |page| {
            if page == 1 && !producing.swap(true, std::sync::atomic::Ordering::SeqCst) {
                extra.produce(&stack.brokers, &p.events_topic, 0..extra.events.len()).await;
                let total = deliveries + extra.expected_status().len() as u64;
                wait_until("third stream applied", Duration::from_secs(240), || async { (p.number("SELECT count() FROM deliveries FINAL").await >= total).then_some(()) }).await;
            }
        })
        .await;
    let ids: Vec<String> = pages.iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no delivery twice across pages");
    for k in before.keys() {
        assert!(unique.contains(k), "delivery {k} listed");
    }
    let statuses: BTreeMap<String, String> = pages.iter().map(|m| (m["id"].as_str().unwrap().to_string(), m["status"].as_str().unwrap().to_string())).collect();
    for (k, st) in &before {
        assert_eq!(&statuses[k], st, "status of {k}");
    }
}

/// One version of an event row as the test writes it.
#[derive(Clone)]
struct Version {
    id: String,
    at: i64,
    event_type: &'static str,
    broadcast: Option<&'static str>,
}

/// The feed reads `events` without `FINAL` where that is exact and with it where not
/// (`api::db::events`: keys from the projection `events_by_time`, then the rows by id), the
/// bounce reasons `attributed_failures` (migration 21: `FINAL` by version, the view's version
/// being the event row's write time): event rows written as several versions
/// that ClickHouse has not merged (merges stopped), some re-attributed to another broadcast,
/// some copied again, some sharing a millisecond, and every answer compared with the latest
/// version of each event (the last one written, what `FINAL` keeps).
#[tokio::test(flavor = "multi_thread")]
async fn the_feed_and_bounce_reasons_show_each_events_latest_version() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "api-feed").await;
    p.query("SYSTEM STOP MERGES events").await;
    p.query("SYSTEM STOP MERGES failures").await;
    p.query("SYSTEM STOP MERGES attributed_failures").await;
    let now = chrono::Utc::now().timestamp_millis();
    let types = ["delivered", "opened", "bounced", "clicked"];
    // 4,000 events over the last hour, pairs in one millisecond; four inserts:
    // 1. every event, events k % 3 != 2 attributed to b-a;
    // 2. events k % 6 == 0 re-attributed to b-b (the latest for them);
    // 3. events k % 5 == 0 copied as they were first written (a replay: the latest for them);
    // 4. events k % 7 == 0 copied again as they stand after 1–3 (the same answer).
    const EVENTS: i64 = 4_000;
    let first: Vec<Version> = (0..EVENTS)
        .map(|k| Version { id: format!("ev-{k:04}"), at: now - 3_600_000 + (k / 2) * 1_000, event_type: types[k as usize % 4], broadcast: (k % 3 != 2).then_some("b-a") })
        .collect();
    let moved: Vec<Version> = first.iter().enumerate().filter(|(k, _)| k % 6 == 0).map(|(_, v)| Version { broadcast: Some("b-b"), ..v.clone() }).collect();
    let replayed: Vec<Version> = first.iter().enumerate().filter(|(k, _)| k % 5 == 0).map(|(_, v)| v.clone()).collect();
    let mut latest: BTreeMap<String, Version> = BTreeMap::new();
    for v in first.iter().chain(&moved).chain(&replayed) {
        latest.insert(v.id.clone(), v.clone());
    }
    let again: Vec<Version> = (0..EVENTS).filter(|k| k % 7 == 0).map(|k| latest[&format!("ev-{k:04}")].clone()).collect();
    for batch in [&first, &moved, &replayed, &again] {
        let values: Vec<String> = batch
            .iter()
            .map(|v| {
                let b = v.broadcast.map(|b| format!("'{b}'")).unwrap_or("NULL".into());
                format!(
                    "('{}', 'acme', 'email', 'ses', 'dk-{}', 'User@Example.com', '{}', '{}', fromUnixTimestamp64Milli(toInt64({}), 'UTC'), {b}, 'x', 'mailbox unavailable')",
                    v.id,
                    v.id,
                    v.event_type,
                    if v.event_type == "bounced" { "hard" } else { "" },
                    v.at
                )
            })
            .collect();
        p.query(&format!(
            "INSERT INTO events (event_id, tenant, channel, provider, delivery_key, recipient, event_type, bounce_class, occurred_at, broadcast_id, error_code, error_reason) VALUES {}",
            values.join(", ")
        ))
        .await;
    }
    assert!(p.number("SELECT count() FROM events").await > EVENTS as u64 + 180, "versions stay unmerged");
    let (url, _api) = p.start_api(KEYS).await;
    let api = Api { url, client: reqwest::Client::new() };

    // newest first, ties by id descending, each event once with its latest attribution
    let truth = |keep: &dyn Fn(&Version) -> bool| -> Vec<(String, Option<String>)> {
        let mut v: Vec<&Version> = latest.values().filter(|v| keep(v)).collect();
        v.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
        v.into_iter().map(|v| (v.id.clone(), v.broadcast.map(String::from))).collect()
    };
    let feed = async |query: &str, size: u32| -> Vec<(String, Option<String>)> {
        let path = format!("/v1/events?page_size={size}{query}");
        api.all_pages("acme-key", &path, "events", async |_| {})
            .await
            .iter()
            .map(|e| (e["event_id"].as_str().unwrap().to_string(), e["broadcast"].as_str().map(String::from)))
            .collect()
    };
    assert_eq!(feed("", 37).await, truth(&|_| true), "every event once, its latest version");
    assert_eq!(feed("", 1000).await, truth(&|_| true), "in pages of 1,000");
    for b in ["b-a", "b-b"] {
        // (b-a: a quarter of its first-written events have moved to b-b, a fifth of those back)
        assert_eq!(feed(&format!("&broadcast={b}"), 29).await, truth(&|v| v.broadcast == Some(b)), "broadcast {b}");
        // (b-a: 1,016 candidates (~850 events) fill ~700 places, then 2,032 (~1,700 events) are
        // read again in two `IN` lists of ids)
        assert_eq!(feed(&format!("&broadcast={b}"), 1000).await, truth(&|v| v.broadcast == Some(b)), "broadcast {b}, pages of 1,000");
    }
    assert_eq!(feed("&event_type=bounced&broadcast=b-a", 11).await, truth(&|v| v.broadcast == Some("b-a") && v.event_type == "bounced"), "type and broadcast");
    // a recipient's events: a round of its own (every version read whole where its bloom filter
    // points, the attribution filter applied to the latest), however the address is spelled
    assert_eq!(feed("&recipient=user@example.com", 37).await, truth(&|_| true), "a recipient's events");
    assert_eq!(feed("&recipient=USER@example.com&broadcast=b-b", 23).await, truth(&|v| v.broadcast == Some("b-b")), "a recipient's events of one broadcast");
    assert_eq!(feed("&recipient=someone@example.com", 37).await, vec![], "another recipient's");

    // bounce reasons count each bounced event once, by its latest attribution
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (today - chrono::Duration::days(1), today);
    for (q, keep) in [("", None), ("&broadcast=b-a", Some("b-a")), ("&broadcast=b-b", Some("b-b"))] {
        let body = api.ok("acme-key", &format!("/v1/stats/bounces?from={from}&to={to}{q}")).await;
        let want = latest.values().filter(|v| v.event_type == "bounced" && keep.is_none_or(|b| v.broadcast == Some(b))).count() as i64;
        assert!(want >= 2, "bounces to count ({q}): {want}");
        assert_eq!(n(&body["total"]), want, "bounce reasons{q}: {body}");
    }
}

/// The feed's key reads come from the projection `events_by_time` (migration 20), newest end
/// first, whatever filter but a recipient's is set: 300,000 events over 28 days in one part
/// (37 granules), where the table itself would read every granule of the tenant. The pages
/// read that way are the newest events, compared with the generated ones.
#[tokio::test(flavor = "multi_thread")]
async fn the_feeds_keys_come_from_the_time_ordered_projection() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "api-keys").await;
    let now = chrono::Utc::now().timestamp_millis();
    // event k: `bk-k` (6 digits), k × 8 s ago, type k % 4, broadcast bc-(k % 50), recipient u(k % 1000)
    const EVENTS: u64 = 300_000;
    p.query(&format!(
        "INSERT INTO events (event_id, tenant, channel, provider, delivery_key, recipient, event_type, occurred_at, broadcast_id) \
         SELECT concat('bk-', leftPad(toString(number), 6, '0')), 'acme', 'email', 'ses', concat('dk-', toString(number)), \
                concat('u', toString(number % 1000), '@example.com'), ['delivered', 'opened', 'bounced', 'clicked'][number % 4 + 1], \
                fromUnixTimestamp64Milli(toInt64({now} - number * 8000), 'UTC'), concat('bc-', toString(number % 50)) \
         FROM numbers({EVENTS})"
    ))
    .await;
    let mut cfg = api::config::Config::default().clickhouse;
    (cfg.url, cfg.database) = (stack.clickhouse_url.clone(), p.database.clone());
    let db = api::db::Db::new(&cfg);
    let some = |v: &str| Some(v.to_string());
    let filters = [
        EventFilter::default(),
        EventFilter { from: Some(now - 3_600_000), to: Some(now), event_types: vec!["bounced".into(), "opened".into()], ..Default::default() },
        EventFilter { broadcast: some("bc-7"), ..Default::default() },
        EventFilter { template: some("t"), sequence: some("s"), ..Default::default() },
    ];
    for (f, cursor) in filters.iter().flat_map(|f| [(f, None), (f, Some((now - 1_800_000, "bk-000225".to_string())))]) {
        let plan = api::db::events::key_plan(&db, "acme", f, cursor.as_ref()).await.expect("a plan");
        assert!(plan.contains("ReadFromMergeTree (events_by_time)") && plan.contains("InReverseOrder"), "{f:?} after {cursor:?}: {plan}");
    }
    let f = EventFilter { recipient: some("u7@example.com"), ..Default::default() };
    let plan = api::db::events::key_plan(&db, "acme", &f, None).await.expect("a plan");
    assert!(!plan.contains("events_by_time") && plan.contains("recipient_bf"), "a recipient's from the table: {plan}");

    let (url, _api) = p.start_api(KEYS).await;
    let api = Api { url, client: reqwest::Client::new() };
    let ids = |body: &Value| -> Vec<String> { body["events"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap().to_string()).collect() };
    let want = |ks: &mut dyn Iterator<Item = u64>| -> Vec<String> { ks.map(|k| format!("bk-{k:06}")).collect() };
    let first = api.ok("acme-key", "/v1/events?page_size=50").await;
    assert_eq!(ids(&first), want(&mut (0..50)), "the newest 50");
    let token = first["next_page_token"].as_str().expect("more pages");
    assert_eq!(ids(&api.ok("acme-key", &format!("/v1/events?page_size=50&page_token={token}")).await), want(&mut (50..100)), "the next 50");
    let body = api.ok("acme-key", "/v1/events?page_size=20&broadcast=bc-7&event_type=bounced").await;
    assert_eq!(ids(&body), want(&mut (0..EVENTS).filter(|k| k % 50 == 7 && k % 4 == 2).take(20)), "one broadcast's bounces");
    let body = api.ok("acme-key", "/v1/events?page_size=20&recipient=U7@example.com").await;
    assert_eq!(ids(&body), want(&mut (0..EVENTS).filter(|k| k % 1000 == 7).take(20)), "one recipient's");

    // an operator's lightweight DELETE of a person's events (migration 20 lets it drop the
    // projection of the parts it changes, which merges build again): the feed and a count the
    // projection answered before both lose the deleted events. (The count: the last 2 hours,
    // events 0..=900, one granule of the projection against the table's whole part.)
    let types = format!("SELECT event_type AS k, count() AS n FROM events WHERE tenant = 'acme' AND toUnixTimestamp64Milli(occurred_at) >= {} GROUP BY k", now - 7_204_000);
    let plan = p.query(&format!("EXPLAIN {types}")).await;
    assert!(plan.contains("ReadFromMergeTree (events_by_time)"), "answered from the projection: {plan}");
    p.query("DELETE FROM events WHERE tenant = 'acme' AND recipient = 'u3@example.com'").await;
    let first = api.ok("acme-key", "/v1/events?page_size=50").await;
    assert_eq!(ids(&first), want(&mut (0..).filter(|k| k % 1000 != 3).take(50)), "the newest 50 but the erased one");
    let counted = |sql: String| {
        let p = &p;
        async move { p.rows(&sql).await.iter().map(|r| (Pipeline::cell(r, "k"), Pipeline::cell(r, "n"))).collect::<BTreeMap<_, _>>() }
    };
    let mut truth: BTreeMap<String, String> = BTreeMap::new();
    for (t, name) in ["delivered", "opened", "bounced", "clicked"].iter().enumerate() {
        truth.insert(name.to_string(), (0..=900u64).filter(|k| k % 4 == t as u64 && k % 1000 != 3).count().to_string());
    }
    assert_eq!(counted(types.clone()).await, truth, "counts by type after the DELETE");
    assert_eq!(counted(format!("{types} SETTINGS optimize_use_projections = 0")).await, truth, "the table's own");
}

/// A funnel's unique recipients when deliveries left it: `funnel_recipients` rows as the
/// aggregator writes them, a batch per insert (+1 as a delivery enters an id, -1 as it leaves
/// for another), not merged yet: a recipient whose rows sum to 0 is not the id's, one whose
/// rows sum above 0 is, once (`api/src/db/catalog.rs`: such an id is recounted exactly); and
/// the same once merged, when no -1 row is left and the distinct recipients are counted.
#[tokio::test(flavor = "multi_thread")]
async fn funnel_recipients_who_left_are_not_counted() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "api-funnel-exits").await;
    p.query("SYSTEM STOP MERGES funnel_recipients").await;
    let funnel = |id: &str, deliveries: i64| format!("('acme', 'broadcast', '{id}', '', {deliveries}, now64(3), 1)");
    p.query(&format!(
        "INSERT INTO funnels (tenant, dimension, id, cost_unit, deliveries, last_status_at, changes) VALUES {}, {}",
        funnel("b-plain", 3),
        funnel("b-moved", 2)
    ))
    .await;
    let batches: [&[(&str, &str, i64)]; 4] = [
        // b-plain: r1, and r2 twice (two deliveries to one person); b-moved: r1, r3, r4
        &[("b-plain", "r1", 1), ("b-plain", "r2", 1), ("b-moved", "r1", 1), ("b-moved", "r3", 1), ("b-moved", "r4", 1)],
        &[("b-plain", "r2", 1), ("b-moved", "r4", 1)],
        // both of r4's deliveries leave b-moved (late send records name another broadcast);
        // r3's leaves and a second one of r3's enters
        &[("b-moved", "r4", -1), ("b-moved", "r3", -1)],
        &[("b-moved", "r4", -1), ("b-moved", "r3", 1)],
    ];
    for rows in batches {
        let values: Vec<String> = rows.iter().map(|(id, r, n)| format!("('acme', 'broadcast', '{id}', '{r}@x.io', {n})")).collect();
        p.query(&format!("INSERT INTO funnel_recipients (tenant, dimension, id, recipient, deliveries) VALUES {}", values.join(", "))).await;
    }
    assert!(p.number("SELECT count() FROM funnel_recipients WHERE deliveries < 0").await >= 3, "the -1 rows stand apart");
    let (url, _api) = p.start_api(KEYS).await;
    let api = Api { url, client: reqwest::Client::new() };
    let people = |api: &Api| {
        let api = Api { url: api.url.clone(), client: api.client.clone() };
        async move {
            let items = api.all_pages("acme-key", "/v1/broadcasts", "items", async |_| {}).await;
            items.iter().map(|i| (i["id"].as_str().unwrap().to_string(), n(&i["funnel"]["unique_recipients"]))).collect::<BTreeMap<_, _>>()
        }
    };
    let want = BTreeMap::from([("b-moved".to_string(), 2), ("b-plain".to_string(), 2)]);
    assert_eq!(people(&api).await, want, "unmerged: r4 left b-moved, r3 is in it once, r2 is one person");
    p.query("SYSTEM START MERGES funnel_recipients").await;
    p.query("OPTIMIZE TABLE funnel_recipients FINAL").await;
    assert_eq!(p.number("SELECT count() FROM funnel_recipients WHERE deliveries < 0").await, 0, "merged: r4's rows summed to 0 and dropped");
    assert_eq!(people(&api).await, want, "merged");
}
