//! The whole pipeline under faults, under load: a private broker (tansu, durable sqlite storage),
//! ClickHouse behind a proxy (the aggregators' only way to it), ingest, TWO normalizers and TWO
//! aggregators (same consumer groups). An open-loop load client posts a steady stream of webhooks
//! (SES via SNS, signed; SendGrid, signed; the sender's own send records, API key), with SNS
//! re-deliveries of the same notification and provider events posted before their send record,
//! and retries every request not answered 2xx with a small backoff, as providers do.
//!
//! While it runs, at random moments (seeded RNG, the seed printed; `SENDTRACE_FAULTS_SEED`
//! replays one): SIGKILL + restart of ingest, of one normalizer, of one aggregator; the broker
//! SIGKILLed and started again on its files; ClickHouse away (proxy down); SIGTERM of each
//! service, which must exit 0 within [`TERM_EXIT_WITHIN`] (drained, committed) before it is
//! started again.
//!
//! Then every table is compared with the brute-force truth of what was answered 2xx: events
//! exactly once, deliveries' statuses, day counters, suppressions for hard bounces. Figures
//! are printed (run with `--nocapture`, or read the test's output in nextest).
//!
//! Short mode (default, ~3 min) runs in the suite; `SENDTRACE_FAULTS_LONG=1` is the long mode
//! (~10 min of load, 60 s ClickHouse outages, more injections) that RELIABILITY.md reports.

use e2e::broker::Broker;
use e2e::generate::Rng;
use e2e::proxy::Proxy;
use e2e::stack::free_port;
use e2e::{samples, ses, wait_until, Pipeline, Service, Stack};
use schemas::{BounceClass, EventType, ProviderId, Route};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TENANT: &str = "acme";
/// Longest time a service may take from SIGTERM to its exit (drain, commit, exit 0).
const TERM_EXIT_WITHIN: Duration = Duration::from_secs(30);
/// First retry backoff of the load client; doubled per attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Timeout of one POST attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The parameters of one run.
#[derive(Debug, Clone)]
struct Mode {
    name: &'static str,
    /// Requests started per second (open loop: a new logical webhook every 1/rate s, whatever
    /// the earlier ones are doing).
    rate_per_s: u64,
    load: Duration,
    kills_each: usize,
    broker_restarts: usize,
    broker_down: Duration,
    clickhouse_outages: usize,
    clickhouse_down: Duration,
    terms_each: usize,
}

impl Mode {
    fn from_env() -> Mode {
        if std::env::var("SENDTRACE_FAULTS_LONG").is_ok_and(|v| v == "1") {
            Mode {
                name: "long",
                rate_per_s: 50,
                load: Duration::from_secs(540),
                kills_each: 3,
                broker_restarts: 2,
                broker_down: Duration::from_secs(15),
                clickhouse_outages: 2,
                clickhouse_down: Duration::from_secs(60),
                terms_each: 2,
            }
        } else {
            Mode {
                name: "short",
                rate_per_s: 30,
                load: Duration::from_secs(100),
                kills_each: 2,
                broker_restarts: 1,
                broker_down: Duration::from_secs(5),
                clickhouse_outages: 1,
                clickhouse_down: Duration::from_secs(10),
                terms_each: 1,
            }
        }
    }
}

/// One event a webhook carries, by what the truth can name before any id is computed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    provider: &'static str,
    message_id: String,
    event_type: EventType,
    bounce_class: Option<BounceClass>,
    recipient: String,
}

impl Expected {
    fn key(&self) -> (String, String, String) {
        (self.provider.to_string(), self.message_id.clone(), self.event_type.as_str().to_string())
    }
}

#[derive(Debug, Clone)]
enum Signing {
    /// Headers fixed at build time (SNS: signed body; API key).
    Fixed(Vec<(String, String)>),
    /// SendGrid: signed with a fresh timestamp at every attempt (its signatures expire).
    SendGrid,
}

/// One logical webhook: the same bytes at every attempt.
#[derive(Debug, Clone)]
struct Webhook {
    path: String,
    signing: Signing,
    body: Vec<u8>,
    event: Expected,
    /// An SNS re-delivery of an earlier notification (same MessageId).
    redelivery: bool,
}

fn sns_headers(body: &[u8]) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).expect("SNS JSON");
    vec![
        ("content-type".into(), "text/plain; charset=UTF-8".into()),
        ("x-amz-sns-message-type".into(), v["Type"].as_str().unwrap_or_default().into()),
        ("x-amz-sns-message-id".into(), v["MessageId"].as_str().unwrap_or_default().into()),
    ]
}

/// The webhooks of `deliveries` deliveries, in posting order: per delivery a send record and one
/// or two provider events, the order locally shuffled (provider events often before the send
/// record), plus SNS re-deliveries of about one SES notification in seven.
fn webhooks(seed: u64, deliveries: usize) -> Vec<Webhook> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let now = chrono::Utc::now();
    let mut slotted: Vec<(u64, Webhook)> = Vec::new();
    for i in 0..deliveries {
        let ses = i % 2 == 0;
        let provider = if ses { "ses" } else { "sendgrid" };
        let message_id = format!("flt-{seed}-{i}");
        let recipient = format!("r{i}@faults.example");
        let hard_bounce = rng.below(10) == 0;
        let base = (i as u64) * 25;
        let mut local: Vec<(u64, Webhook)> = Vec::new();
        let ev = |t: EventType, b: Option<BounceClass>| Expected { provider, message_id: message_id.clone(), event_type: t, bounce_class: b, recipient: recipient.clone() };

        // the sender's own send record
        let record = json!([{
            "channel": "email", "provider": provider, "provider_message_id": message_id, "recipient": recipient,
            "sent_at": (now - chrono::Duration::minutes(50)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "broadcast": format!("b{}", i % 3),
        }]);
        let headers = vec![("content-type".into(), "application/json".into()), ("x-api-key".into(), samples::api_key(TENANT))];
        let w = Webhook { path: Route::Sends.path(ProviderId::Sender, TENANT), signing: Signing::Fixed(headers), body: record.to_string().into_bytes(), event: ev(EventType::Queued, None), redelivery: false };
        local.push((base + rng.below(60), w));
        if ses {
            let mut notes = vec![if hard_bounce {
                ("event_bounce_permanent.json", ev(EventType::Bounced, Some(BounceClass::Hard)))
            } else {
                ("event_delivery.json", ev(EventType::Delivered, None))
            }];
            if !hard_bounce && rng.below(3) == 0 {
                notes.push(("event_open.json", ev(EventType::Opened, None)));
            }
            for (fixture, event) in notes {
                let body = ses::body_at(fixture, &message_id, Some(&[&recipient]), now - chrono::Duration::minutes(45));
                let w = Webhook { path: format!("/webhooks/ses/{TENANT}"), signing: Signing::Fixed(sns_headers(&body)), body, event, redelivery: false };
                if rng.below(7) == 0 {
                    // SNS delivers the same notification again later
                    let again = Webhook { redelivery: true, ..w.clone() };
                    local.push((base + 60 + rng.below(200), again));
                }
                local.push((base + rng.below(60), w));
            }
        } else {
            let t = (now - chrono::Duration::minutes(40)).timestamp();
            let item = if hard_bounce {
                json!({"email": recipient, "timestamp": t, "event": "bounce", "type": "bounce", "status": "5.0.0", "reason": "500 unknown recipient",
                       "sg_event_id": format!("{message_id}-b"), "sg_message_id": message_id})
            } else {
                json!({"email": recipient, "timestamp": t, "event": "delivered", "response": "250 OK", "sg_event_id": format!("{message_id}-d"), "sg_message_id": message_id})
            };
            let event = if hard_bounce { ev(EventType::Bounced, Some(BounceClass::Hard)) } else { ev(EventType::Delivered, None) };
            let w = Webhook { path: Route::Webhook.path(ProviderId::Sendgrid, TENANT), signing: Signing::SendGrid, body: json!([item]).to_string().into_bytes(), event, redelivery: false };
            local.push((base + rng.below(60), w));
        }
        slotted.extend(local);
    }
    slotted.sort_by_key(|(slot, _)| *slot);
    slotted.into_iter().map(|(_, w)| w).collect()
}

/// What happened to one logical webhook.
#[derive(Debug, Clone, Default)]
struct Outcome {
    attempts: u32,
    /// Answers other than 2xx (5xx, connection refused or cut, timeouts).
    refused: u32,
    /// 4xx answers: never expected (every request is valid).
    client_errors: Vec<(u16, String)>,
    /// When it was finally answered 2xx.
    accepted_at: Option<Instant>,
}

async fn post_until_accepted(client: reqwest::Client, url: String, w: Webhook, give_up_at: Instant) -> Outcome {
    let mut out = Outcome::default();
    let mut backoff = FIRST_BACKOFF;
    loop {
        out.attempts += 1;
        let headers = match &w.signing {
            Signing::Fixed(h) => h.clone(),
            Signing::SendGrid => samples::sendgrid_headers(TENANT, &w.body),
        };
        let mut req = client.post(format!("{url}{}", w.path)).timeout(ATTEMPT_TIMEOUT).body(w.body.clone());
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                out.accepted_at = Some(Instant::now());
                return out;
            }
            Ok(r) if r.status().is_client_error() => {
                let s = r.status().as_u16();
                out.client_errors.push((s, r.text().await.unwrap_or_default()));
                return out;
            }
            _ => out.refused += 1,
        }
        if Instant::now() + backoff > give_up_at {
            return out;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// First time each (provider, message id, event type) was seen in `events`, polled every second.
type Seen = Arc<Mutex<BTreeMap<(String, String, String), Instant>>>;

async fn poll_visibility(stack: Stack, database: String, seen: Seen, stop: tokio_util_stop::Stop) {
    while !stop.is_set() {
        let rows = stack.rows(&database, "SELECT DISTINCT provider, provider_message_id AS m, event_type AS t FROM events WHERE provider_message_id LIKE 'flt-%'").await;
        let now = Instant::now();
        {
            let mut s = seen.lock().unwrap();
            for r in rows {
                let k = (r["provider"].as_str().unwrap_or_default().to_string(), r["m"].as_str().unwrap_or_default().to_string(), r["t"].as_str().unwrap_or_default().to_string());
                s.entry(k).or_insert(now);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A stop flag without another dependency.
mod tokio_util_stop {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    #[derive(Clone, Default)]
    pub struct Stop(Arc<AtomicBool>);
    impl Stop {
        pub fn set(&self) {
            self.0.store(true, Ordering::SeqCst)
        }
        pub fn is_set(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    KillIngest,
    KillNormalizer,
    KillAggregator,
    BrokerRestart,
    ClickHouseAway,
    TermIngest,
    TermNormalizer,
    TermAggregator,
}

/// One injected fault: what, when (since the load started), how long until the service was back.
struct Injected {
    fault: Fault,
    at: Duration,
    took: Duration,
    note: String,
}

/// SIGTERM `svc`: it must exit 0 within [`TERM_EXIT_WITHIN`].
fn terminate(svc: Option<Service>, what: &str) -> String {
    let mut svc = svc.unwrap_or_else(|| panic!("{what} running"));
    let (status, took) = svc.terminate(TERM_EXIT_WITHIN);
    let status = status.unwrap_or_else(|| panic!("{what} did not exit within {TERM_EXIT_WITHIN:?} of SIGTERM"));
    assert!(status.success(), "{what} exits 0 after SIGTERM (drained and committed), got {status}");
    format!("exit 0 in {took:.1?}")
}

async fn inject(p: &mut Pipeline, broker: &mut Broker, proxy: &Proxy, mode: &Mode, fault: Fault) -> String {
    match fault {
        Fault::KillIngest => {
            p.ingest.as_mut().expect("ingest").kill();
            p.start_ingest().await;
            String::new()
        }
        Fault::KillNormalizer => {
            p.normalizer.as_mut().expect("normalizer").kill();
            p.start_normalizer().await;
            String::new()
        }
        Fault::KillAggregator => {
            p.aggregator.as_mut().expect("aggregator").kill();
            p.start_aggregator().await;
            String::new()
        }
        Fault::BrokerRestart => {
            broker.kill();
            tokio::time::sleep(mode.broker_down).await;
            broker.restart();
            format!("down {:?}", mode.broker_down)
        }
        Fault::ClickHouseAway => {
            proxy.set_up(false);
            tokio::time::sleep(mode.clickhouse_down).await;
            proxy.set_up(true);
            format!("away {:?}", mode.clickhouse_down)
        }
        Fault::TermIngest => {
            let note = terminate(p.ingest.take(), "ingest");
            p.start_ingest().await;
            note
        }
        Fault::TermNormalizer => {
            let note = terminate(p.normalizer.take(), "normalizer");
            p.start_normalizer().await;
            note
        }
        Fault::TermAggregator => {
            let note = terminate(p.aggregator.take(), "aggregator");
            p.start_aggregator().await;
            note
        }
    }
}

fn number(v: &serde_json::Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|x| x.parse().ok())).unwrap_or(0)
}

fn text(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_stage_killed_broker_restarted_clickhouse_away_nothing_lost_or_counted_twice() {
    let mode = Mode::from_env();
    let seed: u64 = std::env::var("SENDTRACE_FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| chrono::Utc::now().timestamp_micros() as u64);
    println!("faults: mode {} seed {seed} (SENDTRACE_FAULTS_SEED={seed} replays the schedule)", mode.name);
    let mut rng = Rng::new(seed);

    // a private broker (durable files) and ClickHouse behind a proxy for the aggregators
    let base = Stack::from_env();
    let dir = tempfile::Builder::new().prefix("faults-broker").tempdir().expect("tempdir");
    let mut broker = Broker::start(free_port(), dir.path(), "faults-tansu");
    let stack = Stack { brokers: format!("127.0.0.1:{}", broker.port), ..base };
    let proxy = Proxy::start(stack.clickhouse_url.trim_start_matches("http://").to_string()).await;
    let agg_env = vec![
        ("SENDTRACE_CLICKHOUSE__URL".to_string(), format!("http://127.0.0.1:{}", proxy.port)),
        ("SENDTRACE_MAX_RETRY_BACKOFF_MS".to_string(), "1000".to_string()),
    ];
    let mut p = Pipeline::with_aggregator_env(&stack, "faults", agg_env).await;
    p.start_all().await;
    let mut normalizer_b = p.spawn_second_normalizer("b").await;
    let mut aggregator_b = p.spawn_second_aggregator("b").await;

    // the load: one logical webhook every 1/rate s, each retried until answered 2xx
    let deliveries = (mode.rate_per_s * mode.load.as_secs()) as usize * 10 / 25;
    let all = webhooks(seed, deliveries);
    let interval = mode.load / all.len().max(1) as u32;
    let seen: Seen = Arc::default();
    let stop = tokio_util_stop::Stop::default();
    let poller = tokio::spawn(poll_visibility(stack.clone(), p.database.clone(), seen.clone(), stop.clone()));
    let t0 = Instant::now();
    let give_up_at = t0 + mode.load + Duration::from_secs(180);
    let load = {
        let url = p.ingest_url.clone();
        let all = all.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client");
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut tasks = Vec::with_capacity(all.len());
            for w in all {
                tick.tick().await;
                tasks.push(tokio::spawn(post_until_accepted(client.clone(), url.clone(), w, give_up_at)));
            }
            let mut out = Vec::with_capacity(tasks.len());
            for t in tasks {
                out.push(t.await.expect("load task"));
            }
            out
        })
    };

    // the faults, in a seeded random order at seeded random moments over the load
    let mut faults = Vec::new();
    for _ in 0..mode.kills_each {
        faults.extend([Fault::KillIngest, Fault::KillNormalizer, Fault::KillAggregator]);
    }
    for _ in 0..mode.terms_each {
        faults.extend([Fault::TermIngest, Fault::TermNormalizer, Fault::TermAggregator]);
    }
    faults.extend(std::iter::repeat_n(Fault::BrokerRestart, mode.broker_restarts));
    faults.extend(std::iter::repeat_n(Fault::ClickHouseAway, mode.clickhouse_outages));
    for i in (1..faults.len()).rev() {
        faults.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut injected: Vec<Injected> = Vec::new();
    let slot = mode.load / (faults.len() as u32 + 1);
    for (i, fault) in faults.iter().enumerate() {
        // a random moment in this fault's slot, never before the previous one is over
        let when = slot * i as u32 + slot.mul_f64(0.2 + 0.8 * (rng.below(1000) as f64 / 1000.0));
        if let Some(wait) = when.checked_sub(t0.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let at = t0.elapsed();
        let started = Instant::now();
        let note = inject(&mut p, &mut broker, &proxy, &mode, *fault).await;
        let took = started.elapsed();
        println!("faults: t={:>6.1}s {fault:?} ({note}; back after {took:.1?})", at.as_secs_f64());
        injected.push(Injected { fault: *fault, at, took, note });
    }
    let outcomes = load.await.expect("load");
    let load_took = t0.elapsed();

    // what was answered 2xx: the truth
    let client_errors: Vec<_> = outcomes.iter().flat_map(|o| o.client_errors.iter()).take(5).collect();
    assert!(client_errors.is_empty(), "no valid request is refused with a 4xx: {client_errors:?}");
    let accepted: Vec<(&Webhook, Instant)> = all.iter().zip(&outcomes).filter_map(|(w, o)| Some((w, o.accepted_at?))).collect();
    let never: Vec<_> = all.iter().zip(&outcomes).filter(|(_, o)| o.accepted_at.is_none()).map(|(w, o)| (&w.event, o.attempts)).take(5).collect();
    assert!(never.is_empty(), "every webhook is finally answered 2xx (retried until {:?} after the load): {never:?}", give_up_at - t0);
    let mut expected: BTreeMap<(String, String, String), Expected> = BTreeMap::new();
    for (w, _) in &accepted {
        expected.insert(w.event.key(), w.event.clone());
    }
    let want = expected.len() as u64;

    // wait until every expected event is visible and ClickHouse stops changing
    let db_state = || async {
        let n = p.number("SELECT count() FROM events").await;
        let c = p.number("SELECT toUInt64(sum(events)) FROM counters WHERE period = 'day'").await;
        let d = p.number("SELECT count() FROM deliveries FINAL").await;
        let s = p.number("SELECT count() FROM suppressions FINAL").await;
        (n, c, d, s)
    };
    wait_until("every accepted event in ClickHouse", Duration::from_secs(300), || async {
        (p.number("SELECT uniqExact(event_id) FROM events").await >= want).then_some(())
    })
    .await;
    let mut last = db_state().await;
    let mut stable_since = Instant::now();
    let settle_deadline = Instant::now() + Duration::from_secs(120);
    while stable_since.elapsed() < Duration::from_secs(6) {
        assert!(Instant::now() < settle_deadline, "ClickHouse kept changing for 120 s: {last:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = db_state().await;
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
    }
    stop.set();
    let _ = poller.await;

    // events exactly once
    let found: BTreeMap<(String, String, String), u64> = p
        .rows("SELECT provider, provider_message_id AS m, event_type AS t, count() AS n FROM events FINAL GROUP BY provider, m, t")
        .await
        .into_iter()
        .map(|r| ((text(&r["provider"]), text(&r["m"]), text(&r["t"])), number(&r["n"])))
        .collect();
    let lost: Vec<_> = expected.keys().filter(|k| !found.contains_key(*k)).collect();
    let duplicated: Vec<_> = found.iter().filter(|(_, n)| **n > 1).collect();
    let unexpected: Vec<_> = found.keys().filter(|k| !expected.contains_key(*k)).collect();
    let rows_final = p.number("SELECT count() FROM events FINAL").await;
    let ids = p.number("SELECT uniqExact(event_id) FROM events").await;
    let first_rows = p.number("SELECT count() FROM events WHERE reattributed = 0").await;

    // latency: from a webhook's 2xx to its event's first visibility
    let seen = seen.lock().unwrap().clone();
    let mut latencies: Vec<(Duration, Duration)> = accepted
        .iter()
        .filter_map(|(w, at)| seen.get(&w.event.key()).map(|v| (v.saturating_duration_since(*at), at.duration_since(t0))))
        .collect();
    latencies.sort();
    let worst = latencies.last().copied().unwrap_or_default();
    let p99 = latencies.get(latencies.len() * 99 / 100).map(|l| l.0).unwrap_or_default();

    let sent: u64 = outcomes.iter().map(|o| o.attempts as u64).sum();
    let refused: u64 = outcomes.iter().map(|o| o.refused as u64).sum();
    let retried = outcomes.iter().filter(|o| o.attempts > 1).count();
    let redeliveries = accepted.iter().filter(|(w, _)| w.redelivery).count();
    println!("faults: load {load_took:.1?} at {} req/s: {} logical webhooks ({} SNS re-deliveries), {sent} requests sent, {} accepted, {retried} retried, {refused} refused (non-2xx or no answer)", mode.rate_per_s, all.len(), redeliveries, accepted.len());
    let mut by_fault: BTreeMap<Fault, usize> = BTreeMap::new();
    for i in &injected {
        *by_fault.entry(i.fault).or_default() += 1;
    }
    println!("faults: injected {by_fault:?}");
    for i in &injected {
        println!("faults:   t={:>6.1}s {:?} {} (back after {:.1?})", i.at.as_secs_f64(), i.fault, i.note, i.took);
    }
    println!(
        "faults: events expected {want}, found {}, lost {}, duplicated {}, unexpected {}; rows FINAL {rows_final}, distinct event ids {ids}, first-written rows {first_rows}",
        found.len(),
        lost.len(),
        duplicated.len(),
        unexpected.len()
    );
    println!("faults: 2xx → visible in ClickHouse: worst {:.1?} (accepted at t={:.1}s), p99 {p99:.1?}", worst.0, worst.1.as_secs_f64());

    assert!(lost.is_empty(), "{} accepted events lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    assert!(duplicated.is_empty(), "{} events counted twice, e.g. {:?}", duplicated.len(), &duplicated[..duplicated.len().min(5)]);
    assert!(unexpected.is_empty(), "events nobody accepted: {:?}", &unexpected[..unexpected.len().min(5)]);
    assert_eq!(rows_final, want, "event rows FINAL");
    assert_eq!(ids, want, "uniqExact(event_id) = the truth: no event stored under two ids");
    assert!(first_rows <= want, "at most one first-written row per event ({first_rows} of {want})");
    assert_eq!(latencies.len(), accepted.len(), "every accepted webhook's event was seen by the poller");

    // deliveries' statuses: the highest-ranked event of each delivery, whatever the order
    let mut best: BTreeMap<String, (u8, EventType)> = BTreeMap::new();
    for e in expected.values() {
        let key = schemas::ids::delivery_key(TENANT, e.provider, &e.message_id, &e.recipient);
        let r = aggregator::rules::rank(e.event_type, e.bounce_class);
        let cur = best.entry(key).or_insert((0, EventType::Unknown));
        if r > cur.0 {
            *cur = (r, e.event_type);
        }
    }
    let want_status: BTreeMap<String, String> = best.into_iter().map(|(k, (_, t))| (k, t.as_str().to_string())).collect();
    let got_status: BTreeMap<String, String> =
        p.rows("SELECT delivery_key, status FROM deliveries FINAL").await.into_iter().map(|r| (text(&r["delivery_key"]), text(&r["status"]))).collect();
    let wrong: Vec<_> = want_status.iter().filter(|(k, v)| got_status.get(*k) != Some(v)).take(5).map(|(k, v)| (k, v, got_status.get(k))).collect();
    assert!(wrong.is_empty(), "delivery statuses differ from the truth (key, want, got), e.g. {wrong:?}");
    assert_eq!(got_status.len(), want_status.len(), "one delivery row per delivery");

    // day counters = event rows = the truth, per event type
    let mut want_types: BTreeMap<String, u64> = BTreeMap::new();
    for e in expected.values() {
        *want_types.entry(e.event_type.as_str().to_string()).or_default() += 1;
    }
    let pr = &p;
    let by_type = |sql: &'static str| async move { pr.rows(sql).await.into_iter().map(|r| (text(&r["t"]), number(&r["n"]))).filter(|(_, n)| *n > 0).collect::<BTreeMap<_, _>>() };
    assert_eq!(by_type("SELECT event_type AS t, toUInt64(sum(events)) AS n FROM counters WHERE period = 'day' GROUP BY t").await, want_types, "day counters");
    assert_eq!(by_type("SELECT event_type AS t, count() AS n FROM events FINAL GROUP BY t").await, want_types, "event rows by type");
    for period in ["week", "month"] {
        assert_eq!(p.number(&format!("SELECT toUInt64(sum(events)) FROM counters WHERE period = '{period}'")).await, want, "{period} total");
    }

    // hard bounces suppress their address
    let want_suppressed: BTreeSet<String> = expected.values().filter(|e| e.bounce_class == Some(BounceClass::Hard)).map(|e| e.recipient.clone()).collect();
    let got_suppressed: BTreeSet<String> = p.rows("SELECT address FROM suppressions FINAL WHERE reason = 'hard_bounce'").await.into_iter().map(|r| text(&r["address"])).collect();
    assert_eq!(got_suppressed, want_suppressed, "suppressions: exactly the hard-bounced addresses");
    println!("faults: deliveries {} (statuses = truth), suppressions {} (= hard bounces), day counters = event rows = truth by type {want_types:?}", want_status.len(), want_suppressed.len());

    // every SIGTERMed service exited 0 (asserted at injection); stop the rest in order
    for (svc, what) in [(p.ingest.take(), "ingest"), (p.normalizer.take(), "normalizer"), (p.aggregator.take(), "aggregator")] {
        terminate(svc, what);
    }
    normalizer_b.stop();
    aggregator_b.stop();
    broker.kill();
}
