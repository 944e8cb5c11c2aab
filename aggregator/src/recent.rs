//! The event rows of the deliveries this aggregator created since it claimed their partition,
//! kept in memory so that a late send record moves them without reading `events` back.
//!
//! Why: a send record that arrives after its delivery's provider events re-attributes the
//! rows already written (`batch`, "events applied before this batch move"), and reading those
//! rows (`store::load_events`, `events FINAL WHERE delivery_key IN …`) passes nearly every
//! granule once a batch asks for a few hundred deliveries, because `events` is ordered by
//! event id: it grew with the stored events, a third of the ClickHouse endpoint's CPU under
//! load (BENCHMARKS.md §10).
//!
//! Why it is exact: a delivery gets an entry only when a batch finds it new (its state is not
//! in memory and `deliveries` has no row for it) outside a redo of a pending range. Then no
//! event row of it exists in ClickHouse: rows are written only by batches of its partition, by
//! the partition's one claimed writer (`offsets`), and a batch that wrote event rows also
//! wrote the delivery's row before its range was done, unless it crashed, and then its range
//! is pending and redone first (no new entries there). From then on every row written for it
//! is recorded here once its batch is written (`record`), the moved ones replacing the rows
//! of the same event id as `ReplacingMergeTree` does, so an entry equals what `load_events`
//! would read. A batch that is not written (refused, fenced, shut down) records nothing; a
//! claim forgets the partition's entries (another writer may have written since), and an
//! entry dropped for the memory bound is never made again, so that delivery is read from
//! ClickHouse from then on. Deliveries evicted from the state keep their entry: it stays
//! exact while the claim holds. One difference: a row whose `occurred_at` is already past the
//! events TTL may be gone from ClickHouse (TTL applies at merges) while it is still held here;
//! its move then keeps `attributed_counters`, which have no TTL, with the delivery's
//! attribution, where a read would have left it under the old one.

use crate::batch::{BatchRows, History, TableBuffers};
use crate::state::{DeliveryKey, KeyHash};
use crate::store::rowbinary::Reader;
use crate::store::{EventRow, TenantKey};
use std::collections::{HashMap, HashSet, VecDeque};

/// One delivery's rows as `RowBinary`, in the order written (a moved row after the row it
/// replaces): ~400 bytes a row in one allocation, against ~1.5 KB as row structs.
#[derive(Debug, Default)]
struct Entry {
    bytes: Vec<u8>,
}

impl Entry {
    /// The rows, the last written of each event id in place of the earlier ones (as
    /// `ReplacingMergeTree` keeps the last inserted); `None` if the bytes do not read back.
    fn rows(&self) -> Option<Vec<EventRow>> {
        let mut out: Vec<EventRow> = Vec::new();
        let mut r = Reader(&self.bytes);
        while !r.is_empty() {
            let row = EventRow::read_rowbinary(&mut r)?;
            match out.iter_mut().find(|o| o.event_id.as_str() == row.event_id.as_str()) {
                Some(old) => *old = row,
                None => out.push(row),
            }
        }
        Some(out)
    }
}

/// What an entry costs besides its rows' bytes: its key and slot in the map, its place in `order`.
const ENTRY_OVERHEAD: usize = 2 * std::mem::size_of::<(DeliveryKey, Entry)>() + std::mem::size_of::<(i32, DeliveryKey)>();

/// See the module documentation.
#[derive(Debug, Default)]
pub struct RecentHistory {
    /// By partition, then delivery.
    // (by `KeyHash`: a key is already a hash, as in the state map)
    partitions: HashMap<i32, HashMap<DeliveryKey, Entry, KeyHash>>,
    /// Entries in the order they were made (the oldest goes first above the bound). A key
    /// forgotten otherwise stays here until its turn, and is skipped then.
    order: VecDeque<(i32, DeliveryKey)>,
    /// What the entries hold: their buffers' capacity and `ENTRY_OVERHEAD` each.
    bytes: usize,
    max_bytes: usize,
}

impl RecentHistory {
    /// Holds at most about `max_bytes` of rows (0: none; every history is read from ClickHouse).
    pub fn new(max_bytes: usize) -> Self {
        RecentHistory { max_bytes, ..Default::default() }
    }

    /// A new bound: the oldest entries above it go now; at 0, every entry (nothing more is
    /// recorded at 0, so none may stay to be answered from).
    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
        if max_bytes == 0 {
            self.clear();
        } else {
            self.bound();
        }
    }

    /// The bound, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Whether it holds anything at all (a bound above 0).
    pub fn enabled(&self) -> bool {
        self.max_bytes > 0
    }

    /// The memory held, in bytes (the rows' buffers and the entries' slots).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Deliveries held.
    pub fn len(&self) -> usize {
        self.partitions.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key`'s rows are held (then `split` answers them from here).
    pub fn holds(&self, partition: i32, key: &str) -> bool {
        self.partitions.get(&partition).is_some_and(|m| m.contains_key(&DeliveryKey::of(key)))
    }

    /// Splits `keys` (of `partition`) into the history held here and the keys to read from
    /// ClickHouse. A key held with no rows is answered too (as `load_events` would: nothing).
    pub fn split(&self, partition: i32, keys: Vec<TenantKey>) -> (History, Vec<TenantKey>) {
        let held = self.partitions.get(&partition);
        let mut history = History::default();
        let mut read = Vec::new();
        for (tenant, key) in keys {
            match held.and_then(|m| m.get(&DeliveryKey::of(&key))).map(Entry::rows) {
                Some(Some(rows)) => {
                    if !rows.is_empty() {
                        history.insert(key, rows);
                    }
                }
                // (bytes that do not read back: a bug; ClickHouse has the rows)
                Some(None) => {
                    tracing::error!(message = "Rows held for a delivery do not read back; reading them from ClickHouse.", delivery_key = %key);
                    read.push((tenant, key));
                }
                None => read.push((tenant, key)),
            }
        }
        (history, read)
    }

    /// After a batch of `partition` is written as `tables` (`BatchRows::write_rowbinary` of
    /// `rows`): its event rows (applied and moved) of the deliveries held and of `new` (those
    /// the batch found new; module docs), recorded: the bytes the `events` insert sent, copied.
    pub fn record(&mut self, partition: i32, rows: &BatchRows<'_>, tables: &TableBuffers, new: &HashSet<DeliveryKey>) {
        if self.max_bytes == 0 {
            return;
        }
        if tables.event_ends.len() != rows.applied.len() + rows.moved.len() {
            // (not as many rows written as these rows: not their tables, a bug; this
            // partition's deliveries are read from ClickHouse from now on, which is exact)
            tracing::error!(message = "A batch's event rows were not written as recorded; the partition's held history is forgotten.", partition, rows = rows.applied.len() + rows.moved.len(), written = tables.event_ends.len());
            self.forget_partition(partition);
            return;
        }
        let held = self.partitions.entry(partition).or_default();
        for key in new {
            if !held.contains_key(key) {
                held.insert(*key, Entry::default());
                self.order.push_back((partition, *key));
                self.bytes += ENTRY_OVERHEAD;
            }
        }
        // as the `events` insert sent them: the applied events' rows, then the moved ones
        let keys = rows.applied.iter().map(|a| a.event.delivery_key).chain(rows.moved.iter().map(|r| r.delivery_key.as_str()));
        let mut start = 0;
        for (key, &end) in keys.zip(&tables.event_ends) {
            let row = tables.events.bytes.get(start..end).unwrap_or_default();
            start = end;
            let Some(entry) = held.get_mut(&DeliveryKey::of(key)) else { continue };
            let capacity = entry.bytes.capacity();
            entry.bytes.extend_from_slice(row);
            self.bytes = self.bytes + entry.bytes.capacity() - capacity;
        }
        self.bound();
    }

    /// Drops the oldest entries above the bound.
    fn bound(&mut self) {
        while self.bytes > self.max_bytes {
            let Some((p, key)) = self.order.pop_front() else { break };
            if let Some(e) = self.partitions.get_mut(&p).and_then(|m| m.remove(&key)) {
                self.bytes -= e.bytes.capacity() + ENTRY_OVERHEAD;
                metrics::counter!("sendtrace_aggregator_recent_history_dropped_total").increment(1);
            }
        }
        if self.order.len() > 2 * self.len() + 1024 {
            // (keys forgotten by a claim wait here for their turn; not forever)
            let partitions = &self.partitions;
            self.order.retain(|(p, k)| partitions.get(p).is_some_and(|m| m.contains_key(k)));
        }
    }

    /// Forgets `partition`'s entries (a claim: another writer may have written its deliveries);
    /// returns how many.
    pub fn forget_partition(&mut self, partition: i32) -> usize {
        let Some(m) = self.partitions.remove(&partition) else { return 0 };
        self.bytes -= m.values().map(|e| e.bytes.capacity() + ENTRY_OVERHEAD).sum::<usize>();
        m.len()
    }

    pub fn clear(&mut self) {
        self.partitions.clear();
        self.order.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{apply, BatchConfig};
    use crate::state::StateStore;
    use schemas::EventType;

    fn ev(id: &str, dk: &str, ty: EventType, t: i64, broadcast: Option<&str>) -> schemas::EventRef<'static> {
        let mut e = crate::state::tests::event(id, ty, None, t);
        e.delivery_key = schemas::testkit::leak(dk);
        e.broadcast_id = broadcast.map(schemas::testkit::leak);
        e
    }

    /// `rows` as the `events` insert sends them (what `record` copies from).
    fn written(rows: &mut BatchRows<'_>) -> TableBuffers {
        let mut tables = TableBuffers::default();
        rows.write_rowbinary(&mut tables).expect("rows serialize");
        tables
    }

    fn keys(names: &[&str]) -> HashSet<DeliveryKey> {
        names.iter().map(|k| DeliveryKey::of(k)).collect()
    }

    fn ids(rows: &[EventRow]) -> Vec<(String, Option<String>, u8)> {
        let mut v: Vec<_> = rows.iter().map(|r| (r.event_id.as_str().to_string(), r.broadcast_id.as_ref().map(|b| b.as_str().to_string()), r.reattributed)).collect();
        v.sort();
        v
    }

    /// The entry of a new delivery equals the rows written for it, batch after batch, the
    /// moved rows replacing their first versions (as `events FINAL` reads them back).
    #[test]
    fn an_entry_follows_the_rows_written_and_moved() {
        let (store, cfg) = (StateStore::new(1000), BatchConfig::default());
        let mut recent = RecentHistory::new(1 << 20);
        let b1 = vec![(1, ev("1", "d1", EventType::Delivered, 10, None)), (2, ev("2", "d1", EventType::Opened, 20, None)), (3, ev("3", "d2", EventType::Delivered, 10, None))];
        let mut r1 = apply(&store, 0, &b1, &History::default(), 1, 0, &cfg);
        let t1 = written(&mut r1);
        recent.record(0, &r1, &t1, &keys(&["d1"]));
        assert!(recent.holds(0, "d1") && !recent.holds(0, "d2"), "only the new deliveries named");
        let (history, read) = recent.split(0, vec![("acme".to_string(), "d1".to_string()), ("acme".to_string(), "d2".to_string())]);
        assert_eq!(read.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(), ["d2"]);
        let want: Vec<EventRow> = r1.events().into_iter().filter(|r| r.delivery_key.as_str() == "d1").map(|r| r.map_text(crate::store::Text::into_static)).collect();
        assert_eq!(ids(&history["d1"]), ids(&want));
        assert_eq!(history["d1"].len(), 2);

        // the send record arrives: both rows move, and the entry holds their new versions
        let b2 = vec![(4, ev("4", "d1", EventType::Queued, 5, Some("b-1")))];
        let mut r2 = apply(&store, 0, &b2, &history, 2, 0, &cfg);
        assert_eq!(r2.reattributed, 2);
        let t2 = written(&mut r2);
        recent.record(0, &r2, &t2, &keys(&[]));
        let (history, _) = recent.split(0, vec![("acme".to_string(), "d1".to_string())]);
        let got = ids(&history["d1"]);
        assert_eq!(got.len(), 3, "three events, one row each: {got:?}");
        assert!(got.iter().all(|(_, b, _)| b.as_deref() == Some("b-1")), "every row at the new attribution: {got:?}");
        assert_eq!(got.iter().filter(|(_, _, moved)| *moved == 1).count(), 2);
    }

    #[test]
    fn the_bound_drops_the_oldest_entries_and_a_claim_the_partitions() {
        let (store, cfg) = (StateStore::new(1000), BatchConfig::default());
        // ten batches, one new delivery each, alike but for their ids
        let batches: Vec<Vec<_>> = (0..10).map(|i| vec![(i, ev(&format!("{i}"), &format!("d{i}"), EventType::Delivered, 10, None))]).collect();
        let mut rows: Vec<_> = batches.iter().zip(1..).map(|(b, seq)| apply(&store, 3, b, &History::default(), seq, 0, &cfg)).collect();
        let tables: Vec<TableBuffers> = rows.iter_mut().map(|r| written(r)).collect();
        let one = {
            let mut r = RecentHistory::new(usize::MAX);
            r.record(3, &rows[0], &tables[0], &keys(&["d0"]));
            r.bytes()
        };
        let mut recent = RecentHistory::new(one * 4 + one / 2);
        for (i, (r, t)) in rows.iter().zip(&tables).enumerate() {
            recent.record(3, r, t, &keys(&[format!("d{i}").as_str()]));
        }
        assert!(recent.bytes() <= one * 4 + one / 2);
        assert_eq!(recent.len(), 4);
        assert!((6..10).all(|i| recent.holds(3, &format!("d{i}"))), "the newest stay");
        assert_eq!(recent.forget_partition(2), 0);
        assert_eq!(recent.forget_partition(3), 4);
        assert_eq!((recent.len(), recent.bytes()), (0, 0));
        let mut off = RecentHistory::new(0);
        off.record(3, &rows[0], &tables[0], &keys(&["d0"]));
        assert!(off.is_empty(), "a bound of 0 holds nothing");
    }

    /// Tables with another count of event rows than the batch's (not its tables: a bug) are not
    /// copied from: the partition's entries are forgotten, so its deliveries are read from
    /// ClickHouse, which is exact.
    #[test]
    fn tables_of_other_rows_forget_the_partition() {
        let (store, cfg) = (StateStore::new(1000), BatchConfig::default());
        let mut recent = RecentHistory::new(1 << 20);
        let b1 = vec![(1, ev("1", "d1", EventType::Delivered, 10, None)), (2, ev("2", "d1", EventType::Opened, 20, None))];
        let mut r1 = apply(&store, 0, &b1, &History::default(), 1, 0, &cfg);
        let t1 = written(&mut r1);
        recent.record(0, &r1, &t1, &keys(&["d1"]));
        assert!(recent.holds(0, "d1"));
        let b2 = vec![(3, ev("3", "d1", EventType::Clicked, 30, None))];
        let r2 = apply(&store, 0, &b2, &History::default(), 2, 0, &cfg);
        recent.record(0, &r2, &t1, &keys(&[]));
        assert!(!recent.holds(0, "d1") && recent.is_empty(), "forgotten, not filled with another batch's rows");
    }
}
