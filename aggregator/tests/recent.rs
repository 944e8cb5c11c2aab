//! The rows `aggregator::recent` keeps for late send records, against what ClickHouse would
//! answer instead: on the benchmark's stream (`benches/support`: labels, metadata, costs,
//! clicks, bounces, late send records, duplicates), in the pipeline's batches, the history it
//! gives a batch for every delivery the batch may re-attribute equals `events FINAL`'s for
//! them (emulated here from the batches' own `events` bytes read back: each event id's last
//! row), and those bytes read back are the rows the batch built.

#[path = "../benches/support/mod.rs"]
mod support;

use aggregator::batch::{self, BatchConfig, Keyed, TableBuffers};
use aggregator::recent::RecentHistory;
use aggregator::state::{DeliveryKey, StateStore};
use aggregator::store::rowbinary::Reader;
use aggregator::store::{EventRow, TenantKey, Text};
use std::collections::{HashMap, HashSet};

fn sorted(mut rows: Vec<EventRow>) -> Vec<EventRow> {
    rows.sort_by(|a, b| a.event_id.as_str().cmp(b.event_id.as_str()));
    rows
}

#[test]
fn the_history_held_equals_the_stored_rows_batch_after_batch() {
    let owned = support::stream(11, 4000);
    let events = batch::refs(&owned);
    let cfg = BatchConfig::default();
    let store = StateStore::new(1_000_000);
    // what `events FINAL` would hold: each event id's last row, by delivery key
    let mut stored: HashMap<String, Vec<EventRow>> = HashMap::new();
    let mut recent = RecentHistory::new(usize::MAX);
    let mut tables = TableBuffers::default();
    let (mut compared, mut moved) = (0usize, 0usize);
    for (seq, chunk) in events.chunks(2000).enumerate() {
        let keyed = Keyed::new(chunk);
        let looked = store.look_up(keyed.places());
        // nothing is evicted here, so a delivery not held is new (nothing stored for it)
        let new: HashSet<DeliveryKey> = keyed.at(looked.missing.iter().copied()).map(|(_, _, k)| k).collect();
        let movable: Vec<TenantKey> = looked.movable.iter().map(|&i| (chunk[i].1.tenant.to_string(), chunk[i].1.delivery_key.to_string())).collect();
        let (history, read) = recent.split(3, movable.clone());
        assert!(read.is_empty(), "every delivery was created here: {} read", read.len());
        for (_, key) in &movable {
            let want = sorted(stored.get(key).cloned().unwrap_or_default());
            assert_eq!(sorted(history.get(key).cloned().unwrap_or_default()), want, "delivery {key}");
            compared += want.len();
        }
        let mut rows = batch::apply(&store, 3, chunk, &history, seq as u64 + 1, 1_767_225_600_000, &cfg);
        moved += rows.reattributed;
        rows.write_rowbinary(&mut tables).expect("rows");
        let mut r = Reader(&tables.events.bytes);
        let mut back = Vec::new();
        while !r.is_empty() {
            back.push(EventRow::read_rowbinary(&mut r).expect("a row reads back"));
        }
        let built: Vec<EventRow> = rows.events().into_iter().map(|row| row.map_text(Text::into_static)).collect();
        assert_eq!(back, built, "the bytes sent read back as the rows built");
        for row in back {
            let rows = stored.entry(row.delivery_key.to_string()).or_default();
            match rows.iter_mut().find(|o| o.event_id.as_str() == row.event_id.as_str()) {
                Some(old) => *old = row,
                None => rows.push(row),
            }
        }
        recent.record(3, &rows, &tables, &new);
    }
    assert!(compared > 1000 && moved > 100, "the stream re-attributes rows: {compared} compared, {moved} moved");
    assert_eq!(recent.len(), stored.len(), "every delivery held");
}
