//! SIGTERM drain, under traffic, for each stage: ingest, then the normalizer, then the aggregator
//! is sent SIGTERM while SES notifications keep coming (each retried until answered 2xx).
//!
//! What must hold: each exits 0 within [`TERM_EXIT_WITHIN`]; after its restart nothing is lost
//! and nothing is repeated, counted exactly where a repeat would show: every accepted body once on
//! the raw topic (ingest answered what it had stored, refused what it had not), every event once
//! on the events topic (the normalizer committed what it had produced before exiting, so its
//! successor did not produce it again), every event once in `events` without FINAL (the
//! aggregator finished its batch and committed, so its successor did not write it again).

use e2e::kafka::read_all;
use e2e::{ses, wait_until, Pipeline, Stack};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Longest time a service may take from SIGTERM to its exit.
const TERM_EXIT_WITHIN: Duration = Duration::from_secs(30);
/// Webhooks started per second (open loop).
const RATE_PER_S: u64 = 40;
const LOAD: Duration = Duration::from_secs(24);

async fn post_until_accepted(url: String, body: Vec<u8>, give_up_at: Instant) -> (bool, u32) {
    let client = reqwest::Client::new();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("SNS JSON");
    let mut attempts = 0;
    loop {
        attempts += 1;
        let r = client
            .post(format!("{url}/webhooks/ses/acme"))
            .timeout(Duration::from_secs(10))
            .header("content-type", "text/plain; charset=UTF-8")
            .header("x-amz-sns-message-type", v["Type"].as_str().unwrap_or_default())
            .header("x-amz-sns-message-id", v["MessageId"].as_str().unwrap_or_default())
            .body(body.clone())
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => return (true, attempts),
            Ok(r) => assert!(r.status().is_server_error(), "a valid notification is never refused with {}", r.status()),
            Err(_) => {}
        }
        if Instant::now() > give_up_at {
            return (false, attempts);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_stage_drains_on_sigterm_under_traffic_nothing_lost_or_repeated() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "drain").await;
    p.start_all().await;

    let n = (RATE_PER_S * LOAD.as_secs()) as usize;
    let bodies: Vec<Vec<u8>> = (0..n).map(|i| ses::body("event_delivery.json", &format!("drain-{i}"), Some(&[&format!("d{i}@drain.example")]))).collect();
    let t0 = Instant::now();
    let give_up_at = t0 + LOAD + Duration::from_secs(120);
    let load = {
        let (url, bodies) = (p.ingest_url.clone(), bodies.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LOAD / n as u32);
            let mut tasks = Vec::new();
            for b in bodies {
                tick.tick().await;
                tasks.push(tokio::spawn(post_until_accepted(url.clone(), b, give_up_at)));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.expect("load task"));
            }
            out
        })
    };

    // SIGTERM each stage in turn while the load runs; each exits 0 in time, then starts again
    for (at, stage) in [(5, "ingest"), (11, "normalizer"), (17, "aggregator")] {
        if let Some(wait) = Duration::from_secs(at).checked_sub(t0.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let svc = match stage {
            "ingest" => p.ingest.take(),
            "normalizer" => p.normalizer.take(),
            _ => p.aggregator.take(),
        };
        let (status, took) = svc.expect("running").terminate(TERM_EXIT_WITHIN);
        let status = status.unwrap_or_else(|| panic!("{stage} did not exit within {TERM_EXIT_WITHIN:?} of SIGTERM"));
        assert!(status.success(), "{stage} exits 0 after SIGTERM, got {status}");
        println!("sigterm_drain: {stage} SIGTERMed at t={:.1}s under load: exit 0 in {took:.1?}", t0.elapsed().as_secs_f64());
        match stage {
            "ingest" => p.start_ingest().await,
            "normalizer" => p.start_normalizer().await,
            _ => p.start_aggregator().await,
        }
    }
    let outcomes = load.await.expect("load");
    let accepted = outcomes.iter().filter(|(ok, _)| *ok).count();
    let retried = outcomes.iter().filter(|(_, a)| *a > 1).count();
    assert_eq!(accepted, n, "every notification finally answered 2xx");
    println!("sigterm_drain: {n} notifications, all accepted, {retried} needed a retry");

    // ClickHouse: every event once, and no row written twice (no FINAL)
    wait_until("every event in ClickHouse", Duration::from_secs(180), || async { (p.number("SELECT uniqExact(event_id) FROM events").await >= n as u64).then_some(()) }).await;
    let stable = || async { (p.number("SELECT count() FROM events").await, p.number("SELECT toUInt64(sum(events)) FROM counters WHERE period = 'day'").await) };
    let mut last = stable().await;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let now = stable().await;
        if now == last {
            break;
        }
        last = now;
    }
    assert_eq!(p.number("SELECT uniqExact(event_id) FROM events").await, n as u64, "events");
    assert_eq!(p.number("SELECT count() FROM events").await, n as u64, "no event row written twice (no FINAL)");
    assert_eq!(p.number("SELECT toUInt64(sum(events)) FROM counters WHERE period = 'day'").await, n as u64, "day counters");
    assert_eq!(p.number("SELECT count() FROM deliveries FINAL WHERE status = 'delivered'").await, n as u64, "deliveries");

    // topics: each accepted body once on the raw topic, each event once on the events topic
    let raw = read_all(&stack.brokers, &p.raw_topic, 4, Duration::from_secs(2));
    let mut by_body: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for (_, v) in &raw {
        *by_body.entry(schemas::avro::decode_raw(v).expect("raw envelope").body).or_default() += 1;
    }
    let missing = bodies.iter().filter(|b| !by_body.contains_key(*b)).count();
    let repeated = by_body.values().filter(|c| **c > 1).count();
    println!("sigterm_drain: raw topic {} records for {n} accepted bodies ({missing} missing, {repeated} stored twice)", raw.len());
    assert_eq!((missing, repeated, raw.len()), (0, 0, n), "raw topic: every accepted body exactly once");
    let events = read_all(&stack.brokers, &p.events_topic, 4, Duration::from_secs(2));
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for (_, v) in &events {
        *by_id.entry(schemas::avro::decode_event(v).expect("event").event_id).or_default() += 1;
    }
    let repeated = by_id.values().filter(|c| **c > 1).count();
    println!("sigterm_drain: events topic {} records, {} distinct ({repeated} produced twice)", events.len(), by_id.len());
    assert_eq!((by_id.len(), repeated), (n, 0), "events topic: every event exactly once");

    for svc in [p.ingest.take(), p.normalizer.take(), p.aggregator.take()].into_iter().flatten() {
        let mut svc = svc;
        let (status, _) = svc.terminate(TERM_EXIT_WITHIN);
        assert!(status.is_some_and(|s| s.success()), "{} exits 0 on SIGTERM when idle", svc.name);
    }
}
