//! Hostile records produced straight onto the events topic, between good ones: every good
//! one reaches ClickHouse (exactly once: rows and counters equal the brute-force truth), the
//! aggregator stays healthy, and each hostile one is on the dead-letter topic with its reason.
//!
//! The good ones are themselves hard on the aggregator: 400-byte delivery keys, 300-byte
//! addresses, hard and soft bounces (suppression and soft-bounce lookups by address) and
//! events spread over 150 months, all on one partition so that they form one batch: their
//! `IN` lists are several times ClickHouse's `max_query_size` and their months more than
//! its default `max_partitions_per_insert_block`.

use e2e::{kafka::produce_in_order, kafka::read_all, wait_until, Pipeline, Stack};
use schemas::{BounceClass, Event, EventType};
use std::collections::BTreeMap;
use std::time::Duration;

const HARD: usize = 900;
const SOFT: usize = 900;
const MONTHS: usize = 150;
/// 2026-11-01T00:00:00Z
const T0: i64 = 1_793_491_200_000;

fn good(i: usize, ty: EventType, bounce: Option<BounceClass>, domain: &str, t: i64) -> Event {
    let mut e = schemas::testkit::event(&format!("good-{i:06}"), &format!("{i:0>400}"), ty, t);
    e.tenant = "acme".into();
    e.provider_message_id = format!("m-{i}");
    e.recipient = format!("{i:0>288}@{domain}");
    e.bounce_class = bounce;
    e
}

/// The hostile records and the reason code each must be dead-lettered with.
fn hostile() -> Vec<(Option<Vec<u8>>, &'static str)> {
    let base = || good(999_999, EventType::Delivered, None, "hostile.example", T0);
    let enc = |f: &dyn Fn(&mut Event)| {
        let mut e = base();
        f(&mut e);
        Some(schemas::avro::encode_event(&e).expect("encodes"))
    };
    vec![
        (Some(b"not an avro record".to_vec()), "undecodable"),
        (None, "undecodable"),
        (enc(&|e: &mut Event| e.occurred_at = i64::MAX), "time_out_of_range"),
        (enc(&|e: &mut Event| { e.event_type = EventType::Opened; e.occurred_at = i64::MIN }), "time_out_of_range"),
        (enc(&|e: &mut Event| e.received_at = -5), "time_out_of_range"),
        (enc(&|e: &mut Event| e.occurred_at = 32_503_680_000_000), "time_out_of_range"), // year 3000
        (enc(&|e: &mut Event| e.recipient = format!("{}@example.com", "a".repeat(400))), "recipient_too_long"),
        (enc(&|e: &mut Event| e.delivery_key = "k".repeat(100_000)), "field_too_long"),
        (enc(&|e: &mut Event| e.user_agent = Some("u".repeat(20_000))), "field_too_long"),
        (enc(&|e: &mut Event| e.labels = (0..100).map(|i| format!("l{i}")).collect()), "too_many_labels"),
        (enc(&|e: &mut Event| e.metadata = (0..40).map(|i| (format!("k{i}"), "v".repeat(1000))).collect()), "metadata_too_large"),
        (enc(&|e: &mut Event| e.tenant.clear()), "missing_field"),
        (enc(&|e: &mut Event| e.cost = Some(schemas::Money::new(rust_decimal::Decimal::from(10i64.pow(15)), "USD"))), "cost_out_of_range"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_events_are_dead_lettered_and_good_ones_land() {
    let stack = Stack::from_env();
    // a long linger: everything produced forms one batch
    let env = vec![("SENDTRACE_BATCH_LINGER_MS".to_string(), "3000".to_string())];
    let mut p = Pipeline::with_aggregator_env(&stack, "agg-poison", env).await;
    p.start_aggregator().await;

    let mut good_events: Vec<Event> = Vec::new();
    for i in 0..HARD {
        good_events.push(good(i, EventType::Bounced, Some(BounceClass::Hard), "hard.example", T0 + i as i64 * 60_000));
    }
    for i in HARD..HARD + SOFT {
        good_events.push(good(i, EventType::Bounced, Some(BounceClass::Soft), "soft.example", T0 + i as i64 * 60_000));
    }
    for k in 0..MONTHS {
        // the 15th of each month from 2027-01 on (ahead: the events TTL keeps them)
        let day = chrono::NaiveDate::from_ymd_opt(2027 + (k / 12) as i32, 1 + (k % 12) as u32, 15).expect("date");
        let t = day.and_hms_opt(12, 0, 0).expect("time").and_utc().timestamp_millis();
        good_events.push(good(HARD + SOFT + k, EventType::Delivered, None, "months.example", t));
    }
    let hostile = hostile();
    // interleaved: a hostile record after every 150 good ones
    let mut payloads: Vec<Option<Vec<u8>>> = Vec::new();
    let mut want_reason: Vec<Option<&str>> = Vec::new();
    let mut h = hostile.iter();
    for (i, e) in good_events.iter().enumerate() {
        if i % 150 == 75 {
            if let Some((bytes, reason)) = h.next() {
                payloads.push(bytes.clone());
                want_reason.push(Some(*reason));
            }
        }
        payloads.push(Some(schemas::avro::encode_event(e).expect("encodes")));
        want_reason.push(None);
    }
    for (bytes, reason) in h {
        payloads.push(bytes.clone());
        want_reason.push(Some(*reason));
    }
    let offsets = produce_in_order(&stack.brokers, &p.events_topic, 0, &payloads).await;
    let want_dead: BTreeMap<i64, &str> = offsets.iter().zip(&want_reason).filter_map(|(o, r)| r.map(|r| (*o, r))).collect();
    assert_eq!(want_dead.len(), hostile.len());

    // the good ones land, within a bound: the partition is done up to its last record
    let n = good_events.len() as u64;
    let last = *offsets.last().expect("produced");
    wait_until("the partition done to its last record", Duration::from_secs(180), || async {
        let sql = format!("SELECT count() FROM aggregator_offsets WHERE state = 'done' AND partition = 0 AND last_offset = {last}");
        (p.number(&sql).await > 0).then_some(())
    })
    .await;
    assert_eq!(p.number("SELECT count() FROM events FINAL").await, n, "every good event");
    // exactly once, against the truth of what was produced
    assert_eq!(p.number("SELECT count() FROM deliveries FINAL").await, n, "one delivery each");
    assert_eq!(p.number("SELECT sum(events) FROM counters WHERE period = 'day'").await, n, "each counted once");
    assert_eq!(p.number("SELECT sum(events) FROM counters WHERE period = 'month'").await, n);
    assert_eq!(p.number("SELECT count() FROM suppressions FINAL WHERE reason = 'hard_bounce'").await, HARD as u64, "every hard bounce suppresses its long address");
    assert_eq!(p.number("SELECT count() FROM suppressions FINAL").await, HARD as u64, "one soft bounce per address suppresses nothing");
    assert_eq!(p.number("SELECT uniqExact(toYYYYMM(occurred_at)) FROM events FINAL WHERE recipient LIKE '%@months.example'").await, MONTHS as u64);
    assert_eq!(p.number("SELECT count() FROM events FINAL WHERE recipient LIKE '%hostile%'").await, 0, "no hostile record applied");

    // each hostile record is dead-lettered, once per offset, with its reason and coordinates
    let dead = wait_until("every dead letter", Duration::from_secs(60), || async {
        let recs = read_all(&stack.brokers, &p.dead_letter_topic, 4, Duration::from_millis(800));
        (recs.len() >= hostile.len()).then_some(recs)
    })
    .await;
    let mut got: BTreeMap<i64, String> = BTreeMap::new();
    for (key, bytes) in &dead {
        let d = schemas::avro::decode_dead_letter(bytes).expect("dead letter decodes");
        assert_eq!(d.stage, "aggregator");
        assert_eq!((d.raw_topic.as_str(), d.raw_partition), (p.events_topic.as_str(), 0));
        assert_eq!(key.as_deref(), Some(format!("{}/0/{}", p.events_topic, d.raw_offset).as_bytes()));
        assert!(!d.reason.is_empty());
        let i = offsets.iter().position(|o| *o == d.raw_offset).expect("a produced offset");
        let raw = payloads[i].clone().unwrap_or_default();
        if raw.len() <= 64 * 1024 {
            assert!(d.raw == raw, "the record itself, unchanged ({} bytes, got {})", raw.len(), d.raw.len());
        } else {
            // over `dead_letter_max_raw_bytes`: left out, the coordinates point to it
            assert!(d.raw.is_empty() && d.reason.contains("not copied"), "{}", d.reason);
        }
        got.insert(d.raw_offset, d.reason_code);
    }
    let got: BTreeMap<i64, &str> = got.iter().map(|(o, r)| (*o, r.as_str())).collect();
    assert_eq!(got, want_dead);

    // still healthy, and the metric says why
    let (_, admin) = p.admin_ports();
    let health = reqwest::get(format!("http://127.0.0.1:{admin}/healthz")).await.expect("admin reachable");
    assert!(health.status().is_success());
    let metrics = reqwest::get(format!("http://127.0.0.1:{admin}/metrics")).await.expect("metrics").text().await.unwrap_or_default();
    let count = |reason: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("sendtrace_aggregator_dead_letters_total") && l.contains(&format!("reason=\"{reason}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    assert_eq!(count("time_out_of_range"), 4, "{metrics}");
    assert_eq!(count("undecodable"), 2);
    assert_eq!(count("field_too_long"), 2);
    // good input needs no bisection: its lookups are chunked, its months fit one insert
    let splits: f64 = metrics.lines().filter(|l| l.starts_with("sendtrace_aggregator_batch_splits_total")).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum();
    assert_eq!(splits, 0.0, "{metrics}");
}

/// On the real ClickHouse endpoint: an `IN` list of many long addresses in one statement is
/// refused for good (`max_query_size`), and the classifier says so; the aggregator's lookups,
/// which chunk their lists, answer the same question.
#[tokio::test(flavor = "multi_thread")]
async fn long_in_lists_are_refused_whole_and_answered_in_chunks() {
    use aggregator::store::{self as sink, failure};
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "agg-inlist").await;
    let cfg = aggregator::config::ClickHouseConfig { url: stack.clickhouse_url.clone(), database: p.database.clone(), ..Default::default() };
    let client = cfg.client();
    let addresses: Vec<String> = (0..2000).map(|i| format!("{i:0>300}@example.com")).collect();
    // stored: a suppression for every 10th address
    let rows: Vec<aggregator::suppression::SuppressionRow> = addresses
        .iter()
        .step_by(10)
        .map(|a| {
            let mut e = schemas::testkit::event("e", "dk", EventType::Complained, T0);
            e.tenant = "acme".into();
            e.recipient = a.clone();
            aggregator::suppression::immediate(&e.as_event_ref()).expect("a complaint suppresses")
        })
        .collect();
    sink::insert_rows(&client, "suppressions", "t1", &rows).await.expect("insert");

    // one statement with every address: ~640 KB, over the 256 KiB default
    let whole = client
        .query("SELECT count() FROM suppressions FINAL WHERE tenant = ? AND address IN ?")
        .bind("acme")
        .bind(&addresses)
        .fetch_one::<u64>()
        .await;
    let error = sink::SinkError::from(whole.expect_err("refused: longer than max_query_size"));
    assert_eq!(failure::classify(&error), failure::Failure::Permanent { code: 62 }, "{error}");

    // the aggregator's lookup: chunked, every stored entry found
    let found = sink::load_suppressions(&client, "acme", &addresses).await.expect("chunked lookup succeeds");
    assert_eq!(found.len(), rows.len());
    let history = sink::soft_bounce_history(&client, "acme", &addresses, (0, i64::MAX)).await.expect("chunked lookup succeeds");
    assert!(history.is_empty());
    let keys: Vec<(String, String)> = (0..2000).map(|i| ("acme".to_string(), format!("{i:0>500}"))).collect();
    assert!(sink::load_deliveries(&client, &keys).await.expect("chunked").is_empty());
    assert!(sink::load_events(&client, &keys).await.expect("chunked").is_empty());
}
