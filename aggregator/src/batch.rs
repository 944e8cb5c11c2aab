//! One batch of one partition: events in, the rows every table needs out.
//! Pure given the loaded state, so it can be tested without ClickHouse.

use crate::buckets::Periods;
use crate::counters::{Attribution, CounterTables, Dims, DimsText, Sums};
use crate::machine::MachineReason;
use crate::store::rowbinary::{self, RowBuffer};
use crate::store::{AttributedCounterRow, CounterRow, DeliveryRow, EventRow, OrderTombstone, StatusCountRow, Text, STATUS_BUCKET_MS};
use crate::state::{DeliveryKey, Facts, KeyHash, StateStore};
use crate::suppression::{self, SuppressionRow};
use schemas::{EventRef, EventType};
use std::borrow::Cow;
use std::collections::HashMap;

/// What a batch writes. The three large tables are not row structs: event rows are the
/// applied events themselves, counters the batch's sums, delivery rows already `RowBinary`
/// (written from the state as the batch ends); `write_rowbinary` writes them straight into
/// the tables' buffers, and `events()`, `counters()`, `deliveries()` build rows only for
/// reading. The small tables are rows borrowing their text from the events (`Text<'a>`).
/// Why: building a struct per row, then serializing it, cost more than the state update
/// several times over (BENCHMARKS.md §1b).
#[derive(Debug, Default)]
pub struct BatchRows<'a> {
    /// The events applied here, in the order their rows are written (then `moved`'s rows), the
    /// order of the batch's events (they are applied each delivery's together, in time order):
    /// kept as the events themselves and written straight into the `events` buffer
    /// (`write_rowbinary`); `events()` builds the rows for reading.
    pub applied: Vec<AppliedEvent<'a>>,
    /// Earlier event rows written again with their delivery's new attribution.
    pub moved: Vec<EventRow<Text<'a>>>,
    /// The events-topic partition of the batch (the rows' `events_partition`).
    pub partition: i32,
    /// `counters` and, by broadcast, sequence and template, `attributed_counters` (signed:
    /// late attribution moves counts): the sums, written as rows by `write_rowbinary`.
    pub counter_tables: CounterTables,
    /// The `deliveries` rows, written from each changed delivery's state as the batch ends
    /// (`state::row::write_delivery_row`); `deliveries()` builds them for reading.
    pub delivery_table: RowBuffer,
    /// The changed deliveries, in the rows' order: (key, an event of it, row version).
    pub changed: Vec<(DeliveryKey, &'a EventRef<'a>, u64)>,
    /// The rows' `updated_at`.
    pub now_ms: i64,
    /// Deliveries by first-known quarter hour and status: -1 for a changed delivery's old pair, +1 for its new one.
    pub status_counts: Vec<StatusCountRow<Text<'a>>>,
    /// Funnels per broadcast, sequence and template: -1 for a changed delivery's old facts, +1
    /// for its new ones (`funnels`, and by status `funnel_statuses`), and recipients moved
    /// between ids (`funnel_recipients`).
    pub funnels: crate::funnels::FunnelRows,
    /// `delivery_order` entries to remove: deliveries whose first known time changed.
    pub order_tombstones: Vec<OrderTombstone<Text<'a>>>,
    /// Suppressions caused by single events (complaints, hard bounces, unsubscribes).
    pub suppressions: Vec<SuppressionRow>,
    /// Soft email bounces: whether they cross the threshold needs the address's history.
    pub soft_bounces: Vec<&'a EventRef<'a>>,
    /// Events ignored because they were already applied (replays, provider retries).
    pub duplicates: usize,
    /// Earlier event rows written again with their delivery's new attribution.
    pub reattributed: usize,
}

/// An event applied by this batch: its row is the event's, with the delivery's attribution
/// after the batch and the machine reason it was classified with.
#[derive(Debug, Clone, Copy)]
pub struct AppliedEvent<'a> {
    pub event: &'a EventRef<'a>,
    /// Its events-topic offset.
    pub offset: i64,
    pub machine: Option<MachineReason>,
    pub attribution: Attribution,
}

/// A batch's tables as the inserts send them (`RowBinary`), one buffer each, kept by the
/// caller and reused batch after batch (cleared, not freed: no fresh pages per batch).
#[derive(Debug, Default)]
pub struct TableBuffers {
    pub events: RowBuffer,
    pub counters: RowBuffer,
    pub attributed_counters: RowBuffer,
    pub status_counts: RowBuffer,
    pub order_tombstones: RowBuffer,
    pub suppressions: RowBuffer,
    pub deliveries: RowBuffer,
    /// `funnels`, `funnel_recipients` and `funnel_statuses` (not in `all()`, whose tables
    /// `tests/batch_rows.rs` pins).
    pub funnels: RowBuffer,
    pub funnel_recipients: RowBuffer,
    pub funnel_statuses: RowBuffer,
    /// Where each row in `events` ends (the applied events' rows, then the moved ones, as
    /// `BatchRows::write_rowbinary` writes them): `recent::RecentHistory::record` copies the
    /// rows it keeps from here instead of encoding them a second time.
    pub event_ends: Vec<usize>,
    /// Not a table: the buffer the next batch writes its delivery rows into as it ends
    /// (`apply_reusing`), handed back by `BatchRows::into_delivery_buffer`. Why: a fresh
    /// ~750 KB buffer per batch came as fresh zeroed pages, 4 % of a batch (BENCHMARKS.md §1b).
    pub spare: Vec<u8>,
}

impl TableBuffers {
    /// Every buffer, in the order `tests/batch_rows.rs` pins them.
    pub fn all(&self) -> [&RowBuffer; 7] {
        [&self.events, &self.counters, &self.attributed_counters, &self.status_counts, &self.order_tombstones, &self.suppressions, &self.deliveries]
    }

    pub fn clear(&mut self) {
        for b in [
            &mut self.events,
            &mut self.counters,
            &mut self.attributed_counters,
            &mut self.status_counts,
            &mut self.order_tombstones,
            &mut self.suppressions,
            &mut self.deliveries,
            &mut self.funnels,
            &mut self.funnel_recipients,
            &mut self.funnel_statuses,
        ] {
            b.clear();
        }
        self.event_ends.clear();
    }
}

impl<'a> BatchRows<'a> {
    /// Writes every table's rows into `out` (cleared first). The delivery rows, already
    /// written as the batch ended (`delivery_table`), are not copied: their buffer and
    /// `out.deliveries`' trade places (copying them was ~360 instructions per event, 3 % of a
    /// batch; BENCHMARKS.md §1b), so `delivery_table.bytes` is `out`'s old buffer, cleared, after
    /// the call (`into_delivery_buffer` hands it to the next batch), and a second call writes
    /// the other tables and no delivery row. The funnels' rows, written as they were summed,
    /// move the same way (`FunnelRows::move_into`).
    pub fn write_rowbinary(&mut self, out: &mut TableBuffers) -> Result<(), rowbinary::Error> {
        out.clear();
        fn all<T: serde::Serialize>(buf: &mut RowBuffer, rows: &[T]) -> Result<(), rowbinary::Error> {
            rows.iter().try_for_each(|r| buf.push(r))
        }
        out.events.bytes.reserve(self.applied.len() * 512);
        out.event_ends.reserve(self.applied.len() + self.moved.len());
        for a in &self.applied {
            self.write_applied_row(a, &mut out.events.bytes);
            out.event_ends.push(out.events.bytes.len());
        }
        out.events.rows += self.applied.len();
        for row in &self.moved {
            out.events.push(row)?;
            out.event_ends.push(out.events.bytes.len());
        }
        self.counter_tables.write_rowbinary(&mut out.counters, &mut out.attributed_counters);
        // (by hand, as the serialized row: `tests/batch_rows.rs` compares them; through serde
        // ~320 instructions per event on a stream spread over months, a row per move)
        for r in &self.status_counts {
            use crate::store::rowbinary::{put, put_str};
            let b = &mut out.status_counts.bytes;
            put_str(b, &r.tenant);
            put(b, r.bucket.to_le_bytes());
            put_str(b, &r.status);
            put(b, r.deliveries.to_le_bytes());
        }
        out.status_counts.rows += self.status_counts.len();
        self.funnels.move_into(&mut out.funnels, &mut out.funnel_recipients, &mut out.funnel_statuses);
        all(&mut out.order_tombstones, &self.order_tombstones)?;
        all(&mut out.suppressions, &self.suppressions)?;
        std::mem::swap(&mut out.deliveries.bytes, &mut self.delivery_table.bytes);
        out.deliveries.rows = if out.deliveries.bytes.is_empty() { 0 } else { self.delivery_table.rows };
        Ok(())
    }

    /// The buffer of `delivery_table` (after `write_rowbinary`, the one it traded for), for the
    /// next batch (`apply_reusing`).
    pub fn into_delivery_buffer(self) -> Vec<u8> {
        self.delivery_table.bytes
    }

    /// The `deliveries` rows, rebuilt from `store` as it is now (for reading right after
    /// `apply`, before the store changes; the sink sends `delivery_table`).
    pub fn deliveries(&self, store: &StateStore) -> Vec<DeliveryRow<Text<'a>>> {
        let names = store.names();
        self.changed.iter().filter_map(|(key, e, version)| Some(DeliveryRow::from_state(e, &*store.map.get(key)?, &names, *version, self.now_ms))).collect()
    }

    /// Event rows: those of the applied events, then the moved ones.
    pub fn event_rows(&self) -> usize {
        self.applied.len() + self.moved.len()
    }

    /// The event rows (built for reading; the sink writes them from the events), in the order
    /// `write_rowbinary` writes them.
    pub fn events(&self) -> Vec<EventRow<Text<'a>>> {
        let text = |id: u32| (id != 0).then(|| Text::Owned(self.counter_tables.name(id).to_string()));
        let mut rows: Vec<EventRow<Text<'a>>> = self
            .applied
            .iter()
            .map(|a| {
                let mut row = EventRow::from_event(a.event, self.partition, a.offset);
                row.machine = Text::Borrowed(a.machine.map(|m| m.as_str()).unwrap_or_default());
                (row.broadcast_id, row.sequence_id, row.template_key) = (text(a.attribution.0), text(a.attribution.1), text(a.attribution.2));
                row
            })
            .collect();
        rows.extend(self.moved.iter().cloned());
        rows
    }

    /// Appends applied event `a`'s row to `out`, as the `events` insert sends it.
    pub fn write_applied_row(&self, a: &AppliedEvent<'_>, out: &mut Vec<u8>) {
        let name = |id: u32| (id != 0).then(|| self.counter_tables.name(id));
        let (b, s, t) = a.attribution;
        crate::store::write_event_row(out, a.event, self.partition, a.offset, a.machine.map_or("", |m| m.as_str()), [name(b), name(s), name(t)]);
    }

    /// The `counters` rows (built for reading; the sink writes them from the sums).
    pub fn counters(&self) -> Vec<CounterRow<Text<'static>>> {
        self.counter_tables.rows().0
    }

    /// The `attributed_counters` rows (built for reading, as `counters`).
    pub fn attributed_counters(&self) -> Vec<AttributedCounterRow<Text<'static>>> {
        self.counter_tables.rows().1
    }
}

/// Events whose states are prefetched together (`StateStore::prefetch`): enough misses in
/// flight to fill the CPU's miss buffers, few enough lines (~5 per state) to stay in L1/L2
/// until applied.
const PREFETCH: usize = 16;

/// How much of each event's text the batch loads ahead, from its tenant on: the record's
/// bytes after it hold the provider, message id, name, delivery key and recipient, the strings
/// a batch reads first (the tenant and provider interned, the identity written as the delivery's
/// row). Why: decoded long before it is applied, an event's text was a cache miss at its first
/// read (`Names::id` hashing and comparing the tenant); loaded with the next events' states,
/// the misses overlap: the batch in 0.89x the time at 2,000 and 20,000 events (BENCHMARKS.md
/// §1b). More (the whole `EventRef` too, or 320 bytes from the event id) was slower (1.01x).
const TEXT_PREFETCH: usize = 192;

/// At most this many keys of status moves are made room for before a batch (`apply_reusing`):
/// room for one per changed delivery of a whole 20,000-event batch is ~640 KB, mostly unused on
/// live traffic (whose moves share a few keys), and the pipeline's unit measured 1.01x with it.
const MOVES_SIZED: usize = 4_096;

/// Settings of the batch computation.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    pub periods: Periods,
    pub scanner_window_secs: i64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { periods: Periods::new("UTC").unwrap_or(Periods(Vec::new())), scanner_window_secs: crate::machine::DEFAULT_SCANNER_WINDOW_SECS }
    }
}

/// A delivery this batch changed: an event of it (the row's identity: tenant, provider,
/// message id, recipient), the offset of its latest applied event (the row's version),
/// and its attribution before the batch.
struct Touched<'a> {
    key: DeliveryKey,
    event: &'a EventRef<'a>,
    version: u64,
    before: Attribution,
    /// Its (first known time, status) before this batch, if it existed.
    status_before: Option<(i64, EventType)>,
    /// Its tenant's interned id (`Dims::tenant`).
    tenant: u32,
    /// Its funnel facts before this batch: an index into the batch's, `u32::MAX` if it is new.
    funnel_before: u32,
}

/// The event rows (by delivery key) applied before this batch, for deliveries whose
/// attribution this batch may change (`pipeline` loads them from ClickHouse).
pub type History = HashMap<String, Vec<EventRow>>;

/// Owned events as the `(offset, event)` pairs [`apply`] takes, borrowing their text (for
/// callers that hold owned events: tests, benches, tools; the pipeline decodes borrowed ones).
pub fn refs(events: &[(i64, schemas::Event)]) -> Vec<(i64, EventRef<'_>)> {
    events.iter().map(|(o, e)| (*o, e.as_event_ref())).collect()
}

/// Applies `events` (with their events-topic offsets) to the state and returns the rows.
/// Deliveries missing from `store` must have been loaded (or be new) before the call.
pub fn apply<'a>(store: &StateStore, partition: i32, events: &'a [(i64, EventRef<'a>)], history: &History, batch_seq: u64, now_ms: i64, cfg: &BatchConfig) -> BatchRows<'a> {
    apply_reusing(store, partition, &Keyed::new(events), history, batch_seq, now_ms, cfg, Vec::new())
}

/// A batch's events with what applying each reads of it alone (`state::Facts`: its delivery
/// key, its id's hash, its user agent's verdict), in the events' order: what
/// `StateStore::look_up` and [`apply_reusing`] read. Best computed as the events are decoded
/// (`with_facts`; the pipeline's `admit`), while each event's text is in cache. Why: the
/// pipeline read each event's key three times, and in time order (`apply`) each read was a
/// jump through the batch's bytes (BENCHMARKS.md §1b).
#[derive(Debug)]
pub struct Keyed<'a> {
    events: &'a [(i64, EventRef<'a>)],
    facts: Cow<'a, [Facts]>,
}

impl<'a> Keyed<'a> {
    pub fn new(events: &'a [(i64, EventRef<'a>)]) -> Keyed<'a> {
        Keyed { events, facts: Cow::Owned(events.iter().map(|(_, e)| Facts::of(e)).collect()) }
    }

    /// `events` with their facts computed before, one each (`None` if the counts differ).
    pub fn with_facts(events: &'a [(i64, EventRef<'a>)], facts: &'a [Facts]) -> Option<Keyed<'a>> {
        (events.len() == facts.len()).then_some(Keyed { events, facts: Cow::Borrowed(facts) })
    }

    pub fn events(&self) -> &'a [(i64, EventRef<'a>)] {
        self.events
    }

    /// Every event as `StateStore::look_up` takes them: (place, event, delivery key).
    pub fn places(&self) -> impl Iterator<Item = (usize, &'a EventRef<'a>, DeliveryKey)> + '_ {
        self.at(0..self.events.len())
    }

    /// The events at `places`, as [`Keyed::places`].
    pub fn at<'s>(&'s self, places: impl IntoIterator<Item = usize> + 's) -> impl Iterator<Item = (usize, &'a EventRef<'a>, DeliveryKey)> + 's {
        places.into_iter().filter_map(|i| Some((i, &self.events.get(i)?.1, self.facts.get(i)?.key)))
    }
}

/// As [`apply`], for `batch` with its keys (`Keyed`), writing the delivery rows into `buffer`
/// (cleared first): an earlier batch's (`TableBuffers::spare`, `BatchRows::into_delivery_buffer`),
/// so its pages are already mapped.
#[allow(clippy::too_many_arguments)]
pub fn apply_reusing<'a>(store: &StateStore, partition: i32, batch: &Keyed<'a>, history: &History, batch_seq: u64, now_ms: i64, cfg: &BatchConfig, mut buffer: Vec<u8>) -> BatchRows<'a> {
    let (events, facts) = (batch.events, &batch.facts);
    buffer.clear();
    let mut rows = BatchRows { applied: Vec::with_capacity(events.len()), partition, delivery_table: RowBuffer { bytes: buffer, rows: 0 }, ..Default::default() };
    let mut sums = Sums::for_batch(events.len(), cfg.periods.0.len());
    // deliveries changed by this batch, in first-seen order
    let mut touched: Vec<Touched<'a>> = Vec::with_capacity(events.len());
    // by the place of each delivery's first event (`Order::first`): its index in `touched`
    let mut touched_at: Vec<u32> = vec![u32::MAX; events.len()];
    // the applied events' delivery (index into `touched`) and dimensions
    let mut applied: Vec<(usize, DimsText)> = Vec::with_capacity(events.len());
    // and their places in `events`
    let mut applied_at: Vec<usize> = Vec::with_capacity(events.len());
    // an event's bucket starts, one per period (`counters::BucketStarts`)
    let periods = cfg.periods.0.len();
    let mut starts: Vec<u16> = Vec::with_capacity(periods);
    let mut bucket_starts = crate::counters::BucketStarts::new(&cfg.periods);
    let mut names = store.names();
    let mut held = store.lock();
    let order = Order::of(events, facts);
    // what each changed delivery counted for in its funnels before the batch (read at its first
    // event, while its state is in cache; `Touched::funnel_before` indexes it)
    // (sized for every event a new delivery: grown by doubling from empty, it was ~10 copies a
    // batch; BENCHMARKS.md §1b, "the funnels' sums")
    let mut funnel_befores: Vec<crate::funnels::Facts> = Vec::with_capacity(events.len());
    // The next few events' states are loaded together before they are applied
    // (`StateStore::prefetch`), and so is each one's text from its tenant on (`TEXT_PREFETCH`).
    // The next window's table slots are loaded too (`Locked::prefetch_slots`), so that this
    // window's lookups are all that wait; its keys, gathered then, are this window's next time.
    let window_keys = |window: Option<&&[usize]>, keys: &mut Vec<DeliveryKey>| {
        keys.clear();
        keys.extend(window.into_iter().flat_map(|w| w.iter()).filter_map(|i| facts.get(*i)).map(|f| f.key));
    };
    let mut keys: Vec<DeliveryKey> = Vec::with_capacity(PREFETCH);
    let mut next_keys: Vec<DeliveryKey> = Vec::with_capacity(PREFETCH);
    let mut windows = order.places.chunks(PREFETCH).peekable();
    window_keys(windows.peek(), &mut next_keys);
    while let Some(window) = windows.next() {
        std::mem::swap(&mut keys, &mut next_keys);
        window_keys(windows.peek(), &mut next_keys);
        held.prefetch_slots(&next_keys);
        let _found = held.prefetch(&keys);
        for i in window {
            if let Some((_, e)) = events.get(*i) {
                crate::memory::prefetch(e.tenant.as_ptr(), TEXT_PREFETCH);
            }
        }
        for (at, (offset, e), f) in window.iter().filter_map(|&i| Some((i, events.get(i)?, facts.get(i)?))) {
            let key = f.key;
            // (the state before the batch, read through the entry the event is applied with)
            let slot = order.first.get(at).and_then(|g| touched_at.get_mut(*g as usize));
            let first = slot.as_ref().is_none_or(|t| **t == u32::MAX);
            let (done, before) = held.apply_seen(f, &mut names, e, partition, batch_seq, cfg.scanner_window_secs, |s| {
                first.then(|| s.map_or(((0, 0, 0), None, None), |s| (s.attribution(), Some(seen_and_status(s)), Some(crate::funnels::Facts::of(s)))))
            });
            let Some(done) = done else {
                rows.duplicates += 1;
                continue;
            };
            let version = (*offset).max(0) as u64;
            let dims = Dims::of_event(e, done.machine, &mut names);
            let i = match order.first.get(at).and_then(|g| touched_at.get_mut(*g as usize)) {
                Some(i) if *i != u32::MAX => {
                    let i = *i as usize;
                    if let Some(t) = touched.get_mut(i) {
                        t.version = t.version.max(version);
                    }
                    i
                }
                slot => {
                    if let Some(slot) = slot {
                        *slot = touched.len() as u32;
                    }
                    let (before, status_before, funnel_before) = before.unwrap_or_default();
                    let funnel_before = funnel_before.map_or(u32::MAX, |f| {
                        funnel_befores.push(f);
                        funnel_befores.len() as u32 - 1
                    });
                    touched.push(Touched { key, event: e, version, before, status_before, tenant: dims.tenant(), funnel_before });
                    touched.len() - 1
                }
            };
            rows.applied.push(AppliedEvent { event: e, offset: *offset, machine: done.machine, attribution: (0, 0, 0) });
            applied_at.push(at);
            // (a push only for `Some`: extending by the `Option` copied all 168 bytes of it with a
            // `memcpy` call, `None` too: 6.7 % of a 20,000-event unit's time, BENCHMARKS.md §1b)
            if let Some(row) = suppression::immediate(e) {
                rows.suppressions.push(row);
            }
            if suppression::is_soft_email_bounce(e) {
                rows.soft_bounces.push(e);
            }
            let cost = e.cost.as_ref().map(|c| c.mantissa_at_scale()).unwrap_or(0);
            starts.clear();
            let day = bucket_starts.push(e.occurred_at, &mut starts);
            let text = sums.count_in(dims, &starts, day, cost, &names);
            applied.push((i, text));
        }
    }

    // Attribution is final only now: event rows and per-broadcast counters take the delivery's.
    // Each changed delivery's state is read once, now: its attribution after the batch (for
    // the event rows and counters below), its status move and its `deliveries` row.
    // (summed in a hash map keyed by integers, the tenant's interned id and the status, each
    // sum with its tenant's text; then the non-zero sums written in the map's order: a
    // `BTreeMap` by strings walked its tree with string compares per change; hashing and
    // comparing the strings was 3 % of a batch, BENCHMARKS.md §1b)
    // (sized for one key per changed delivery, up to `MOVES_SIZED`: a batch spread over months
    // makes nearly that many, and growing the map was ~180 instructions per event on such a
    // stream)
    let mut moves: rustc_hash::FxHashMap<(u32, i64, EventType), i64> = rustc_hash::FxHashMap::with_capacity_and_hasher(touched.len().min(MOVES_SIZED), Default::default());
    // the moved tenants' text, by interned id (`Touched::tenant`)
    let mut tenant_text: rustc_hash::FxHashMap<u32, &'a str> = Default::default();
    let mut last_tenant = None;
    let mut tombstones = Vec::new();
    rows.now_ms = now_ms;
    rows.delivery_table.bytes.reserve(touched.len() * 384);
    rows.changed.reserve(touched.len());
    let mut after: Vec<Attribution> = Vec::with_capacity(touched.len());
    // (and what each counts for in its funnels now, summed in a pass of its own below)
    let mut funnel_afters: Vec<Option<crate::funnels::Facts>> = Vec::with_capacity(touched.len());
    for (k, t) in touched.iter().enumerate() {
        if k % PREFETCH == 0 {
            keys.clear();
            keys.extend(touched.iter().skip(k).take(PREFETCH).map(|t| t.key));
            let _found = held.prefetch(&keys);
            for t in touched.iter().skip(k).take(PREFETCH) {
                crate::memory::prefetch(t.event.tenant.as_ptr(), TEXT_PREFETCH);
            }
        }
        let Some(s) = held.get(&t.key) else {
            after.push(t.before);
            funnel_afters.push(None);
            continue;
        };
        funnel_afters.push(Some(crate::funnels::Facts::of(s)));
        after.push(s.attribution());
        let now = seen_and_status(s);
        if t.status_before != Some(now) {
            let bucket = |t: i64| t - t.rem_euclid(STATUS_BUCKET_MS);
            if last_tenant != Some(t.tenant) {
                tenant_text.entry(t.tenant).or_insert(t.event.tenant.as_ref());
                last_tenant = Some(t.tenant);
            }
            if let Some((seen, status)) = t.status_before {
                *moves.entry((t.tenant, bucket(seen), status)).or_insert(0) -= 1;
                if seen != now.0 {
                    tombstones.push(OrderTombstone { tenant: Text::Borrowed(t.event.tenant), sort_at: seen, delivery_key: Text::Borrowed(t.event.delivery_key), version: t.version, is_deleted: 1 });
                }
            }
            *moves.entry((t.tenant, bucket(now.0), now.1)).or_insert(0) += 1;
        }
        crate::state::row::write_delivery_row(&mut rows.delivery_table.bytes, t.event, s, &names, t.version, now_ms);
        rows.delivery_table.rows += 1;
        rows.changed.push((t.key, t.event, t.version));
    }
    for (row, (i, text)) in rows.applied.iter_mut().zip(&applied) {
        let a = after.get(*i).copied().unwrap_or_default();
        row.attribution = a;
        let cost = row.event.cost.as_ref().map(|c| c.mantissa_at_scale()).unwrap_or(0);
        sums.count_attributed_in(*text, a, cost, &names);
    }
    // Events applied before this batch move from the old attribution to the new one (a send
    // record that arrived after its delivery's provider events): -1 there, +1 here, and the
    // event row is written again with the new attribution.
    // (only the events applied here: a duplicate in this batch of an earlier event was not counted here)
    // (built on first need: most batches move nothing)
    let mut moved: Vec<EventRow<Text<'a>>> = Vec::new();
    let mut batch_ids: Option<std::collections::HashSet<&str>> = None;
    for (t, a) in touched.iter().zip(&after) {
        if t.before == *a {
            continue;
        }
        for old in history.get(t.event.delivery_key).into_iter().flatten() {
            let batch_ids = batch_ids.get_or_insert_with(|| rows.applied.iter().map(|r| r.event.event_id).collect());
            if batch_ids.contains(old.event_id.as_str()) {
                continue; // (a replayed batch: already written once, counted here)
            }
            let Some(dims) = Dims::of_row(old, &mut names) else {
                tracing::warn!(message = "Stored event row not understood; not moved.", event_id = %old.event_id);
                continue;
            };
            sums.count_attributed(&cfg.periods, dims, t.before, old.occurred_at, old.cost_amount, -1, &names);
            sums.count_attributed(&cfg.periods, dims, *a, old.occurred_at, old.cost_amount, 1, &names);
            let mut row = old.clone();
            set_attribution(&mut row, *a, &names);
            row.reattributed = 1;
            moved.push(row);
        }
    }
    drop(batch_ids);
    // The event rows in the events' order, as they came (applied by delivery): writing them
    // reads each event's strings, and in this order they lie one after another.
    // (each place's index in `applied`, then gathered: a vector of `Option`s filled, then
    // flattened into the rows, was ~120 instructions per event; BENCHMARKS.md §1b)
    let mut index_at: Vec<u32> = vec![u32::MAX; events.len()];
    for (k, at) in applied_at.iter().enumerate() {
        if let Some(slot) = index_at.get_mut(*at) {
            *slot = k as u32;
        }
    }
    let by_delivery = std::mem::replace(&mut rows.applied, Vec::with_capacity(applied_at.len()));
    for k in index_at {
        if let Some(a) = by_delivery.get(k as usize) {
            rows.applied.push(*a);
        }
    }
    rows.counter_tables = sums.into_table(&cfg.periods);
    // The funnels, in a pass of their own over the facts read above: a changed delivery's old
    // facts taken back, its new ones added, unless equal (both here, so a delivery whose state
    // is not found above moves nothing). What they cost a batch, and what was tried:
    // BENCHMARKS.md §5.
    let mut funnels = crate::funnels::FunnelTables::default();
    for (t, now) in touched.iter().zip(&funnel_afters) {
        let Some(now) = now else { continue };
        funnels.change(t.tenant, funnel_befores.get(t.funnel_before as usize), now, || crate::state::row::lowercase(t.event.recipient));
    }
    rows.funnels = funnels.finish(&names);
    rows.reattributed = moved.len();
    rows.moved = moved;
    rows.order_tombstones = tombstones;
    // In the map's order, not sorted: the order of a batch's rows in one INSERT means nothing
    // (the token deduplicates the batch; `delivery_status_counts` is summed by its key), and a
    // replay sums the same moves into the same map, so it writes the same rows in the same
    // order. Sorting them by their strings' order cost ~600 instructions per event, by ranks
    // ~330 on a stream spread over months, where every move is its own quarter hour
    // (BENCHMARKS.md §1b). Into one vector sized once: grown by doubling, its fresh memory was
    // 8 % of a batch's time in page faults (mimalloc's transparent huge pages).
    let mut status_counts = Vec::with_capacity(moves.len());
    status_counts.extend(moves.into_iter().filter(|(_, n)| *n != 0).map(|((tenant, bucket, status), deliveries)| StatusCountRow {
        tenant: Text::Borrowed(tenant_text.get(&tenant).copied().unwrap_or_default()),
        bucket,
        status: Text::Borrowed(status.as_str()),
        deliveries,
    }));
    rows.status_counts = status_counts;
    rows
}

/// The places of `events` in the order a batch applies them: as they came, except that the
/// events of one delivery are applied together, in time order (ties in their order), at the
/// place of its first. Each delivery's state sees its events in time order, as machine
/// classification needs (an open that arrives just before its delivery event, in the same
/// batch, is judged against that delivery: `machine::classify`'s `too_fast` rule); nothing
/// else depends on the order across deliveries. Why not the whole batch in time order, as
/// before: events lie in the batch in the order they came, and in time order each one
/// applied, and later its delivery's row, was a read somewhere else in the batch's ~15 MB
/// (20,000 events): a cache miss each (BENCHMARKS.md §1b).
struct Order {
    /// The places in the order they are applied.
    places: Vec<usize>,
    /// By place: the place of the first event of its delivery (how `apply_reusing` finds the
    /// delivery's entry in `touched` without a map of its own).
    first: Vec<u32>,
}

impl Order {
    fn of(events: &[(i64, EventRef<'_>)], facts: &[Facts]) -> Order {
        let n = facts.len();
        let mut seen: HashMap<DeliveryKey, u32, KeyHash> = HashMap::with_capacity_and_hasher(n, KeyHash::default());
        let mut first: Vec<u32> = Vec::with_capacity(n);
        // by place: how many events the delivery whose first event is there has
        let mut count: Vec<u32> = vec![0; n];
        for (at, f) in facts.iter().enumerate() {
            let group = *seen.entry(f.key).or_insert(at as u32);
            first.push(group);
            if let Some(c) = count.get_mut(group as usize) {
                *c += 1;
            }
        }
        // the events of deliveries with more than one, as (first place, time, place), sorted:
        // each such delivery's events in time order, the deliveries in their first's order
        // (only these are sorted: sorting the whole batch was ~170 instructions per event)
        let mut repeated: Vec<(u32, i64, u32)> = events
            .iter()
            .zip(&first)
            .enumerate()
            .filter(|(_, (_, g))| count.get(**g as usize).is_some_and(|c| *c > 1))
            .map(|(at, ((_, e), g))| (*g, e.occurred_at, at as u32))
            .collect();
        if repeated.is_empty() {
            return Order { places: (0..n).collect(), first };
        }
        repeated.sort_unstable();
        let mut places = Vec::with_capacity(n);
        let mut next = repeated.iter().peekable();
        for (at, g) in first.iter().enumerate() {
            match count.get(*g as usize) {
                Some(1) => places.push(at),
                // a delivery's first event: all of its events here
                _ if *g as usize == at => {
                    while let Some((_, _, p)) = next.next_if(|(group, _, _)| group == g) {
                        places.push(*p as usize);
                    }
                }
                _ => {}
            }
        }
        Order { places, first }
    }
}

/// A delivery's first known time, the earliest of its status, queued, sent, delivered, bounced
/// and failed times (as `delivery_order_mv` computes it: its place in `delivery_order`)
/// and its status (with the time's quarter hour, its key in `delivery_status_counts`).
fn seen_and_status(s: &crate::state::DeliveryState) -> (i64, EventType) {
    use crate::state::times::Slot;
    let status = s.status.unwrap_or(schemas::EventType::Unknown);
    let status_at = s.first(status).unwrap_or_default();
    let first = [Slot::FirstQueued, Slot::FirstSent, Slot::FirstDelivered, Slot::FirstBounced, Slot::FirstFailed].into_iter().filter_map(|x| s.time(x)).fold(status_at, i64::min);
    (first, status)
}

/// An event row's attribution columns are its delivery's.
fn set_attribution(row: &mut EventRow<Text<'_>>, (b, s, t): Attribution, names: &crate::state::Names) {
    row.broadcast_id = names.value(b);
    row.sequence_id = names.value(s);
    row.template_key = names.value(t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::EventType;

    /// The state tests' event, for delivery `dk`.
    fn ev(id: &str, dk: &str, ty: EventType, t: i64) -> EventRef<'static> {
        let mut e = crate::state::tests::event(id, ty, None, t);
        e.delivery_key = schemas::testkit::leak(dk);
        e
    }

    /// `Keyed` pairs each event with its own facts: computed (`new`) or handed in
    /// (`with_facts`, refused when the counts differ), and `places`/`at` name them by place.
    #[test]
    fn keyed_events_carry_their_own_facts() {
        let events: Vec<(i64, EventRef<'static>)> = (0..5).map(|i| (i, ev(&format!("{i}"), &format!("d{}", i % 3), EventType::Opened, i))).collect();
        let facts: Vec<Facts> = events.iter().map(|(_, e)| Facts::of(e)).collect();
        let keyed = Keyed::new(&events);
        let want: Vec<(usize, DeliveryKey)> = events.iter().enumerate().map(|(i, (_, e))| (i, DeliveryKey::of(e.delivery_key))).collect();
        assert_eq!(keyed.places().map(|(i, e, k)| (i, e.event_id, k)).collect::<Vec<_>>(), events.iter().enumerate().map(|(i, (_, e))| (i, e.event_id, want[i].1)).collect::<Vec<_>>());
        assert_eq!(keyed.at([4, 1, 9]).map(|(i, _, k)| (i, k)).collect::<Vec<_>>(), vec![want[4], want[1]], "a place past the end is none");
        let given = Keyed::with_facts(&events, &facts).expect("one fact per event");
        assert_eq!(given.places().map(|(i, _, k)| (i, k)).collect::<Vec<_>>(), want);
        assert!(Keyed::with_facts(&events, &facts[..4]).is_none());
        assert!(Keyed::with_facts(&events[..4], &facts).is_none());
    }

    #[test]
    fn duplicates_are_neither_rows_nor_counts() {
        let store = StateStore::new(100);
        let day = 86_400_000;
        let events = vec![
            (0, ev("1", "d1", EventType::Sent, day)),
            (1, ev("2", "d1", EventType::Delivered, day + 5)),
            (2, ev("2", "d1", EventType::Delivered, day + 5)),
            (3, ev("3", "d2", EventType::Sent, 2 * day)),
        ];
        let rows = apply(&store, 0, &events, &History::new(), 1, 0, &BatchConfig::default());
        assert_eq!(rows.events().len(), 3);
        assert_eq!(rows.duplicates, 1);
        assert_eq!(rows.deliveries(&store).len(), 2);
        let day_total: u64 = rows.counters().iter().filter(|c| c.period == "day").map(|c| c.events).sum();
        assert_eq!(day_total, 3);
        let delivery_rows = rows.deliveries(&store);
        let d1 = delivery_rows.iter().find(|d| d.delivery_key == "d1").unwrap();
        assert_eq!(d1.status, "delivered");
        assert_eq!(d1.version, 1);
        // the same batch again changes nothing
        let again = apply(&store, 0, &events, &History::new(), 2, 0, &BatchConfig::default());
        assert!(again.events().is_empty() && again.counters().is_empty() && again.deliveries(&store).is_empty());
        assert!(again.attributed_counters().is_empty());
    }

    #[test]
    fn events_apply_as_they_came_each_delivery_at_its_first_in_time_order() {
        // (delivery, time) by place
        let batch = [("d1", 30), ("d2", 5), ("d1", 10), ("d3", 1), ("d1", 10), ("d2", 50)];
        let events: Vec<(i64, EventRef<'static>)> = batch.iter().enumerate().map(|(i, (d, t))| (i as i64, ev(&i.to_string(), d, EventType::Delivered, *t))).collect();
        let keyed = Keyed::new(&events);
        let order = Order::of(&events, &keyed.facts);
        // d1 where its first came (place 0), its three by time, ties as they came; then d2; d3
        assert_eq!(order.places, vec![2, 4, 0, 1, 5, 3]);
        assert_eq!(order.first, vec![0, 1, 0, 3, 0, 1]);
        // every place once; each delivery's times ascending (a brute-force check)
        let mut sorted = order.places.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..batch.len()).collect::<Vec<_>>());
        for d in ["d1", "d2", "d3"] {
            let times: Vec<i64> = order.places.iter().filter(|&&p| batch[p].0 == d).map(|&p| batch[p].1).collect();
            assert!(times.is_sorted(), "{d}: {times:?}");
        }
        // one event per delivery: as they came
        let single: Vec<(i64, EventRef<'static>)> = (0..4).map(|i| (i, ev(&i.to_string(), &format!("d{i}"), EventType::Sent, 100 - i))).collect();
        assert_eq!(Order::of(&single, &Keyed::new(&single).facts).places, vec![0, 1, 2, 3]);
    }

    proptest::proptest! {
        /// `Order` against a brute force: the places sorted by (the place of the delivery's
        /// first event, time, place).
        #[test]
        fn order_is_by_first_place_then_time(batch in proptest::collection::vec((0u8..6, 0i64..4), 0..40)) {
            let events: Vec<(i64, EventRef<'static>)> = batch.iter().enumerate().map(|(i, (d, t))| (i as i64, ev(&i.to_string(), &format!("d{d}"), EventType::Delivered, *t))).collect();
            let keyed = Keyed::new(&events);
            let order = Order::of(&events, &keyed.facts);
            let first_of = |d: u8| batch.iter().position(|(x, _)| *x == d).unwrap_or(0);
            let mut want: Vec<usize> = (0..batch.len()).collect();
            want.sort_by_key(|&p| (first_of(batch[p].0), batch[p].1, p));
            proptest::prop_assert_eq!(&order.places, &want);
            let first: Vec<u32> = batch.iter().map(|(d, _)| first_of(*d) as u32).collect();
            proptest::prop_assert_eq!(order.first, first);
        }
    }

    #[test]
    fn an_open_before_its_delivery_in_one_batch_is_judged_against_it() {
        let store = StateStore::new(100);
        let browser = Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15");
        let mut open = ev("1", "d1", EventType::Opened, 100_000 + 3_000);
        open.user_agent = browser;
        let mut late_open = ev("3", "d1", EventType::Opened, 100_000 + 600_000);
        late_open.user_agent = browser;
        // arrival order: the opens first, the delivery last
        let events = vec![(0, open), (1, late_open), (2, ev("2", "d1", EventType::Delivered, 100_000))];
        let rows = apply(&store, 0, &events, &History::new(), 1, 0, &BatchConfig::default());
        let event_rows = rows.events();
        let machine: Vec<(&str, &str)> = event_rows.iter().map(|r| (r.event_id.as_str(), r.machine.as_str())).collect();
        assert!(machine.contains(&(events[0].1.event_id, "too_fast")), "3 s after delivery: {machine:?}");
        assert!(machine.contains(&(events[1].1.event_id, "")), "10 minutes after: a person");
        let d = &rows.deliveries(&store)[0];
        assert_eq!((d.open_count, d.machine_open_count, d.version), (1, 1, 2));
    }

    /// Sum of `attributed_counters` rows of `period` by (broadcast, event type).
    fn by_broadcast(rows: &[&BatchRows], period: &str) -> std::collections::BTreeMap<(String, String), i64> {
        let mut m = std::collections::BTreeMap::new();
        for r in rows {
            for c in r.attributed_counters().iter().filter(|c| c.period == period) {
                *m.entry((c.broadcast_id.to_string(), c.event_type.to_string())).or_insert(0) += c.events;
            }
        }
        m.retain(|_, n| *n != 0);
        m
    }

    #[test]
    fn a_late_send_record_moves_earlier_events_to_its_broadcast() {
        let store = StateStore::new(100);
        let cfg = BatchConfig::default();
        let day = 86_400_000;
        // batch 1: provider events, no attribution; a send record in the same batch as its events
        let b1 = vec![
            (0, ev("1", "d1", EventType::Delivered, day)),
            (1, ev("2", "d1", EventType::Opened, day + 5)),
            (2, ev("3", "d2", EventType::Delivered, day)),
            (3, { let mut r = ev("4", "d2", EventType::Queued, day - 5); r.provider_event_name = "send_record"; r.origin = schemas::Origin::SendRecord; r.broadcast_id = Some("b-2"); r }),
        ];
        let r1 = apply(&store, 0, &b1, &History::new(), 1, 0, &cfg);
        assert_eq!(r1.reattributed, 0);
        let d2_rows: Vec<_> = r1.events().iter().filter(|e| e.delivery_key == "d2").map(|e| e.broadcast_id.as_deref().map(str::to_string)).collect();
        assert_eq!(d2_rows, vec![Some("b-2".to_string()); 2], "same batch: the delivered row already carries the record's broadcast");
        // batch 2: d1's send record arrives; its earlier rows are the history the pipeline loads
        let mut record = ev("5", "d1", EventType::Queued, day - 10);
        record.provider_event_name = "send_record"; record.origin = schemas::Origin::SendRecord;
        record.broadcast_id = Some("b-1");
        let history: History = [("d1".to_string(), r1.events().iter().filter(|e| e.delivery_key == "d1").map(|e| e.clone().map_text(Text::into_static)).collect())].into();
        // with a redelivery of an earlier event in the same batch (a duplicate, not counted here)
        let b2 = vec![(4, record), (5, ev("1", "d1", EventType::Delivered, day))];
        let r2 = apply(&store, 0, &b2, &history, 2, 0, &cfg);
        assert_eq!(r2.reattributed, 2);
        assert!(r2.events().iter().filter(|e| e.reattributed == 1).all(|e| e.broadcast_id.as_deref() == Some("b-1")));
        let want: std::collections::BTreeMap<(String, String), i64> = [
            (("b-1".into(), "delivered".into()), 1),
            (("b-1".into(), "opened".into()), 1),
            (("b-1".into(), "queued".into()), 1),
            (("b-2".into(), "delivered".into()), 1),
            (("b-2".into(), "queued".into()), 1),
        ]
        .into();
        for period in ["day", "week", "month"] {
            assert_eq!(by_broadcast(&[&r1, &r2], period), want, "{period}: nothing left unattributed, nothing twice");
        }
        // replaying batch 2 with the history now holding its own rows changes nothing
        let again = apply(&store, 0, &b2, &history, 3, 0, &cfg);
        assert!(again.attributed_counters().is_empty() && again.events().is_empty());
    }
}
