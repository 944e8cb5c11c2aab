//! The funnels' signed rows (`funnels`, `funnel_recipients`, `funnel_statuses`), summed over every batch of a
//! stream, equal the same counts over the deliveries' latest rows (what `deliveries FINAL`
//! holds), computed by brute force from those rows as the API's former read did: for streams
//! where attribution moves (a provider's tag, then a send record naming another broadcast;
//! a cost arriving late; statuses going back and forth), in batches of every size, replays
//! included.

use aggregator::batch::{self, BatchConfig, History};
use aggregator::funnels::Sums;
use aggregator::state::StateStore;
use proptest::prelude::*;
use rust_decimal::Decimal;
use schemas::{Event, EventType, Money, Origin};
use std::collections::BTreeMap;

/// (tenant, dimension, id, cost unit) -> (15 counts, cost mantissa).
type Funnels = BTreeMap<(String, i8, String, String), ([i64; 15], i128)>;
/// (tenant, dimension, id, recipient) -> deliveries; also (tenant, dimension, id, status) -> deliveries.
type Recipients = BTreeMap<(String, i8, String, String), i64>;
/// (tenant, dimension, id) -> (the last activity summed, the latest rows' latest status time).
type Lasts = BTreeMap<(String, i8, String), (i64, i64)>;

const TYPES: [EventType; 9] = [
    EventType::Queued,
    EventType::Sent,
    EventType::Delivered,
    EventType::Opened,
    EventType::Clicked,
    EventType::Bounced,
    EventType::Complained,
    EventType::Unsubscribed,
    EventType::Failed,
];

/// One event of a delivery: (delivery, type, time, provider tag's broadcast, is a send record,
/// the record's broadcast / sequence / template / cost choice).
/// Event ids as the normalizer makes them (32 hex digits): the state keeps hashes of them.
fn event_id(i: usize) -> String {
    format!("{:016x}{:016x}", (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15), i)
}

fn events(spec: &[(u8, u8, u16, u8, bool, u8, u8)]) -> Vec<(i64, Event)> {
    spec.iter()
        .enumerate()
        .map(|(i, &(d, ty, t, tag, record, attr, cost))| {
            let mut e = schemas::testkit::event(&event_id(i), &format!("d{d}"), TYPES[ty as usize % TYPES.len()], 1_767_225_600_000 + t as i64 * 1_000);
            e.tenant = if d % 5 == 0 { "beta".into() } else { "acme".into() };
            // two deliveries share each recipient, spelled two ways
            e.recipient = if d % 2 == 0 { format!("P{}@x.io", d / 2) } else { format!("p{}@x.io", d / 2) };
            e.broadcast_id = (tag % 3 != 0).then(|| format!("b{}", tag % 3));
            if record {
                e.event_type = EventType::Queued;
                e.provider_event_name = "send_record".into();
                e.origin = Origin::SendRecord;
                e.broadcast_id = Some(format!("b{}", attr % 4));
                e.sequence_id = (attr % 2 == 0).then(|| "s1".to_string());
                e.template_key = Some(format!("t{}", attr % 3));
                e.cost = match cost % 4 {
                    0 => None,
                    1 => Some(Money::new(Decimal::new(75, 5), "USD")),
                    2 => Some(Money::new(Decimal::new(0, 0), "EUR")),
                    _ => Some(Money::new(Decimal::new(125, 3), "EUR")),
                };
            }
            (i as i64, e)
        })
        .collect()
}

/// The stream applied in batches of `size` (a batch replayed after each `replay`-th), the
/// funnel rows summed; and the funnels computed from each delivery's latest row.
fn run(stream: &[(i64, Event)], size: usize, replay: usize) -> (Funnels, Recipients, Funnels, Recipients, Lasts, [Recipients; 2]) {
    let store = StateStore::new(1_000_000);
    let cfg = BatchConfig::default();
    let events = batch::refs(stream);
    let (mut funnels, mut recipients, mut statuses): (Funnels, Recipients, Recipients) = Default::default();
    let mut latest: BTreeMap<String, aggregator::store::DeliveryRow> = BTreeMap::new();
    let mut last_seen: BTreeMap<(String, i8, String), i64> = BTreeMap::new();
    let mut seq = 0;
    for (k, chunk) in events.chunks(size).enumerate() {
        for _ in 0..if replay > 0 && k % replay == 0 { 2 } else { 1 } {
            seq += 1;
            let rows = batch::apply(&store, 0, chunk, &History::new(), seq, 0, &cfg);
            for (t, d, id, u, s) in &rows.funnels.sums() {
                let Sums { counts, cost, last_status_at, changes, .. } = *s;
                assert!(changes > 0, "a row counts its changes");
                let f = funnels.entry((t.to_string(), *d, id.to_string(), u.to_string())).or_default();
                for (a, b) in f.0.iter_mut().zip(counts) {
                    *a += b;
                }
                f.1 += cost;
                let l = last_seen.entry((t.to_string(), *d, id.to_string())).or_default();
                *l = (*l).max(last_status_at);
            }
            for (t, d, id, r, n) in &rows.funnels.recipients() {
                *recipients.entry((t.to_string(), *d, id.to_string(), r.to_string())).or_default() += n;
            }
            for (t, d, id, st, n) in &rows.funnels.statuses() {
                *statuses.entry((t.to_string(), *d, id.to_string(), st.to_string())).or_default() += n;
            }
            for row in rows.deliveries(&store) {
                latest.insert(row.delivery_key.to_string(), row.map_text(|t| t.into_static()));
            }
        }
    }
    funnels.retain(|_, (c, cost)| c.iter().any(|n| *n != 0) || *cost != 0);
    recipients.retain(|_, n| *n != 0);
    statuses.retain(|_, n| *n != 0);
    // brute force from the latest rows, as `SELECT … FROM deliveries FINAL` counts them
    let (mut want, mut want_recipients): (Funnels, Recipients) = Default::default();
    let mut last_want: BTreeMap<(String, i8, String), i64> = BTreeMap::new();
    let mut want_statuses: Recipients = BTreeMap::new();
    for r in latest.values() {
        let ids = [&r.broadcast_id, &r.sequence_id, &r.template_key];
        for (dim, id) in (1i8..).zip(ids) {
            let Some(id) = id else { continue };
            let f = want.entry((r.tenant.to_string(), dim, id.to_string(), r.cost_unit.to_string())).or_default();
            let (o, c) = (r.open_count as i64, r.click_count as i64);
            let (oa, ca) = (o + r.machine_open_count as i64, c + r.machine_click_count as i64);
            let status = r.status.as_ref();
            let add = [
                1,
                (r.first_sent_at.is_some() || r.first_delivered_at.is_some()) as i64,
                r.first_delivered_at.is_some() as i64,
                (o > 0) as i64,
                (oa > 0) as i64,
                o,
                oa,
                (c > 0) as i64,
                (ca > 0) as i64,
                c,
                ca,
                (status == "bounced") as i64,
                (status == "complained") as i64,
                (status == "unsubscribed") as i64,
                (status == "failed") as i64,
            ];
            for (a, b) in f.0.iter_mut().zip(add) {
                *a += b;
            }
            if !r.cost_unit.is_empty() {
                f.1 += r.cost_amount;
            }
            *want_recipients.entry((r.tenant.to_string(), dim, id.to_string(), r.recipient.to_string())).or_default() += 1;
            *want_statuses.entry((r.tenant.to_string(), dim, id.to_string(), r.status.to_string())).or_default() += 1;
            let l = last_want.entry((r.tenant.to_string(), dim, id.to_string())).or_default();
            *l = (*l).max(r.status_at);
        }
    }
    let last = last_want.iter().map(|(k, w)| (k.clone(), (last_seen.get(k).copied().unwrap_or(i64::MIN), *w))).collect();
    (funnels, recipients, want, want_recipients, last, [statuses, want_statuses])
}

fn check(stream: &[(i64, Event)], size: usize, replay: usize) {
    let (got, got_r, want, want_r, last, [got_s, want_s]) = run(stream, size, replay);
    assert_eq!(got, want, "funnel sums, batches of {size}");
    assert_eq!(got_r, want_r, "funnel recipients, batches of {size}");
    assert_eq!(got_s, want_s, "funnel statuses, batches of {size}");
    for (k, (seen, now)) in last {
        assert!(seen >= now, "{k:?}: the last activity {seen} is not before the latest row's status time {now}");
    }
}

#[test]
fn attribution_moves_between_broadcasts_and_costs_arrive_late() {
    // d1: a provider's tag names b1, then its send record names b2 with a cost, then more events
    // d2: the record first (b3, sequence s1), then a bounce, then an open (status kept)
    // d3 (the same person as d2, spelled otherwise): the same broadcast as d2
    let spec = [
        (1, 3, 10, 1, false, 0, 0),
        (1, 2, 5, 1, false, 0, 0),
        (2, 0, 1, 0, true, 3, 1),
        (3, 0, 1, 0, true, 3, 3),
        (1, 0, 0, 0, true, 2, 1),
        (2, 5, 20, 0, false, 0, 0),
        (2, 3, 30, 0, false, 0, 0),
        (3, 4, 31, 0, false, 0, 0),
        (1, 4, 40, 2, false, 0, 0),
    ];
    let stream = events(&spec);
    for size in 1..=spec.len() {
        check(&stream, size, 0);
        check(&stream, size, 2);
    }
    let (got, got_r, ..) = run(&stream, 2, 0);
    let b = |id: &str| got.iter().filter(|((_, d, i, _), _)| *d == 1 && i == id).map(|(_, (c, _))| c[0]).sum::<i64>();
    assert_eq!((b("b1"), b("b2"), b("b3")), (0, 1, 2), "d1 moved from its tag's b1 to its record's b2");
    assert_eq!(got_r.iter().filter(|((_, d, id, _), _)| *d == 1 && id == "b3").count(), 1, "d2 and d3: one person in b3");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn signed_funnels_sum_to_the_latest_rows(
        spec in prop::collection::vec((0u8..12, 0u8..9, 0u16..600, 0u8..3, prop::bool::weighted(0.25), 0u8..12, 0u8..4), 1..120),
        size in 1usize..40,
        replay in 0usize..4,
    ) {
        check(&events(&spec), size, replay);
    }
}
