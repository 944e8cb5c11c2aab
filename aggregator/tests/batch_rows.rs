//! Every row `batch::apply` builds for the benchmark's stream, pinned: a SHA-256 of their
//! `RowBinary` (what the inserts send), the event and counter tables' rows as sorted values
//! (their order in a batch's INSERT means nothing). First recorded when the rows were still built as owned strings
//! (`04c4bdf`); the counter tables as values since the sums' keys were packed. A change in how
//! rows are built must leave these unchanged.
//!
//! The stream is the benchmark's (`benches/support`), in batches as the pipeline cuts them,
//! with the pipeline's history of earlier event rows for deliveries a late send record may
//! re-attribute, so moved rows are pinned too; once in UTC, once with a reporting zone.

#[path = "../benches/support/mod.rs"]
mod support;

use aggregator::batch::{self, BatchConfig, BatchRows, History};
use aggregator::buckets::Periods;
use aggregator::state::StateStore;
use aggregator::store::{EventRow, Text};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The digest of every batch's rows (and counts) for `deliveries` deliveries in batches of
/// `batch`; and of the funnel tables' (`funnels`, `funnel_recipients`, `funnel_statuses`), as
/// written, in the order written (pinned since `09ed165`, the code before their rows were
/// written as they are summed: the same digests there).
fn digest(deliveries: usize, batch: usize, zone: &str) -> (String, String) {
    let owned = support::stream(7, deliveries);
    let events = batch::refs(&owned);
    let cfg = BatchConfig { periods: Periods::new(zone).unwrap(), ..BatchConfig::default() };
    let store = StateStore::new(1_000_000);
    // what ClickHouse's `events FINAL` would hold: each event id's latest row, by delivery key
    let mut stored: HashMap<String, Vec<EventRow>> = HashMap::new();
    let mut hash = Sha256::new();
    let mut funnels = Sha256::new();
    let mut tables = batch::TableBuffers::default();
    let mut totals = (0usize, 0usize, 0usize);
    for (seq, chunk) in events.chunks(batch).enumerate() {
        let keyed = batch::Keyed::new(chunk);
        let history: History = store
            .look_up(keyed.places())
            .movable
            .iter()
            .filter_map(|&i| {
                let k = chunk[i].1.delivery_key.to_string();
                let rows = stored.get(&k)?;
                Some((k, rows.clone()))
            })
            .collect();
        let mut rows = batch::apply(&store, 3, chunk, &history, seq as u64 + 1, 1_767_225_600_000 + seq as i64, &cfg);
        rows.write_rowbinary(&mut tables).unwrap();
        for t in tables.all() {
            hash.update(t.rows.to_le_bytes());
        }
        for t in [&tables.funnels, &tables.funnel_recipients, &tables.funnel_statuses] {
            funnels.update(t.rows.to_le_bytes());
            funnels.update(&t.bytes);
        }
        // every table as its rows' bytes, sorted: the order of a batch's rows in one INSERT
        // means nothing (its deduplication token is the batch's; each table's rows are sorted
        // by its key, the counters summed, the latest version kept), and it is the sums' hash
        // maps' for the counters, the order the batch applies its events in for the others; the
        // buffers are those rows' bytes in `rows`' order. (The event rows joined the sorted
        // ones at `32ff295`: re-pinned there, the pins before were 426e7799… and 2c8538bc…,
        // the event rows in the order written; the other tables at the apply order by
        // delivery: the pins before were affd37af… and 511069c6…, their rows in time order;
        // the same digests as the new pins with the code before that change.)
        let one = |r: &dyn erased::Row| r.bytes();
        for (table, rows) in [
            (&tables.events, rows.events().iter().map(|r| one(r)).collect::<Vec<_>>()),
            (&tables.counters, rows.counters().iter().map(|r| one(r)).collect()),
            (&tables.attributed_counters, rows.attributed_counters().iter().map(|r| one(r)).collect()),
            (&tables.status_counts, rows.status_counts.iter().map(|r| one(r)).collect()),
            (&tables.order_tombstones, rows.order_tombstones.iter().map(|r| one(r)).collect()),
            (&tables.suppressions, rows.suppressions.iter().map(|r| one(r)).collect()),
            (&tables.deliveries, rows.deliveries(&store).iter().map(|r| one(r)).collect()),
        ] {
            assert_eq!(table.bytes, rows.concat(), "the buffer is its rows' bytes");
            let mut rows = rows;
            rows.sort();
            for r in rows {
                hash.update(r);
            }
        }
        hash.update(format!("{} {} {}", rows.duplicates, rows.reattributed, rows.soft_bounces.len()));
        totals.0 += rows.event_rows();
        totals.1 += rows.reattributed;
        totals.2 += rows.delivery_table.rows;
        remember(&mut stored, &rows);
    }
    assert!(totals.1 > 0, "the stream re-attributes some rows: {totals:?}");
    (format!("{:x}", hash.finalize()), format!("{:x}", funnels.finalize()))
}

mod erased {
    /// A counter row of either table, as its `RowBinary` bytes.
    pub trait Row {
        fn bytes(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Row for T {
        fn bytes(&self) -> Vec<u8> {
            let mut b = Vec::new();
            aggregator::store::rowbinary::write(&mut b, self).unwrap();
            b
        }
    }
}

/// Keeps each event row by delivery key and event id (the latest wins, as `FINAL`).
fn remember(stored: &mut HashMap<String, Vec<EventRow>>, rows: &BatchRows) {
    for r in &rows.events() {
        let list = stored.entry(r.delivery_key.to_string()).or_default();
        match list.iter_mut().find(|s| s.event_id == r.event_id) {
            Some(slot) => *slot = r.clone().map_text(Text::into_static),
            None => list.push(r.clone().map_text(Text::into_static)),
        }
    }
}

#[test]
fn rows_are_unchanged_utc() {
    assert_eq!(digest(3_000, 500, "UTC"), ("3668117c5c988d2a80ac488ee8a677a40078fcc11164f734771ce3f3af05379b".into(), "1e233fc1f5f00688ff6c2439d573bb1983a0a8aaf4cfdbd8226784d0bf7dcf16".into()));
}

#[test]
fn rows_are_unchanged_with_a_reporting_zone() {
    assert_eq!(digest(1_000, 300, "Europe/Berlin"), ("d256ae9d6a7865f91904f1be525ee54921036dec974c7060bc97de2d6b208e09".into(), "a32b53170e20c47caa7b23311c9ff2ffefd8fae57ef00e5776571180742bb2b7".into()));
}

/// `store::rowbinary` writes what the crate reads: each table's bytes, sent as they are
/// through `insert_formatted` to `clickhouse::test::Mock`, read back by the crate's `RowBinary`
/// reader (`handlers::record`) as owned rows, are the rows they came from (compared as
/// printed: a batch's rows borrow their text, read rows own it).
#[tokio::test]
async fn our_rowbinary_is_the_crates_encoding() {
    use clickhouse::test::{handlers, Mock};
    use aggregator::store::{AttributedCounterRow, CounterRow, DeliveryRow, StatusCountRow};
    use aggregator::suppression::SuppressionRow;
    use clickhouse::{Client, Compression, RowOwned, RowRead};

    async fn check<T, B>(mock: &Mock, table: &str, rows: &[B])
    where
        T: RowOwned + RowRead + std::fmt::Debug,
        B: serde::Serialize + std::fmt::Debug,
    {
        let client = Client::default().with_url(mock.url()).with_compression(Compression::None);
        let recorded = mock.add(handlers::record::<T>());
        let mut bytes = Vec::new();
        for r in rows {
            aggregator::store::rowbinary::write(&mut bytes, r).unwrap();
        }
        let mut insert = client.insert_formatted_with(format!("INSERT INTO {table} FORMAT RowBinary"));
        insert.send(bytes.into()).await.unwrap();
        insert.end().await.unwrap();
        let got: Vec<T> = recorded.collect().await;
        assert!(format!("{got:?}") == format!("{rows:?}"), "{table}: read back differently");
    }

    let owned = support::stream(11, 400);
    let events = batch::refs(&owned);
    let store = StateStore::new(10_000);
    let mut rows = batch::apply(&store, 1, &events, &History::new(), 1, 1_767_225_600_000, &BatchConfig::default());
    assert!(!rows.applied.is_empty() && !rows.suppressions.is_empty() && !rows.status_counts.is_empty());
    let mock = Mock::new();
    check::<EventRow, _>(&mock, "events", &rows.events()).await;
    check::<CounterRow, _>(&mock, "counters", &rows.counters()).await;
    check::<AttributedCounterRow, _>(&mock, "attributed_counters", &rows.attributed_counters()).await;
    // and the rows written straight from the sums are those rows' bytes
    let funnel_rows = [rows.funnels.sums().len(), rows.funnels.recipients().len(), rows.funnels.statuses().len()];
    assert!(funnel_rows.iter().all(|n| *n > 0), "the batch has funnel rows of each kind: {funnel_rows:?}");
    let mut tables = batch::TableBuffers::default();
    rows.write_rowbinary(&mut tables).unwrap();
    assert_eq!([tables.funnels.rows, tables.funnel_recipients.rows, tables.funnel_statuses.rows], funnel_rows);
    let mut serialized = Vec::new();
    rows.counters().iter().try_for_each(|r| aggregator::store::rowbinary::write(&mut serialized, r)).unwrap();
    assert_eq!(tables.counters.bytes, serialized);
    serialized.clear();
    rows.events().iter().try_for_each(|r| aggregator::store::rowbinary::write(&mut serialized, r)).unwrap();
    assert_eq!(tables.events.bytes, serialized, "event rows written from the events = the rows' bytes");
    assert_eq!(tables.events.rows, rows.event_rows());
    serialized.clear();
    rows.deliveries(&store).iter().try_for_each(|r| aggregator::store::rowbinary::write(&mut serialized, r)).unwrap();
    assert_eq!(tables.deliveries.bytes, serialized, "delivery rows written from the states = the rows' bytes");
    assert_eq!(tables.deliveries.rows, rows.deliveries(&store).len());
    assert_eq!(tables.counters.rows, rows.counters().len());
    serialized.clear();
    rows.attributed_counters().iter().try_for_each(|r| aggregator::store::rowbinary::write(&mut serialized, r)).unwrap();
    assert_eq!(tables.attributed_counters.bytes, serialized);
    assert_eq!(tables.attributed_counters.rows, rows.attributed_counters().len());
    // The delivery rows moved into `tables` (their buffers traded): written again, the other
    // tables are the same and the deliveries empty, never half of them.
    let mut again = batch::TableBuffers::default();
    rows.write_rowbinary(&mut again).unwrap();
    assert_eq!((again.deliveries.rows, again.deliveries.bytes.len()), (0, 0));
    for b in [&again.funnels, &again.funnel_recipients, &again.funnel_statuses] {
        assert_eq!((b.rows, b.bytes.len()), (0, 0), "the funnels' rows moved too");
    }
    assert!(tables.all().iter().zip(again.all()).take(6).all(|(a, b)| a.bytes == b.bytes && a.rows == b.rows));
    check::<DeliveryRow, _>(&mock, "deliveries", &rows.deliveries(&store)).await;
    check::<StatusCountRow, _>(&mock, "delivery_status_counts", &rows.status_counts).await;
    check::<SuppressionRow, _>(&mock, "suppressions", &rows.suppressions).await;
    assert!(rows.into_delivery_buffer().is_empty(), "the buffer handed to the next batch is cleared");
}
