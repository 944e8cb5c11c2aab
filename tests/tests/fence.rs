//! Two aggregators writing one partition at once: the claim fence (`aggregator::offsets`).
//!
//! The case the fence exists for, played step by step on the real ClickHouse with two
//! aggregators of one group (no broker in between, so every interleaving is the one written
//! here): A applies a batch; the group gives the partition to B, which (nothing committed yet)
//! reads from the start, claims the partition and applies what A had not; A, not aware of it
//! (a "zombie": its membership lost while it was busy), goes on with what it had fetched, as a
//! batch B formed differently. Without the fence, A's batch lands with its own dedup tokens
//! and the summing counters count its events twice (RELIABILITY.md, "two writers on one
//! partition"). With it, A writes nothing and learns it was fenced; when A drains the partition
//! again (its records fetched again after the seek), it claims it anew, and then B is the
//! one fenced. The stored counters, events and deliveries equal a brute force over the records.

use aggregator::config::{ClickHouseConfig, Config};
use aggregator::pipeline::{Aggregator, Drained};
use e2e::{Pipeline, Stack};
use runtime::shutdown::CancellationToken;
use schemas::EventType;
use std::collections::BTreeMap;

const DELIVERIES: i64 = 150;
const RECORDS: i64 = 400;
/// 2026-11-02T00:00:00Z
const T0: i64 = 1_793_577_600_000;

/// Record `i`: delivery `i % 150`'s first (queued), second (delivered) or third (opened) event,
/// a minute apart, so that deliveries span the batches of both writers.
fn event(i: i64) -> schemas::Event {
    let ty = [EventType::Queued, EventType::Delivered, EventType::Opened][(i / DELIVERIES) as usize];
    let mut e = schemas::testkit::event(&format!("fence-{i}"), &format!("fence-delivery-{}", i % DELIVERIES), ty, T0 + i * 60_000);
    // (a broadcast per delivery, for the funnels)
    e.broadcast_id = Some(format!("fence-b{}", i % DELIVERIES % 3));
    e
}

/// A JSON row's unsigned number (ClickHouse may quote 64-bit integers).
fn u64_of(v: &serde_json::Value) -> u64 {
    v.as_u64().or_else(|| v.as_str()?.parse().ok()).unwrap_or_else(|| panic!("not a number: {v}"))
}

/// `sql`'s rows of (`k`, `n`) as a map.
async fn counts(p: &Pipeline, sql: &str) -> BTreeMap<String, u64> {
    p.rows(sql).await.iter().map(|r| (r["k"].as_str().expect("k").to_string(), u64_of(&r["n"]))).collect()
}

fn offer(agg: &mut Aggregator, records: &[Vec<u8>], offsets: std::ops::Range<i64>) {
    for o in offsets {
        agg.offer(0, o, Some(records[o as usize].clone()));
    }
}

/// Two aggregators of `p`'s group (driven by hand: no consumer runs).
fn two_aggregators(stack: &Stack, p: &Pipeline) -> (Aggregator, Aggregator) {
    let mut cfg = Config::default();
    cfg.kafka.brokers = stack.brokers.clone();
    cfg.clickhouse = ClickHouseConfig { url: stack.clickhouse_url.clone(), database: p.database.clone(), ..Default::default() };
    cfg.group_id = format!("{}-aggregator", p.name);
    cfg.events_topic = p.events_topic.clone();
    cfg.dead_letter_topic = p.dead_letter_topic.clone();
    cfg.suppressions_topic = p.suppressions_topic.clone();
    (Aggregator::new(cfg.clone()).expect("A"), Aggregator::new(cfg).expect("B"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zombie_writer_is_fenced_and_counters_stay_exact() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "fence").await; // migrated
    let records: Vec<Vec<u8>> = (0..RECORDS).map(|i| schemas::avro::encode_event(&event(i)).expect("encodes")).collect();
    let shutdown = CancellationToken::new();
    let (mut a, mut b) = two_aggregators(&stack, &p);
    assert_ne!(a.writer(), b.writer(), "each aggregator claims under its own name");

    offer(&mut a, &records, 0..100);
    assert_eq!(a.drain_partition(0, &shutdown).await, Drained::Applied(99), "A applies 0..=99");
    offer(&mut b, &records, 0..200);
    assert_eq!(b.drain_partition(0, &shutdown).await, Drained::Applied(199), "B claims the partition, resumes after A's batch");
    offer(&mut a, &records, 100..150);
    assert_eq!(a.drain_partition(0, &shutdown).await, Drained::Fenced { from: 100 }, "A's batch 100..=149 overlaps B's: refused");
    let zombie_done = p.number("SELECT count() FROM aggregator_offsets WHERE state = 'done' AND first_offset = 100 AND last_offset = 149").await;
    assert_eq!(zombie_done, 0, "nothing of A's batch is marked done");
    offer(&mut b, &records, 200..300);
    assert_eq!(b.drain_partition(0, &shutdown).await, Drained::Applied(299), "B goes on");

    // A drains again (as after its seek): it claims the partition anew, finds everything up to 299
    // applied, and takes over; B's next batch is fenced; nothing is lost between them
    assert_eq!(a.drain_partition(0, &shutdown).await, Drained::Idle, "A's buffered records are all applied (by B)");
    offer(&mut b, &records, 300..350);
    assert_eq!(b.drain_partition(0, &shutdown).await, Drained::Fenced { from: 300 });
    offer(&mut a, &records, 300..RECORDS);
    assert_eq!(a.drain_partition(0, &shutdown).await, Drained::Applied(RECORDS - 1));
    let claims = p.rows("SELECT epoch, writer FROM aggregator_claims ORDER BY epoch").await;
    let claimers: Vec<(u64, String)> = claims.iter().map(|r| (u64_of(&r["epoch"]), r["writer"].as_str().expect("writer").to_string())).collect();
    assert_eq!(claimers, vec![(1, a.writer().to_string()), (2, b.writer().to_string()), (3, a.writer().to_string())], "three claims, in turn");

    // brute force over the records
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..RECORDS {
        *by_type.entry(event(i).event_type.as_str().to_string()).or_default() += 1;
    }
    for period in ["day", "week", "month"] {
        let stored = counts(&p, &format!("SELECT event_type AS k, toUInt64(sum(events)) AS n FROM counters WHERE period = '{period}' GROUP BY k")).await;
        assert_eq!(stored, by_type, "{period} counters equal the records, none counted twice");
    }
    assert_eq!(p.number("SELECT uniqExact(event_id) FROM events").await, RECORDS as u64);
    assert_eq!(p.number("SELECT count() FROM events FINAL").await, RECORDS as u64);
    // deliveries 0..99 saw all three events (opened), 100..149 two (delivered)
    let statuses = counts(&p, "SELECT status AS k, toUInt64(count()) AS n FROM deliveries FINAL GROUP BY k").await;
    assert_eq!(statuses, BTreeMap::from([("delivered".to_string(), 50), ("opened".to_string(), 100)]));
    // (a negative sum would not read as a u64: the test fails on it too)
    let status_sums = counts(&p, "SELECT status AS k, toInt64(sum(deliveries)) AS n FROM delivery_status_counts GROUP BY k HAVING n != 0").await;
    assert_eq!(status_sums, statuses, "status counts move each delivery once");
    e2e::funnels::assert_funnels_equal_deliveries(&p).await;
    e2e::latency::assert_latency_equals_deliveries(&p).await;
}

/// The rows an aggregator keeps for late send records (`aggregator::recent`) are forgotten when
/// another writer takes the partition: A creates ten deliveries (their delivered events, no
/// broadcast), B takes the partition over and writes their opened events, then A, fenced, claims
/// it back and applies their send records. Every earlier row must move to the send record's
/// broadcast, B's opened ones too, which A's memory of its own rows does not have.
#[tokio::test(flavor = "multi_thread")]
async fn late_send_records_after_a_takeover_move_the_other_writers_rows_too() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "fence-late").await; // migrated
    let event = |i: i64| {
        let ty = [EventType::Delivered, EventType::Opened, EventType::Queued][(i / 10) as usize];
        let mut e = schemas::testkit::event(&format!("late-{i}"), &format!("late-delivery-{}", i % 10), ty, T0 + i * 60_000);
        if ty == EventType::Queued {
            (e.provider_event_name, e.origin, e.broadcast_id) = ("send_record".into(), schemas::Origin::SendRecord, Some("b-late".into()));
        }
        e
    };
    let records: Vec<Vec<u8>> = (0..30).map(|i| schemas::avro::encode_event(&event(i)).expect("encodes")).collect();
    let shutdown = CancellationToken::new();
    let (mut a, mut b) = two_aggregators(&stack, &p);
    offer(&mut a, &records, 0..10);
    assert_eq!(a.drain_partition(0, &shutdown).await, Drained::Applied(9), "A creates the deliveries");
    offer(&mut b, &records, 0..20);
    assert_eq!(b.drain_partition(0, &shutdown).await, Drained::Applied(19), "B takes over and writes their opens");
    offer(&mut a, &records, 10..30);
    assert_eq!(a.drain_partition(0, &shutdown).await, Drained::Fenced { from: 10 });
    assert_eq!(a.drain_partition(0, &shutdown).await, Drained::Applied(29), "A claims back, applies the send records");

    let moved = counts(&p, "SELECT event_type AS k, toUInt64(sum(events)) AS n FROM attributed_counters WHERE period = 'day' AND broadcast_id = 'b-late' GROUP BY k").await;
    let want = BTreeMap::from([("delivered".to_string(), 10), ("opened".to_string(), 10), ("queued".to_string(), 10)]);
    assert_eq!(moved, want, "every event counted under the send record's broadcast, B's opens too");
    let left = counts(&p, "SELECT event_type AS k, toUInt64(sum(events)) AS n FROM attributed_counters WHERE period = 'day' AND broadcast_id = '' GROUP BY k HAVING sum(events) != 0").await;
    assert!(left.is_empty(), "nothing left unattributed: {left:?}");
    let rows = counts(&p, "SELECT ifNull(broadcast_id, '') AS k, toUInt64(count()) AS n FROM events FINAL GROUP BY k").await;
    assert_eq!(rows, BTreeMap::from([("b-late".to_string(), 30)]), "every event row at the new attribution");
}
