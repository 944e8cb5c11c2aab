//! The aggregator's whole batch on arbitrary canonical events: each encoded and read as the
//! pipeline reads a record (`decode_event_ref_onto`, then `admission::admit`), cut into
//! batches of arbitrary sizes over one state store, with the history of earlier event rows
//! the pipeline holds (`recent::RecentHistory`, so late send records move rows without a
//! read), then `batch::apply_reusing` and `write_rowbinary`: the hand-written writers of
//! every table, which write into room counted beforehand without a bounds check per column
//! (`store::rowbinary::Room`).
//!
//! The events share a few tenants, delivery keys, event ids and a few weeks of time, so
//! deliveries move through their states, duplicates meet, and periods and zones cross.
//! Checks, besides no panic (debug assertions on: a column written past its row's room
//! panics):
//! * each table's bytes are its rows' `RowBinary` as serde writes it (the rows built apart
//!   for reading: `events()`, `counters()`, `attributed_counters()`, `deliveries()`, …), and
//!   its row count is theirs; the funnel tables read back whole;
//! * the history a batch gets for each delivery it may re-attribute (held by `RecentHistory`,
//!   or read) is what `events FINAL` would hold for it: every event row written so far (read
//!   back from the batches' bytes), the last of each event id;
//! * the same batch applied again is all duplicates: no event, counter or delivery row;
//! * a twin that restarts before every batch (an empty state store and no held history, so
//!   each delivery's state comes back from its last `deliveries` row and each history from
//!   the `events` rows written, as `pipeline::write_piece` reads them from ClickHouse after a
//!   crash, an eviction or a claim) writes the same rows of every table (compared sorted:
//!   the order of a batch's rows in one insert means nothing).
//!
//! The aggregator under test has arbitrary bounds: a state of 1 to 1,000 deliveries (evicted
//! after each batch, read back from their rows when next seen) and a held history of 0 to
//! unbounded bytes (entries dropped are read from the event rows), as the pipeline under
//! memory pressure.
#![no_main]
use aggregator::admission::{self, Limits};
use aggregator::batch::{self, BatchConfig};
use aggregator::buckets::Periods;
use aggregator::recent::RecentHistory;
use aggregator::state::{DeliveryKey, Facts, StateStore};
use aggregator::store::rowbinary::{self, Reader, RowBuffer};
use aggregator::store::{DeliveryRow, EventRow, TenantKey, Text};
use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use sendtrace_fuzz::values::event;
use std::collections::{HashMap, HashSet};

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
        // a delivery key belongs to one tenant (the normalizer's keys hash the tenant in;
        // the state is keyed by the delivery key alone, its stored row by both)
        e.delivery_key = format!("{}:{}/{}", e.tenant.len(), e.tenant, e.delivery_key);
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

/// What `events FINAL` would hold after `bytes` (an `events` insert) is written over `stored`:
/// each event id's last row, by delivery key.
fn remember(stored: &mut HashMap<String, Vec<EventRow>>, bytes: &[u8]) {
    let mut r = Reader(bytes);
    while !r.is_empty() {
        let row = EventRow::read_rowbinary(&mut r).expect("an event row reads back");
        let rows = stored.entry(row.delivery_key.to_string()).or_default();
        match rows.iter_mut().find(|o| o.event_id.as_str() == row.event_id.as_str()) {
            Some(old) => *old = row,
            None => rows.push(row),
        }
    }
}

/// Each row's `RowBinary`, sorted.
fn row_set<T: serde::Serialize>(rows: &[T]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| {
            let mut b = Vec::new();
            rowbinary::write(&mut b, r).expect("a row serializes");
            b
        })
        .collect();
    out.sort_unstable();
    out
}

/// Every table's rows of one batch, each table's sorted.
fn tables_of(rows: &batch::BatchRows, store: &StateStore) -> Vec<Vec<Vec<u8>>> {
    // (the funnel tables' rows are read back from their bytes as tuples: compared as printed)
    fn printed<T: std::fmt::Debug>(rows: Vec<T>) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = rows.iter().map(|r| format!("{r:?}").into_bytes()).collect();
        out.sort_unstable();
        out
    }
    vec![
        row_set(&rows.events()),
        row_set(&rows.counters()),
        row_set(&rows.attributed_counters()),
        row_set(&rows.status_counts),
        row_set(&rows.order_tombstones),
        row_set(&rows.suppressions),
        row_set(&rows.deliveries(store)),
        printed(rows.funnels.sums()),
        printed(rows.funnels.recipients()),
        printed(rows.funnels.statuses()),
    ]
}

const TABLES: [&str; 10] = ["events", "counters", "attributed_counters", "delivery_status_counts", "delivery_order", "suppressions", "deliveries", "funnels", "funnel_recipients", "funnel_statuses"];

fn sorted(mut rows: Vec<EventRow>) -> Vec<EventRow> {
    rows.sort_by(|a, b| a.event_id.as_str().cmp(b.event_id.as_str()));
    rows
}

/// What `pipeline::write_piece` does before it applies a batch: the deliveries not in
/// `store` read back from their last rows (`delivered`; those with none are new), and the
/// history of those the batch may re-attribute, from `recent` or else read from the event
/// rows written (`stored`). Returns that history, those deliveries and the new ones.
fn read_back(
    store: &StateStore,
    recent: &RecentHistory,
    keyed: &batch::Keyed,
    delivered: &HashMap<TenantKey, DeliveryRow>,
    stored: &HashMap<String, Vec<EventRow>>,
) -> (batch::History, Vec<TenantKey>, HashSet<DeliveryKey>) {
    let looked = store.look_up(keyed.places());
    let mut new = HashSet::new();
    {
        let mut names = store.names();
        for (_, e, key) in keyed.at(looked.missing.iter().copied()) {
            match delivered.get(&(e.tenant.to_string(), e.delivery_key.to_string())) {
                Some(row) => drop(store.map.insert(key, Box::new(row.clone().into_state(&mut names)))),
                None => drop(new.insert(key)),
            }
        }
    }
    let reloaded = store.look_up(keyed.at(looked.missing.iter().copied()));
    let events = keyed.events();
    let mut movable: Vec<TenantKey> = looked.movable.iter().chain(&reloaded.movable).map(|&i| (events[i].1.tenant.to_string(), events[i].1.delivery_key.to_string())).collect();
    movable.sort_unstable();
    movable.dedup();
    let (mut history, read) = recent.split(0, movable.clone());
    history.extend(read.iter().filter_map(|(_, k)| Some((k.clone(), stored.get(k)?.clone()))));
    (history, movable, new)
}

/// The rows of `keyed` applied by an aggregator that has just started: an empty state and no
/// held history, so every state and history is read back (`read_back`).
fn restarted(keyed: &batch::Keyed, delivered: &HashMap<TenantKey, DeliveryRow>, stored: &HashMap<String, Vec<EventRow>>, seq: u64, now_ms: i64, cfg: &BatchConfig) -> Vec<Vec<Vec<u8>>> {
    let store = StateStore::new(1_000);
    let (history, _, _) = read_back(&store, &RecentHistory::new(0), keyed, delivered, stored);
    let rows = batch::apply(&store, 0, keyed.events(), &history, seq, now_ms, cfg);
    tables_of(&rows, &store)
}

fn run(u: &mut Unstructured) -> arbitrary::Result<()> {
    let cfg = BatchConfig { periods: Periods::new(u.choose(&ZONES)?).expect("a known zone"), ..BatchConfig::default() };
    let limits = Limits::default();
    let records: Vec<(i64, Vec<u8>)> =
        events(u)?.iter().enumerate().filter_map(|(o, e)| Some((o as i64, schemas::avro::encode_event(e).ok()?))).collect();
    // the aggregator's bounds: its state may evict deliveries after each batch (read back from
    // their rows when next seen), its held history may drop entries (those then read from the
    // event rows), as under memory pressure
    let store = StateStore::new(*u.choose(&[1_000, 1, 2, 4])?);
    let mut recent = RecentHistory::new(*u.choose(&[usize::MAX, 0, 1_000, 4_000])?);
    let mut stored: HashMap<String, Vec<EventRow>> = HashMap::new();
    // what `deliveries FINAL` would hold: each delivery's last row
    let mut delivered: HashMap<TenantKey, DeliveryRow> = HashMap::new();
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
        let (history, movable, new) = read_back(&store, &recent, &keyed, &delivered, &stored);
        for (_, key) in &movable {
            let want = sorted(stored.get(key).cloned().unwrap_or_default());
            assert!(sorted(history.get(key).cloned().unwrap_or_default()) == want, "the history held for {key:?} is not the rows written");
        }
        let now_ms = decoded.iter().map(|(_, e)| e.received_at).max().unwrap_or(0);
        let twin = restarted(&keyed, &delivered, &stored, seq, now_ms, &cfg);
        let spare = std::mem::take(&mut tables.spare);
        let mut rows = batch::apply_reusing(&store, 0, &keyed, &history, seq, now_ms, &cfg, spare);
        let mine = tables_of(&rows, &store);
        for ((name, a), b) in TABLES.iter().zip(&mine).zip(&twin) {
            assert!(a == b, "{name}: a restarted aggregator writes other rows ({} against {})", b.len(), a.len());
        }
        for d in rows.deliveries(&store) {
            let d = d.map_text(Text::into_static);
            delivered.insert((d.tenant.to_string(), d.delivery_key.to_string()), d);
        }
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
        remember(&mut stored, &tables.events.bytes);
        recent.record(0, &rows, &tables, &new);

        // replayed, the same batch is all duplicates
        let again = batch::apply(&store, 0, &decoded, &history, seq + 1, now_ms, &cfg);
        assert!(again.events().is_empty(), "a replayed batch wrote event rows");
        assert!(again.counters().is_empty() && again.attributed_counters().is_empty(), "a replayed batch counted");
        assert!(again.deliveries(&store).is_empty(), "a replayed batch changed deliveries");
        drop(again);
        tables.spare = rows.into_delivery_buffer();
        store.evict(seq + 1);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
