//! The aggregator's whole batch on arbitrary canonical events: each encoded and read as the
//! pipeline reads a record (`decode_event_ref_onto`, then `admission::admit`), cut into
//! batches of arbitrary sizes over one state store, with the pipeline's history of earlier
//! event rows (so late send records move rows), then `batch::apply_reusing` and
//! `write_rowbinary`: the hand-written writers of every table, which write into room counted
//! beforehand without a bounds check per column (`store::rowbinary::Room`).
//!
//! The events share a few tenants, delivery keys, event ids and a few weeks of time, so
//! deliveries move through their states, duplicates meet, and periods and zones cross.
//! Checks, besides no panic (debug assertions on: a column written past its row's room
//! panics):
//! * each table's bytes are its rows' `RowBinary` as serde writes it (the rows built apart
//!   for reading: `events()`, `counters()`, `attributed_counters()`, `deliveries()`, …), and
//!   its row count is theirs; the funnel tables read back whole;
//! * the same batch applied again is all duplicates: no event, counter or delivery row.
#![no_main]
use aggregator::admission::{self, Limits};
use aggregator::batch::{self, BatchConfig, BatchRows, History};
use aggregator::buckets::Periods;
use aggregator::state::{Facts, StateStore};
use aggregator::store::rowbinary::{self, RowBuffer};
use aggregator::store::{EventRow, Text};
use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use sendtrace_fuzz::values::event;
use std::collections::HashMap;

const ZONES: [&str; 4] = ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns"];
const DAY_MS: i64 = 86_400_000;

/// Up to `most` distinct-ish non-empty names (an empty one is refused at admission).
fn names(u: &mut Unstructured, most: usize, prefix: &str) -> arbitrary::Result<Vec<String>> {
    (0..u.int_in_range(1..=most)?)
        .map(|i| {
            let s: String = u.arbitrary()?;
            Ok(if s.is_empty() { format!("{prefix}{i}") } else { s })
        })
        .collect()
}

/// Arbitrary events, most of them on a few deliveries and weeks, some with the same id.
fn events(u: &mut Unstructured) -> arbitrary::Result<Vec<schemas::Event>> {
    let (tenants, keys, ids) = (names(u, 3, "t")?, names(u, 6, "d")?, names(u, 8, "e")?);
    let base = u.int_in_range(0..=admission::MAX_EVENT_TIME_MS - 60 * DAY_MS)?;
    let n = u.int_in_range(1..=48)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut e = event(u)?;
        if e.tenant.is_empty() || u.ratio(7, 8)? {
            e.tenant = u.choose(&tenants)?.clone();
        }
        if e.delivery_key.is_empty() || u.ratio(7, 8)? {
            e.delivery_key = u.choose(&keys)?.clone();
        }
        if u.ratio(1, 4)? {
            e.event_id = u.choose(&ids)?.clone();
        } else if e.event_id.is_empty() {
            e.event_id = format!("event-{i}");
        }
        if u.ratio(7, 8)? {
            e.occurred_at = base + u.int_in_range(0..=40 * DAY_MS)?;
            e.received_at = e.occurred_at + u.int_in_range(0..=7 * DAY_MS)?;
        }
        out.push(e);
    }
    Ok(out)
}

/// `buf` holds exactly `rows`, as serde writes them.
fn same<T: serde::Serialize>(table: &str, buf: &RowBuffer, rows: &[T]) {
    let mut want = Vec::new();
    rows.iter().try_for_each(|r| rowbinary::write(&mut want, r)).expect("a row serializes");
    assert!(buf.bytes == want, "{table}: the written bytes are not its rows' ({} vs {} bytes)", buf.bytes.len(), want.len());
    assert_eq!(buf.rows, rows.len(), "{table}: row count");
}

fn remember(stored: &mut HashMap<String, Vec<EventRow>>, rows: &BatchRows) {
    for r in &rows.events() {
        let list = stored.entry(r.delivery_key.to_string()).or_default();
        match list.iter_mut().find(|s| s.event_id == r.event_id) {
            Some(slot) => *slot = r.clone().map_text(Text::into_static),
            None => list.push(r.clone().map_text(Text::into_static)),
        }
    }
}

fn run(u: &mut Unstructured) -> arbitrary::Result<()> {
    let cfg = BatchConfig { periods: Periods::new(u.choose(&ZONES)?).expect("a known zone"), ..BatchConfig::default() };
    let limits = Limits::default();
    let records: Vec<(i64, Vec<u8>)> =
        events(u)?.iter().enumerate().filter_map(|(o, e)| Some((o as i64, schemas::avro::encode_event(e).ok()?))).collect();
    let store = StateStore::new(1_000);
    let mut stored: HashMap<String, Vec<EventRow>> = HashMap::new();
    let mut tables = batch::TableBuffers::default();
    let mut rest = &records[..];
    let mut seq = 0u64;
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(u.int_in_range(1..=rest.len())?);
        rest = after;
        seq += 2;
        // as the pipeline's `admit`: decoded onto the batch, refused ones taken off again
        let (mut decoded, mut facts) = (Vec::new(), Vec::new());
        for (o, bytes) in chunk {
            schemas::avro::decode_event_ref_onto(bytes, *o, &mut decoded).expect("an encoded event decodes");
            let (_, e) = decoded.last().expect("just decoded");
            match admission::admit(e, &limits) {
                Ok(()) => facts.push(Facts::of(e)),
                Err(_) => drop(decoded.pop()),
            }
        }
        let keyed = batch::Keyed::with_facts(&decoded, &facts).expect("one fact per event");
        let movable = store.look_up(keyed.places()).movable;
        let history: History = movable.iter().filter_map(|&i| Some((decoded[i].1.delivery_key.to_string(), stored.get(decoded[i].1.delivery_key)?.clone()))).collect();
        let now_ms = decoded.iter().map(|(_, e)| e.received_at).max().unwrap_or(0);
        let spare = std::mem::take(&mut tables.spare);
        let mut rows = batch::apply_reusing(&store, 0, &keyed, &history, seq, now_ms, &cfg, spare);
        let funnel_rows = [rows.funnels.sums().len(), rows.funnels.recipients().len(), rows.funnels.statuses().len()];
        rows.write_rowbinary(&mut tables).expect("rows serialize");
        same("events", &tables.events, &rows.events());
        same("counters", &tables.counters, &rows.counters());
        same("attributed_counters", &tables.attributed_counters, &rows.attributed_counters());
        same("delivery_status_counts", &tables.status_counts, &rows.status_counts);
        same("delivery_order", &tables.order_tombstones, &rows.order_tombstones);
        same("suppressions", &tables.suppressions, &rows.suppressions);
        same("deliveries", &tables.deliveries, &rows.deliveries(&store));
        assert_eq!([tables.funnels.rows, tables.funnel_recipients.rows, tables.funnel_statuses.rows], funnel_rows, "funnel rows");
        remember(&mut stored, &rows);
        tables.spare = rows.into_delivery_buffer();

        // replayed, the same batch is all duplicates
        let again = batch::apply(&store, 0, &decoded, &history, seq + 1, now_ms, &cfg);
        assert!(again.events().is_empty(), "a replayed batch wrote event rows");
        assert!(again.counters().is_empty() && again.attributed_counters().is_empty(), "a replayed batch counted");
        assert!(again.deliveries(&store).is_empty(), "a replayed batch changed deliveries");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
