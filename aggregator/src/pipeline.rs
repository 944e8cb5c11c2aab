//! The consumer loop: events topic → ClickHouse, exactly once in effect.
//!
//! Per partition, buffered events form batches; each partition this process holds has an
//! [`Aggregator`] of its own, and the partitions of a batch are drained concurrently
//! ([`Partitions`]). Each batch is written as:
//! `pending` manifest → events → counters → attributed counters → delivery status counts → delivery order tombstones → suppressions (table, then the
//! compacted topic) → deliveries (and, by a view, delivery order) → dead letters → `done` manifest,
//! every insert with a token derived from the batch's offset range; then the
//! Kafka offset is stored for commit. A failed write is retried with the same
//! rows and tokens (backoff, no data dropped); see `offsets` for restarts, and for the claim
//! that fences off a second writer of the same partition (checked after each `pending`).
//! Records that can never be applied go to the dead-letter topic instead of stalling the
//! partition (`admission`, and `Aggregator::write_unit` for what ClickHouse refuses).

use crate::admission;
use crate::batch::{self, BatchRows};
use crate::isolate;
use crate::dead_letter::{self, Reason};
use crate::config::Config;
use crate::offsets::{self, Cursor};
use crate::rebalance::{HealthLeader, RebalanceFlag, Rebalanced};
use crate::recent::RecentHistory;
use crate::sender_health_monitor::monitor_health;
use crate::store::{insert_buffer, load_deliveries, load_events, AttributedCounterRow, CounterRow, DeliveryRow, EventRow, OrderTombstone, SinkError, StatusCountRow};
use clickhouse::Row as _;
use crate::store::failure;
use crate::store::retry::{retry, retry_transient};
use crate::state::{DeliveryKey, Facts, StateStore};
use crate::stored_keys::{Lookup, StoredKeys};
use crate::suppression;
use runtime::kafka::ReplaceableProducer;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use runtime::backoff::Backoff;
use runtime::batch::{read_batch, Batch, BatchLimits};
use runtime::clock::now_ms;
use runtime::shutdown::CancellationToken;
use runtime::telemetry::Health;
use bumpalo::Bump;
use schemas::avro::CodecError;
use schemas::{DeadLetter, EventRef};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// What draining a partition's buffer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Shutdown was requested while waiting on ClickHouse or Kafka.
    Shutdown,
    /// Nothing could be applied (empty, or waiting for the end of a pending range).
    Idle,
    /// Applied up to this offset (to store in Kafka).
    Applied(i64),
    /// Another writer claimed the partition (`offsets`, the fence): nothing of the batch
    /// starting at offset `from` was written, and everything this aggregator held of the
    /// partition (claim, cursor, deliveries) is forgotten; its records are still buffered.
    /// The partition is claimed again when next drained, unless a rebalance takes it away.
    Fenced { from: i64 },
}

/// Why writing a unit stopped before its end.
enum Stop {
    Shutdown,
    Fenced,
}

/// How writing one piece ended (shutdown aside).
enum Piece {
    Written,
    /// Refused permanently by ClickHouse before any counter landed (`write_unit`).
    Refused(SinkError),
    /// Another writer holds the partition now: nothing of the piece's data was written.
    Fenced,
}

#[derive(Default)]
struct Partition {
    /// This aggregator's claim on the partition (`offsets::claim`), made before its cursor is loaded.
    claim: Option<offsets::Claim>,
    cursor: Option<Cursor>,
    buffer: Vec<(i64, Option<Vec<u8>>)>,
    /// The fingerprints of the partition's stored deliveries (`stored_keys`), loaded after the
    /// claim.
    stored: Filter,
}

/// A partition's [`StoredKeys`] filter.
#[derive(Debug, Default)]
enum Filter {
    /// Not loaded since the claim (or the partition count is not known).
    #[default]
    Unloaded,
    /// Off until the partition is claimed again: every delivery not in memory is read.
    Off,
    On(StoredKeys),
}

/// Each partition's share of the memory bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub deliveries: usize,
    pub history_bytes: usize,
    pub stored_keys: usize,
}

pub struct Aggregator {
    cfg: Config,
    batch_cfg: batch::BatchConfig,
    client: clickhouse::Client,
    producer: Arc<ReplaceableProducer>,
    store: StateStore,
    /// The event rows of the deliveries this aggregator created since its claims (`recent`).
    recent: RecentHistory,
    partitions: HashMap<i32, Partition>,
    /// The events topic's partition count, if known (`Partitions::set_partition_count`):
    /// without it no [`StoredKeys`] filter is loaded.
    partition_count: Option<i32>,
    /// The most stored-delivery fingerprints a partition's filter may hold.
    max_stored_keys: usize,
    batch_seq: u64,
    /// Each table's `RowBinary`, reused batch after batch (BENCHMARKS.md §1b).
    tables: batch::TableBuffers,
    /// This process's name in its claims (`offsets::claim`): host, process id and a random part.
    writer: String,
}

/// What the aggregators of one process share (`Partitions`): the ClickHouse client, the
/// producer, the batch settings and the writer name of its claims.
#[derive(Clone)]
pub struct Shared {
    client: clickhouse::Client,
    producer: Arc<ReplaceableProducer>,
    batch_cfg: batch::BatchConfig,
    writer: String,
}

impl Shared {
    pub fn new(cfg: &Config) -> anyhow::Result<Self> {
        let periods = crate::buckets::Periods::new(&cfg.reporting_time_zone).map_err(anyhow::Error::msg)?;
        Ok(Shared {
            client: cfg.clickhouse.client(),
            producer: Arc::new(ReplaceableProducer::new(cfg.kafka.clone())?),
            batch_cfg: batch::BatchConfig { periods, scanner_window_secs: cfg.scanner_window_secs },
            writer: writer_id(),
        })
    }
}

impl Aggregator {
    /// An aggregator with its own client, producer and writer name, and the configured memory
    /// bounds (one process holding every partition through it; tests).
    pub fn new(cfg: Config) -> anyhow::Result<Self> {
        let shared = Shared::new(&cfg)?;
        let bounds = Bounds { deliveries: cfg.max_deliveries_in_memory, history_bytes: cfg.max_history_bytes_in_memory, stored_keys: cfg.max_stored_keys_in_memory };
        Ok(Aggregator::with_shared(cfg, shared, bounds))
    }

    /// An aggregator on `shared` parts, keeping at most `max_deliveries` states and
    /// `max_history_bytes` of rows for late send records (`recent`).
    pub fn with_shared(cfg: Config, shared: Shared, bounds: Bounds) -> Self {
        let Shared { client, producer, batch_cfg, writer } = shared;
        let (store, recent) = (StateStore::new(bounds.deliveries), RecentHistory::new(bounds.history_bytes));
        let (partitions, partition_count, max_stored_keys) = (HashMap::new(), None, bounds.stored_keys);
        Aggregator { cfg, batch_cfg, client, producer, store, recent, partitions, partition_count, max_stored_keys, batch_seq: 0, tables: Default::default(), writer }
    }

    /// Sets the memory bounds (`with_shared`); what is held beyond them goes at the next batch
    /// (a stored-keys filter over its new bound, when next used).
    fn set_bounds(&mut self, bounds: Bounds) {
        self.store.max_deliveries = bounds.deliveries;
        self.recent.set_max_bytes(bounds.history_bytes);
        self.max_stored_keys = bounds.stored_keys;
    }

    /// The events topic's partition count (`None`: unknown): the filters of another count are
    /// dropped (each is loaded again after the next claim).
    pub fn set_partition_count(&mut self, n: Option<i32>) {
        if self.partition_count != n {
            self.partition_count = n;
            self.partitions.values_mut().for_each(|part| part.stored = Filter::Unloaded);
        }
    }

    /// Fingerprints held by this aggregator's stored-keys filters.
    fn stored_keys(&self) -> usize {
        self.partitions.values().map(|part| if let Filter::On(f) = &part.stored { f.len() } else { 0 }).sum()
    }

    /// Whether records are buffered for some partition.
    fn has_buffered(&self) -> bool {
        self.partitions.values().any(|p| !p.buffer.is_empty())
    }

    /// This aggregator's name in its partition claims.
    pub fn writer(&self) -> &str {
        &self.writer
    }

    /// Buffers record `offset` of partition `p` (as read from the events topic, in offset order).
    /// A record at or before the last one buffered means the consumer went back (a seek): what
    /// follows it is read again, so the buffer keeps only what came before it.
    pub fn offer(&mut self, p: i32, offset: i64, payload: Option<Vec<u8>>) {
        let buffer = &mut self.partitions.entry(p).or_default().buffer;
        if buffer.last().is_some_and(|(o, _)| *o >= offset) {
            buffer.truncate(buffer.partition_point(|(o, _)| *o < offset));
        }
        buffer.push((offset, payload));
    }

    /// Drops what this aggregator holds of partition `p`'s deliveries, their states and their
    /// rows kept for late send records (`recent`): another writer may have changed them (a
    /// claim, or a fence). Returns how many states.
    fn forget_partition(&mut self, p: i32) -> usize {
        self.recent.forget_partition(p);
        self.store.forget_partition(p)
    }

    /// Processes everything buffered for `p` that can be processed.
    pub async fn drain_partition(&mut self, p: i32, shutdown: &CancellationToken) -> Drained {
        match self.drain(p, shutdown).await {
            Err(Stop::Shutdown) => Drained::Shutdown,
            Err(Stop::Fenced) => {
                let part = self.partitions.entry(p).or_default();
                let from = part.buffer.first().map_or(-1, |(o, _)| *o);
                (part.claim, part.cursor, part.stored) = (None, None, Filter::Unloaded);
                let forgotten = self.forget_partition(p);
                metrics::counter!("sendtrace_aggregator_fenced_total").increment(1);
                warn!(message = "Another aggregator claimed the partition; its batch was not written.", partition = p, from, deliveries_forgotten = forgotten);
                Drained::Fenced { from }
            }
            Ok(None) => Drained::Idle,
            Ok(Some(last)) => Drained::Applied(last),
        }
    }

    /// Loads partition `p`'s stored-keys filter (of `n` partitions); `None`: shutdown. A
    /// partition with more stored deliveries than the bound, or a load ClickHouse refuses,
    /// goes without (`Filter::Off`) until claimed again.
    async fn load_filter(&self, p: i32, n: i32, shutdown: &CancellationToken) -> Option<Filter> {
        let (client, max) = (self.client.clone(), self.max_stored_keys);
        let started = std::time::Instant::now();
        let loaded = retry_transient("load_stored_keys", self.cfg.max_retry_backoff_ms, shutdown, || StoredKeys::load(&client, p, n, max)).await?;
        metrics::histogram!("sendtrace_aggregator_clickhouse_query_duration_seconds", "query" => "load_stored_keys").record(started.elapsed().as_secs_f64());
        Some(match loaded {
            Ok(Some(f)) => {
                info!(message = "Stored deliveries' fingerprints loaded.", partition = p, partitions = n, deliveries = f.len(), ms = started.elapsed().as_millis() as u64);
                Filter::On(f)
            }
            Ok(None) => {
                metrics::counter!("sendtrace_aggregator_stored_keys_off_total", "reason" => "over_bound").increment(1);
                warn!(message = "More deliveries stored for the partition than max_stored_keys_in_memory allows it; every delivery not in memory is read.", partition = p, max);
                Filter::Off
            }
            Err(e) => {
                metrics::counter!("sendtrace_aggregator_stored_keys_off_total", "reason" => "load_refused").increment(1);
                warn!(message = "Loading the stored deliveries' fingerprints failed; every delivery not in memory is read.", partition = p, error = %e);
                Filter::Off
            }
        })
    }

    /// [`Aggregator::drain_partition`] in `?` form: the last offset applied, if any.
    async fn drain(&mut self, p: i32, shutdown: &CancellationToken) -> Result<Option<i64>, Stop> {
        let (group, topic, max_backoff) = (self.cfg.group_id.clone(), self.cfg.events_topic.clone(), self.cfg.max_retry_backoff_ms);
        self.partitions.entry(p).or_default();
        let mut applied = None;
        loop {
            let Some(part) = self.partitions.get_mut(&p) else { return Ok(applied) };
            if part.claim.is_none() {
                let (client, writer) = (self.client.clone(), self.writer.clone());
                let claim = retry("claim", max_backoff, shutdown, || offsets::claim(&client, &group, &topic, p, &writer, now_ms())).await.ok_or(Stop::Shutdown)?;
                let forgotten = self.forget_partition(p);
                info!(message = "Partition claimed.", partition = p, epoch = claim.epoch, deliveries_forgotten = forgotten);
                let Some(part) = self.partitions.get_mut(&p) else { return Ok(applied) };
                (part.claim, part.cursor, part.stored) = (Some(claim), None, Filter::Unloaded);
            }
            let Some(part) = self.partitions.get_mut(&p) else { return Ok(applied) };
            if part.cursor.is_none() {
                let client = self.client.clone();
                let c = retry("load_cursor", max_backoff, shutdown, || offsets::load_cursor(&client, &group, &topic, p)).await.ok_or(Stop::Shutdown)?;
                info!(message = "Partition cursor loaded.", partition = p, done_upto = c.done_upto, pending = ?c.pending);
                part.cursor = Some(c);
            }
            if matches!(part.stored, Filter::Unloaded) {
                if let Some(n) = self.partition_count.filter(|_| self.max_stored_keys > 0) {
                    let filter = self.load_filter(p, n, shutdown).await.ok_or(Stop::Shutdown)?;
                    let Some(part) = self.partitions.get_mut(&p) else { return Ok(applied) };
                    part.stored = filter;
                }
            }
            let Some(part) = self.partitions.get_mut(&p) else { return Ok(applied) };
            let cursor = part.cursor.unwrap_or_default();
            part.buffer.retain(|(o, _)| *o > cursor.done_upto);
            if part.buffer.is_empty() {
                return Ok(applied);
            }
            let take = match cursor.pending {
                Some((_, last)) => {
                    if part.buffer.iter().all(|(o, _)| *o < last) {
                        return Ok(applied); // redo exactly the pending range: wait for its end
                    }
                    part.buffer.iter().take_while(|(o, _)| *o <= last).count()
                }
                None => part.buffer.len(),
            };
            let Some(last) = take.checked_sub(1).and_then(|i| part.buffer.get(i)).map(|(o, _)| *o) else {
                // the pending range's records are not on the topic (a gap ends there): nothing to redo
                warn!(message = "A pending range has no records left; going on after it.", partition = p, pending = ?cursor.pending);
                part.cursor = Some(Cursor { done_upto: cursor.done_upto, pending: None });
                continue;
            };
            let unit: Vec<(i64, Option<Vec<u8>>)> = part.buffer.drain(..take).collect();
            // (a redone range may have written event rows of deliveries it finds new: `recent`)
            let redo = cursor.pending.is_some();
            match self.write_unit(p, &unit, redo, shutdown).await {
                Ok(()) => {}
                Err(stop) => {
                    // the unit was not (entirely) written: back into the buffer, in front
                    if let Some(part) = self.partitions.get_mut(&p) {
                        part.buffer.splice(0..0, unit);
                    }
                    return Err(stop);
                }
            }
            if let Some(part) = self.partitions.get_mut(&p) {
                // after a redone piece of a bisected batch, its parent's range may still bind
                // what comes next (`offsets::cursor_of`): read the manifest again
                part.cursor = match cursor.pending {
                    Some(_) => None,
                    None => Some(Cursor { done_upto: last, pending: None }),
                };
            }
            applied = Some(last);
        }
    }

    /// Decodes and admits the records of a unit: the events to apply (in offset order) and the
    /// dead letters of the records refused (`admission`), in offset order.
    ///
    /// The events borrow their text from the records; a record written with an older event
    /// schema (during a rolling upgrade) is rewritten in the current one into `upgraded`, which
    /// the caller keeps as long as the events (empty, and no allocation, when there is none).
    fn admit<'a>(&self, p: i32, unit: &'a [(i64, Option<Vec<u8>>)], upgraded: &'a Bump) -> Admitted<'a> {
        let mut events = Vec::with_capacity(unit.len());
        let mut facts = Vec::with_capacity(unit.len());
        let mut refused = Vec::new();
        let topic = self.cfg.events_topic.as_str();
        for (o, payload) in unit {
            let bytes = payload.as_deref().unwrap_or_default();
            // (decoded onto the end of `events`: copied there once, not moved three times)
            let decoded = match schemas::avro::decode_event_ref_onto(bytes, *o, &mut events) {
                Err(CodecError::OlderSchema) => {
                    // (how many are still coming tells when a rolling upgrade has finished)
                    metrics::counter!("sendtrace_aggregator_older_schema_records_total").increment(1);
                    schemas::avro::upgrade_event(bytes)
                        .and_then(|current| schemas::avro::decode_event_ref_onto(upgraded.alloc_slice_copy(&current), *o, &mut events))
                }
                decoded => decoded,
            };
            let (reason, e) = match decoded {
                Ok(()) => {
                    // (pushed just above: `last` is that event)
                    let Some((_, e)) = events.last() else { continue };
                    match admission::admit(e, &self.cfg.event_limits) {
                        Ok(()) => {
                            // (what applying it reads of it alone, now, while its text is in cache)
                            facts.push(Facts::of(e));
                            continue;
                        }
                        Err(r) => (Reason { code: r.code, reason: r.reason }, events.pop().map(|(_, e)| e)),
                    }
                }
                Err(error) => {
                    metrics::counter!("sendtrace_aggregator_undecodable_total", "reason" => error.code()).increment(1);
                    (Reason { code: "undecodable", reason: format!("not a readable event record ({})", error.code()) }, None)
                }
            };
            warn!(message = "Event refused; dead-lettered.", partition = p, offset = o, reason = reason.code);
            let (tenant, provider) = (e.as_ref().map(|e| e.tenant), e.as_ref().map(|e| e.provider));
            refused.push((*o, dead_letter::record(&reason, (topic, p, *o), tenant, provider, bytes, self.cfg.dead_letter_max_raw_bytes, now_ms())));
        }
        (events, facts, refused)
    }

    /// Writes one unit (a batch, not empty) of one partition.
    ///
    /// Poison records: a record that can never be applied must not stall the partition, and
    /// skipping it must not break exactly-once. Two layers:
    /// 1. `admission` refuses, per record, what cannot be stored or computed (times out of
    ///    range, oversized fields): a function of the record alone, so a replay refuses it again.
    /// 2. A batch that ClickHouse still refuses permanently (`store::failure`) before any of its
    ///    counters landed (loading its state, or inserting its event rows: the first insert,
    ///    which carries every value the later rows repeat) has its in-memory state dropped
    ///    (reloaded from ClickHouse, which holds everything before it) and is bisected into
    ///    batches of their own down to the refused records, which are dead-lettered
    ///    (`isolate`: why bisection, and why restarts stay exact).
    ///
    /// A piece whose claim check fails (`offsets::holds`) stops the unit: `Stop::Fenced`.
    /// `redo`: the unit is a pending range written again (its new deliveries are not `recent`'s).
    async fn write_unit(&mut self, p: i32, unit: &[(i64, Option<Vec<u8>>)], redo: bool, shutdown: &CancellationToken) -> Result<(), Stop> {
        metrics::histogram!("sendtrace_aggregator_batch_records").record(unit.len() as f64);
        let upgraded = Bump::new();
        let (events, facts, refused) = self.admit(p, unit, &upgraded);
        let mut w = UnitWriter { agg: self, p, unit, events: &events, facts: &facts, refused: &refused, redo, shutdown, fenced: false };
        let Some(cuts) = isolate::write_bisecting(&mut w, unit.len()).await else {
            return Err(if w.fenced { Stop::Fenced } else { Stop::Shutdown });
        };
        if cuts > 0 {
            metrics::counter!("sendtrace_aggregator_batch_splits_total").increment(cuts as u64);
        }
        Ok(())
    }

    /// Drops the in-memory state of the deliveries of `events` (after a refused batch: its
    /// changes never reached ClickHouse; the next batch reloads the stored state).
    fn forget(&self, events: &[(i64, EventRef<'_>)]) {
        for (_, e) in events {
            self.store.map.remove(&DeliveryKey::of(e.delivery_key));
        }
    }

    /// Of the deliveries of `events` at `places` (not in memory), those whose state has to be
    /// read: all of them without a stored-keys filter; with one, those whose fingerprint it
    /// holds, and every one of them is added to it first (from this piece on it may be stored).
    /// A key of another partition turns the filter off (`stored_keys`).
    fn states_to_read(&mut self, p: i32, places: &[usize], events: &[(i64, EventRef<'_>)]) -> Vec<(String, String)> {
        let keys = || places.iter().filter_map(|&i| events.get(i)).map(|(_, e)| (e.tenant, e.delivery_key));
        let all = || keys().map(|(t, k)| (t.to_string(), k.to_string())).collect();
        let Some(part) = self.partitions.get_mut(&p) else { return all() };
        let Filter::On(filter) = &mut part.stored else { return all() };
        let (mut read, mut new) = (Vec::new(), Vec::new());
        for (t, k) in keys() {
            match filter.lookup(t, k) {
                Lookup::Read => read.push((t.to_string(), k.to_string())),
                Lookup::New => new.push((t, k)),
                Lookup::Foreign => {
                    let partitions = filter.partitions();
                    part.stored = Filter::Off;
                    metrics::counter!("sendtrace_aggregator_stored_keys_off_total", "reason" => "foreign_key").increment(1);
                    warn!(message = "A delivery's events are on another partition than the default partitioner puts its key in; every delivery not in memory is read until the partition is claimed again.", partition = p, partitions, delivery_key = k);
                    return all();
                }
            }
        }
        for (t, k) in keys() {
            if !filter.insert(t, k) {
                part.stored = Filter::Off;
                metrics::counter!("sendtrace_aggregator_stored_keys_off_total", "reason" => "over_bound").increment(1);
                warn!(message = "More deliveries stored for the partition than max_stored_keys_in_memory allows it; every delivery not in memory is read.", partition = p, max = self.max_stored_keys);
                break;
            }
        }
        // (each delivery once: a piece may hold several of its events)
        new.sort_unstable();
        new.dedup();
        metrics::counter!("sendtrace_aggregator_state_reads_skipped_total").increment(new.len() as u64);
        read
    }

    /// Writes one piece: the events of offsets `range` and the dead letters of its refused
    /// records. `None`: shutdown. `redo`: as `write_unit`.
    async fn write_piece(
        &mut self,
        p: i32,
        (first, last): (i64, i64),
        batch: &batch::Keyed<'_>,
        dead: &[&DeadLetter],
        redo: bool,
        shutdown: &CancellationToken,
    ) -> Option<Piece> {
        let events = batch.events();
        let max_backoff = self.cfg.max_retry_backoff_ms;
        // One look at each event's delivery: those not in memory are reloaded, and held ones
        // whose attribution this batch may change (late send records) have their earlier event
        // rows read to move them. (repeats included: the reads send each key once)
        let looked = self.store.look_up(batch.places());
        let tenant_key = |&i: &usize| events.get(i).map(|(_, e)| (e.tenant.to_string(), e.delivery_key.to_string()));
        let missing = self.states_to_read(p, &looked.missing, events);
        let client = self.client.clone();
        let rows = match retry_transient("load_deliveries", max_backoff, shutdown, || load_deliveries(&client, &missing)).await? {
            Ok(rows) => rows,
            Err(e) => return Some(Piece::Refused(e)),
        };
        metrics::counter!("sendtrace_aggregator_state_reloads_total").increment(rows.len() as u64);
        // the deliveries this piece creates: neither held nor stored (`recent`)
        let mut new: std::collections::HashSet<DeliveryKey> = Default::default();
        if !redo && self.recent.enabled() {
            let stored: std::collections::HashSet<&str> = rows.iter().map(|r| r.delivery_key.as_str()).collect();
            new.extend(batch.at(looked.missing.iter().copied()).filter(|(_, e, _)| !stored.contains(e.delivery_key)).map(|(_, _, k)| k));
        }
        {
            let mut names = self.store.names();
            for row in rows {
                let key = DeliveryKey::of(&row.delivery_key);
                self.store.map.insert(key, Box::new(row.into_state(&mut names)));
            }
        }
        // and of the reloaded ones, those whose attribution this batch may change
        let reloaded = if missing.is_empty() { Default::default() } else { self.store.look_up(batch.at(looked.missing.iter().copied())) };
        let mut movable: Vec<_> = looked.movable.iter().chain(&reloaded.movable).filter_map(tenant_key).collect();
        // (each delivery once: its held rows read back once, and counted once below)
        movable.sort_unstable();
        movable.dedup();
        let asked = movable.len();
        let (mut history, movable) = self.recent.split(p, movable);
        if asked > 0 {
            metrics::counter!("sendtrace_aggregator_history_reads_total", "from" => "memory").increment((asked - movable.len()) as u64);
            metrics::counter!("sendtrace_aggregator_history_reads_total", "from" => "clickhouse").increment(movable.len() as u64);
        }
        match retry_transient("load_events", max_backoff, shutdown, || load_events(&client, &movable)).await? {
            Ok(h) => history.extend(h),
            Err(e) => return Some(Piece::Refused(e)),
        };
        self.batch_seq += 1;
        let spare = std::mem::take(&mut self.tables.spare);
        let mut rows = batch::apply_reusing(&self.store, p, batch, &history, self.batch_seq, now_ms(), &self.batch_cfg, spare);
        let mut tables = std::mem::take(&mut self.tables);
        let written = match rows.write_rowbinary(&mut tables) {
            Ok(()) => self.write_rows(p, (first, last), &rows, &tables, dead, shutdown).await,
            Err(e) => Some(Piece::Refused(e.into())),
        };
        self.tables = tables;
        match written? {
            Piece::Written => {}
            other => return Some(other),
        }
        tracing::debug!(message = "Batch applied.", partition = p, first, last, events = rows.event_rows(), duplicates = rows.duplicates, deliveries = rows.delivery_table.rows, suppressions = rows.suppressions.len(), soft_bounces = rows.soft_bounces.len());
        metrics::counter!("sendtrace_aggregator_events_total").increment(rows.event_rows() as u64);
        metrics::counter!("sendtrace_aggregator_duplicates_total").increment(rows.duplicates as u64);
        metrics::counter!("sendtrace_aggregator_reattributed_events_total").increment(rows.reattributed as u64);
        self.recent.record(p, &rows, &self.tables, &new);
        let evicted = self.store.evict(self.batch_seq);
        if evicted > 0 {
            metrics::counter!("sendtrace_aggregator_evictions_total").increment(evicted as u64);
        }
        self.tables.spare = rows.into_delivery_buffer();
        Some(Piece::Written)
    }

    /// `pending` manifest → claim check → tables → dead letters → `done` manifest.
    /// `Piece::Refused` only when the event rows are refused permanently (the first insert; see
    /// `write_unit`); `Piece::Fenced` when another writer claimed the partition (`offsets`).
    /// `tables` are `rows` as `RowBinary` (`BatchRows::write_rowbinary`); suppressions are
    /// inserted from `rows` (the batch's entries and soft-bounce thresholds, `suppression::apply`).
    async fn write_rows(&self, p: i32, range: (i64, i64), rows: &BatchRows<'_>, tables: &batch::TableBuffers, dead: &[&DeadLetter], shutdown: &CancellationToken) -> Option<Piece> {
        let (g, t, mb) = (&self.cfg.group_id, &self.cfg.events_topic, self.cfg.max_retry_backoff_ms);
        let c = &self.client;
        let tok = |table: &str| offsets::token(g, t, p, range.0, range.1, table);
        if !self.pending_and_held(p, range, shutdown).await? {
            return Some(Piece::Fenced);
        }
        let (te, tc, td, ta) = (tok("events"), tok("counters"), tok("deliveries"), tok("attributed_counters"));
        if let Err(e) = retry_transient("insert_events", mb, shutdown, || insert_buffer(c, "events", <EventRow>::COLUMN_NAMES, &te, &tables.events)).await? {
            return Some(Piece::Refused(e));
        }
        // The inserts between `events` and `deliveries` depend on nothing but the batch, so they
        // go out together: one round trip's wait instead of five (each is idempotent under its
        // token, and each is retried on its own until it lands or shutdown).
        // Status counts and tombstones before `deliveries`: a replay after a crash reloads the
        // state of the deliveries insert that did not happen, so it computes the same moves
        // (same token) again. Suppressions before `deliveries` too: once a delivery's row holds
        // an event, a replay skips that event as applied, so a suppression it caused would never
        // be written.
        // Funnels, their recipients and statuses, as the status counts: a replay recomputes the same moves.
        let (tsc, tdo, ts) = (tok("delivery_status_counts"), tok("delivery_order"), tok("suppressions"));
        let (tf, tfr, tfs) = (tok("funnels"), tok("funnel_recipients"), tok("funnel_statuses"));
        let (counters, attributed, status_counts, tombstones, suppressions, funnels, funnel_recipients, funnel_statuses) = tokio::join!(
            retry("insert_counters", mb, shutdown, || insert_buffer(c, "counters", <CounterRow>::COLUMN_NAMES, &tc, &tables.counters)),
            retry("insert_attributed_counters", mb, shutdown, || insert_buffer(c, "attributed_counters", <AttributedCounterRow>::COLUMN_NAMES, &ta, &tables.attributed_counters)),
            retry("insert_delivery_status_counts", mb, shutdown, || insert_buffer(c, "delivery_status_counts", <StatusCountRow>::COLUMN_NAMES, &tsc, &tables.status_counts)),
            retry("insert_delivery_order_tombstones", mb, shutdown, || insert_buffer(c, "delivery_order", <OrderTombstone>::COLUMN_NAMES, &tdo, &tables.order_tombstones)),
            suppression::apply(c, &self.producer, &self.cfg, rows, &ts, shutdown),
            retry("insert_funnels", mb, shutdown, || insert_buffer(c, "funnels", crate::funnels::FUNNEL_COLUMNS, &tf, &tables.funnels)),
            retry("insert_funnel_recipients", mb, shutdown, || insert_buffer(c, "funnel_recipients", crate::funnels::RECIPIENT_COLUMNS, &tfr, &tables.funnel_recipients)),
            retry("insert_funnel_statuses", mb, shutdown, || insert_buffer(c, "funnel_statuses", crate::funnels::STATUS_COLUMNS, &tfs, &tables.funnel_statuses)),
        );
        counters?;
        attributed?;
        status_counts?;
        tombstones?;
        funnels?;
        funnel_recipients?;
        funnel_statuses?;
        debug!(message = "Suppressions of batch.", partition = p, count = suppressions?);
        retry("insert_deliveries", mb, shutdown, || insert_buffer(c, "deliveries", <DeliveryRow>::COLUMN_NAMES, &td, &tables.deliveries)).await?;
        self.publish_dead_letters(dead, shutdown).await?;
        retry("manifest_done", mb, shutdown, || offsets::write_manifest(c, g, t, p, range, "done", now_ms())).await?;
        Some(Piece::Written)
    }

    /// Writes the `pending` manifest of `range`, then checks that this aggregator's claim on
    /// `p` is still the newest (the fence, `offsets`): `Some(false)` when it is not (or there is
    /// none), and then nothing more of the range may be written.
    async fn pending_and_held(&self, p: i32, range: (i64, i64), shutdown: &CancellationToken) -> Option<bool> {
        let (g, t, mb) = (&self.cfg.group_id, &self.cfg.events_topic, self.cfg.max_retry_backoff_ms);
        let c = &self.client;
        let Some(claim) = self.partitions.get(&p).and_then(|part| part.claim.as_ref()) else { return Some(false) };
        retry("manifest_pending", mb, shutdown, || offsets::write_manifest(c, g, t, p, range, "pending", now_ms())).await?;
        retry("claim_check", mb, shutdown, || offsets::holds(c, g, t, p, claim)).await
    }

    /// Publishes dead letters (at least once: a replayed batch publishes them again, same key).
    /// They are bounded (`dead_letter_max_raw_bytes`), so every failure is worth retrying.
    async fn publish_dead_letters(&self, dead: &[&DeadLetter], shutdown: &CancellationToken) -> Option<()> {
        let timeout = Duration::from_millis(self.cfg.kafka.message_timeout_ms as u64 + 1000);
        for d in dead {
            let payload = match schemas::avro::encode_dead_letter(d) {
                Ok(p) => p,
                Err(error) => {
                    tracing::error!(message = "Dead letter not encodable; dropped.", offset = d.raw_offset, %error);
                    continue;
                }
            };
            let mut backoff = Backoff::new(Duration::from_millis(self.cfg.max_retry_backoff_ms));
            while let Err(error) = self.producer.send(&self.cfg.dead_letter_topic, &dead_letter::key(d), &payload, timeout).await {
                warn!(message = "Publishing a dead letter failed; retrying.", %error);
                if !backoff.wait(shutdown).await {
                    return None;
                }
            }
            metrics::counter!("sendtrace_aggregator_dead_letters_total", "reason" => d.reason_code.clone()).increment(1);
        }
        Some(())
    }
}

/// The partitions this process holds, each with an [`Aggregator`] of its own, drained
/// concurrently.
///
/// Why: a batch holds records of several partitions, and drained one after another every
/// event waited for the units of the partitions ahead of its own, each a few ClickHouse round
/// trips in series (the state read, `events`, the middle inserts, `deliveries`, the manifests),
/// so freshness grew with the partitions one process holds (BENCHMARKS.md §10, "one
/// aggregator's partitions wait for each other"). A delivery lives in one partition, so its
/// state, its rows kept for late send records and the batch buffers are its partition's
/// aggregator's alone, and the units of different partitions share nothing in memory: their
/// round trips overlap, as those of two processes holding them would (the same fence, claims
/// and tokens per partition). The ClickHouse client, the producer and the writer name are
/// shared; the memory bounds (`max_deliveries_in_memory`, `max_history_bytes_in_memory`) are
/// split evenly over the partitions of the latest assignment.
pub struct Partitions {
    cfg: Config,
    shared: Shared,
    held: BTreeMap<i32, Aggregator>,
    /// Partitions in the latest assignment (1 before any): the bounds' divisor.
    assigned: usize,
    /// The events topic's partition count (`set_partition_count`).
    partition_count: Option<i32>,
}

impl Partitions {
    pub fn new(cfg: Config) -> anyhow::Result<Self> {
        Ok(Partitions { shared: Shared::new(&cfg)?, cfg, held: BTreeMap::new(), assigned: 1, partition_count: None })
    }

    /// This process's name in its partition claims.
    pub fn writer(&self) -> &str {
        &self.shared.writer
    }

    /// Each partition's share of the memory bounds.
    fn bounds(&self) -> Bounds {
        let n = self.assigned.max(1);
        let c = &self.cfg;
        Bounds { deliveries: c.max_deliveries_in_memory.div_ceil(n), history_bytes: c.max_history_bytes_in_memory / n, stored_keys: c.max_stored_keys_in_memory / n }
    }

    /// The events topic's partition count as the broker gave it after an assignment (`None`:
    /// not known; then no stored-keys filter is loaded).
    pub fn set_partition_count(&mut self, n: Option<i32>) {
        self.partition_count = n;
        self.held.values_mut().for_each(|agg| agg.set_partition_count(n));
    }

    /// Buffers record `offset` of partition `p` (`Aggregator::offer`).
    pub fn offer(&mut self, p: i32, offset: i64, payload: Option<Vec<u8>>) {
        let bounds = self.bounds();
        let (cfg, shared) = (&self.cfg, &self.shared);
        let n = self.partition_count;
        let agg = self.held.entry(p).or_insert_with(|| {
            let mut agg = Aggregator::with_shared(cfg.clone(), shared.clone(), bounds);
            agg.set_partition_count(n);
            agg
        });
        agg.offer(p, offset, payload);
    }

    /// After a rebalance: every buffer, claim and cursor is dropped (each partition is claimed
    /// again when next drained, which also forgets its deliveries: `offsets::claim`); the
    /// aggregators of partitions not assigned any more go, all of them if the assignment was
    /// lost (see `RebalanceFlag`).
    fn rebalanced(&mut self, r: Rebalanced) {
        if r.lost {
            self.held.clear();
            return;
        }
        for agg in self.held.values_mut() {
            agg.partitions.clear();
        }
        if let Some(assigned) = r.assigned {
            let before = self.held.len();
            self.held.retain(|p, _| assigned.contains(p));
            self.assigned = assigned.len().max(1);
            let bounds = self.bounds();
            self.held.values_mut().for_each(|agg| agg.set_bounds(bounds));
            info!(message = "Partitions assigned.", partitions = ?assigned, partitions_dropped = before - self.held.len(), deliveries_kept = self.deliveries());
        }
    }

    fn deliveries(&self) -> usize {
        self.held.values().map(|a| a.store.map.len()).sum()
    }

    /// Drains every partition with buffered records, concurrently: what each came to.
    pub async fn drain(&mut self, shutdown: &CancellationToken) -> Vec<(i32, Drained)> {
        let drains = self.held.iter_mut().filter(|(_, agg)| agg.has_buffered()).map(|(&p, agg)| async move { (p, agg.drain_partition(p, shutdown).await) });
        let out = futures::future::join_all(drains).await;
        metrics::gauge!("sendtrace_aggregator_deliveries_in_memory").set(self.deliveries() as f64);
        metrics::gauge!("sendtrace_aggregator_recent_history_bytes").set(self.held.values().map(|a| a.recent.bytes()).sum::<usize>() as f64);
        metrics::gauge!("sendtrace_aggregator_stored_keys").set(self.held.values().map(Aggregator::stored_keys).sum::<usize>() as f64);
        metrics::gauge!("sendtrace_aggregator_interned_names").set(self.held.values().map(|a| a.store.names().len()).sum::<usize>() as f64);
        out
    }

    /// After `Drained::Fenced` and a seek back: `p`'s buffer goes (its records come again).
    fn drop_buffer(&mut self, p: i32) {
        if let Some(agg) = self.held.get_mut(&p) {
            agg.partitions.remove(&p);
        }
    }
}

/// One unit's records, written piece by piece (`isolate::Pieces`).
struct UnitWriter<'a> {
    agg: &'a mut Aggregator,
    p: i32,
    unit: &'a [(i64, Option<Vec<u8>>)],
    /// The admitted events, in offset order, and their facts (`state::Facts`), one each.
    events: &'a [(i64, EventRef<'a>)],
    facts: &'a [Facts],
    /// The refused records' dead letters, in offset order.
    refused: &'a [(i64, DeadLetter)],
    /// A pending range written again (`Aggregator::write_unit`).
    redo: bool,
    shutdown: &'a CancellationToken,
    /// Set when a piece found the partition claimed by another writer (then `write` and
    /// `refuse` answer `None`, and the unit stops).
    fenced: bool,
}

impl<'a> UnitWriter<'a> {
    /// The offsets of records `piece`.
    fn range(&self, piece: &std::ops::Range<usize>) -> Option<(i64, i64)> {
        Some((self.unit.get(piece.start)?.0, self.unit.get(piece.end.checked_sub(1)?)?.0))
    }

    /// The places of the admitted events of offsets `range`.
    fn places_of(&self, (first, last): (i64, i64)) -> std::ops::Range<usize> {
        let events: &'a [(i64, EventRef<'a>)] = self.events;
        events.partition_point(|(o, _)| *o < first)..events.partition_point(|(o, _)| *o <= last)
    }

    /// The admitted events of offsets `range`.
    fn events_of(&self, range: (i64, i64)) -> &'a [(i64, EventRef<'a>)] {
        self.events.get(self.places_of(range)).unwrap_or_default()
    }

    /// The admitted events of offsets `range` with their facts.
    fn keyed_of(&self, range: (i64, i64)) -> batch::Keyed<'a> {
        let (events, facts) = (self.events_of(range), self.facts.get(self.places_of(range)).unwrap_or_default());
        // (one fact per event, by `admit`; computed again only if that ever broke)
        batch::Keyed::with_facts(events, facts).unwrap_or_else(|| batch::Keyed::new(events))
    }
}

impl isolate::Pieces for UnitWriter<'_> {
    type Error = SinkError;

    async fn write(&mut self, piece: std::ops::Range<usize>) -> Option<Result<(), SinkError>> {
        let range = self.range(&piece)?;
        let batch = self.keyed_of(range);
        let events = batch.events();
        let refused: &[(i64, DeadLetter)] = self.refused;
        let dead: Vec<&DeadLetter> = refused.iter().filter(|(o, _)| (range.0..=range.1).contains(o)).map(|(_, d)| d).collect();
        match self.agg.write_piece(self.p, range, &batch, &dead, self.redo, self.shutdown).await? {
            Piece::Written => Some(Ok(())),
            Piece::Refused(e) => {
                self.agg.forget(events);
                Some(Err(e))
            }
            Piece::Fenced => {
                self.fenced = true;
                None
            }
        }
    }

    async fn refuse(&mut self, index: usize, error: SinkError) -> Option<()> {
        let (p, agg) = (self.p, &*self.agg);
        let (offset, raw) = self.unit.get(index).map(|(o, b)| (*o, b.as_deref().unwrap_or_default()))?;
        let code = match failure::classify(&error) {
            failure::Failure::Permanent { code } => code,
            failure::Failure::Transient => 0,
        };
        let reason = Reason { code: "clickhouse_refused", reason: format!("ClickHouse refused the event: code {code} ({})", failure::code_name(code).unwrap_or("?")) };
        let e = self.events_of((offset, offset)).first().map(|(_, e)| e);
        let cfg = &agg.cfg;
        let d = dead_letter::record(&reason, (&cfg.events_topic, p, offset), e.map(|e| e.tenant), e.map(|e| e.provider), raw, cfg.dead_letter_max_raw_bytes, now_ms());
        // the refusal is this writer's to record only while the partition is its own
        if !agg.pending_and_held(p, (offset, offset), self.shutdown).await? {
            self.fenced = true;
            return None;
        }
        warn!(message = "Event refused by ClickHouse; dead-lettered.", partition = p, offset, code);
        agg.publish_dead_letters(&[&d], self.shutdown).await?;
        let (g, t, c) = (&cfg.group_id, &cfg.events_topic, &agg.client);
        retry("manifest_done", cfg.max_retry_backoff_ms, self.shutdown, || offsets::write_manifest(c, g, t, p, (offset, offset), "done", now_ms())).await
    }
}

/// The `clickhouse` readiness condition: ClickHouse answers `SELECT 1`, probed every
/// `readiness.probe_interval_ms` (the aggregator waits out an outage, not ready meanwhile).
fn spawn_clickhouse_probe(cfg: &Config, health: &Health, shutdown: &CancellationToken) -> tokio::task::JoinHandle<()> {
    let client = cfg.clickhouse.client();
    runtime::readiness::spawn_probe(health.readiness(), runtime::readiness::CLICKHOUSE, cfg.readiness, shutdown.clone(), move || {
        let client = client.clone();
        async move { client.query("SELECT 1").fetch_one::<u8>().await.map(|_| ()).map_err(|e| format!("ClickHouse does not answer: {e}")) }
    })
}

/// Runs until `shutdown`.
pub async fn run(cfg: Config, health: Health, shutdown: CancellationToken) -> anyhow::Result<()> {
    if cfg.create_topics {
        cfg.kafka
            .ensure_topics(&[&cfg.events_topic, &cfg.suppressions_topic, &cfg.health.topic, &cfg.dead_letter_topic], &[&cfg.suppressions_topic, &cfg.health.topic])
            .await?;
    }
    let leader = HealthLeader::default();
    let monitor = tokio::spawn(monitor_health(cfg.clone(), leader.clone(), shutdown.clone()));
    let flag = RebalanceFlag::new(leader.clone());
    let consumer = std::sync::Arc::new(cfg.kafka.consumer_with_context(&cfg.group_id, flag.clone())?);
    consumer.subscribe(&[&cfg.events_topic])?;
    let watches = [
        runtime::consumer_lag::spawn_lag_watch(consumer.clone(), "aggregator", cfg.events_topic.clone(), health.readiness(), cfg.readiness, shutdown.clone()),
        spawn_clickhouse_probe(&cfg, &health, &shutdown),
    ];
    // Records only: the aggregator's batches are bounded by count (`batch_max_events`).
    let limits = BatchLimits { max_records: cfg.batch_max_events, max_bytes: usize::MAX, linger: Duration::from_millis(cfg.batch_linger_ms) };
    let topic = cfg.events_topic.clone();
    let mut held = Partitions::new(cfg)?;
    // exported from the start (0), so that its alert has a series to watch
    metrics::counter!("sendtrace_aggregator_fenced_total").increment(0);
    health.set_ready(true);
    info!(message = "Aggregator running.", topic = %topic, writer = %held.writer());
    'outer: loop {
        let mut assigned = false;
        let read = read_batch(|| consumer.recv(), limits, &shutdown, |m, first| {
            if first {
                // A rebalance since the last batch is applied before any record of this one.
                let r = flag.take();
                assigned |= r.assigned.is_some();
                if r.revoked || r.lost || r.assigned.is_some() {
                    held.rebalanced(r);
                }
            }
            held.offer(m.partition(), m.offset(), m.payload().map(<[u8]>::to_vec));
        })
        .await;
        if read == Batch::Shutdown {
            break;
        }
        if assigned {
            // before any partition of the assignment is claimed (and its filter loaded)
            held.set_partition_count(partition_count(&consumer, &topic).await);
        }
        let mut stop = false;
        for (p, drained) in held.drain(&shutdown).await {
            match drained {
                Drained::Shutdown => stop = true,
                Drained::Applied(last) => {
                    if let Err(e) = consumer.store_offset(&topic, p, last) {
                        warn!(message = "Storing offset failed (partition revoked?).", error = %e, partition = p);
                    }
                }
                Drained::Idle => {}
                Drained::Fenced { from } => {
                    // Read the partition again from `from`, so that its records come back (and the
                    // partition is claimed again) even if nothing new arrives: a zombie's next poll
                    // brings its revocation instead. If the seek fails, the buffer is kept.
                    match consumer.seek(&topic, p, rdkafka::Offset::Offset(from), Duration::from_secs(5)) {
                        Ok(()) => held.drop_buffer(p),
                        Err(e) => warn!(message = "Seeking a fenced partition failed; its buffer is kept.", error = %e, partition = p),
                    }
                }
            }
        }
        if stop {
            break 'outer;
        }
    }
    health.set_ready(false);
    watches.iter().for_each(tokio::task::JoinHandle::abort);
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        warn!(message = "Final commit failed.", error = %e);
    }
    shutdown.cancel();
    let _ = monitor.await;
    info!(message = "Aggregator stopped.");
    Ok(())
}

/// The partition count of `topic` as the broker gives it now (`None` if it does not answer in
/// 5 s: the partitions go without stored-keys filters until the next assignment).
async fn partition_count<C: rdkafka::consumer::ConsumerContext + 'static>(consumer: &std::sync::Arc<rdkafka::consumer::StreamConsumer<C>>, topic: &str) -> Option<i32> {
    let (consumer, topic) = (consumer.clone(), topic.to_string());
    let n = tokio::task::spawn_blocking(move || {
        let m = consumer.fetch_metadata(Some(&topic), Duration::from_secs(5)).map_err(|e| e.to_string())?;
        let t = m.topics().iter().find(|t| t.name() == topic).ok_or("the topic is not in the metadata")?;
        match t.error() {
            None if !t.partitions().is_empty() => Ok(t.partitions().len() as i32),
            _ => Err(format!("no partitions ({:?})", t.error())),
        }
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match n {
        Ok(n) => Some(n),
        Err(e) => {
            warn!(message = "The events topic's partition count is not known; its partitions are read without stored-keys filters.", error = %e);
            None
        }
    }
}

/// A unit's admitted events, their facts (`state::Facts`, one each) and the dead letters of its
/// refused records, each in offset order.
type Admitted<'a> = (Vec<(i64, EventRef<'a>)>, Vec<Facts>, Vec<(i64, DeadLetter)>);

/// A name for this process in its partition claims, unique among concurrent aggregators: host,
/// process id and a random part (two processes of one host, or a restarted one, never share it).
fn writer_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    let mut random = std::collections::hash_map::RandomState::new().build_hasher();
    random.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    format!("{host}:{}:{:016x}", std::process::id(), random.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_stays_in_offset_order_when_the_consumer_goes_back() {
        let mut agg = Aggregator::new(Config::default()).expect("no broker needed to build");
        let offsets = |agg: &Aggregator| agg.partitions[&0].buffer.iter().map(|(o, _)| *o).collect::<Vec<_>>();
        for o in [10, 11, 12, 13] {
            agg.offer(0, o, None);
        }
        agg.offer(0, 12, None); // read again from 12 (a seek back)
        agg.offer(0, 13, None);
        agg.offer(0, 14, None);
        assert_eq!(offsets(&agg), vec![10, 11, 12, 13, 14]);
        agg.offer(0, 3, None); // from before everything buffered
        assert_eq!(offsets(&agg), vec![3]);
        agg.offer(1, 0, None);
        assert_eq!(offsets(&agg), vec![3], "partitions apart");
        assert_ne!(agg.writer(), Aggregator::new(Config::default()).expect("second").writer(), "writer ids differ");
    }

    /// Each partition held gets an aggregator of its own on the shared parts; a rebalance keeps
    /// the assigned ones (their buffers dropped: the records come again) with the memory
    /// bounds split over the assignment, and a lost assignment drops all.
    #[test]
    fn partitions_each_have_an_aggregator_and_share_the_bounds() {
        let cfg = Config { max_deliveries_in_memory: 1_000, max_history_bytes_in_memory: 4_000, ..Config::default() };
        let mut held = Partitions::new(cfg).expect("no broker needed to build");
        for p in 0..4 {
            held.offer(p, 10, None);
            held.offer(p, 11, None);
        }
        assert_eq!(held.held.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert!(held.held.iter().all(|(p, a)| a.partitions.keys().eq([p]) && a.has_buffered() && a.writer() == held.writer()), "one partition each, one writer name");
        assert_eq!(held.held[&0].store.max_deliveries, 1_000, "before any assignment: one share");
        held.rebalanced(Rebalanced { revoked: true, assigned: Some(vec![1, 3]), lost: false });
        assert_eq!(held.held.keys().copied().collect::<Vec<_>>(), vec![1, 3], "the revoked ones go");
        assert!(held.held.values().all(|a| !a.has_buffered()), "buffers dropped: the records are fetched again");
        assert!(held.held.values().all(|a| a.store.max_deliveries == 500 && a.recent.max_bytes() == 2_000), "bounds split over two");
        held.offer(5, 1, None);
        assert_eq!(held.held[&5].store.max_deliveries, 500, "a partition offered later gets the same share");
        held.rebalanced(Rebalanced { revoked: true, assigned: None, lost: true });
        assert!(held.held.is_empty(), "a lost assignment drops everything");
    }

    /// The stored-keys filter of a partition: new deliveries are not read (and may be stored
    /// from then on, so read the next time they are not in memory), held fingerprints are, and a
    /// delivery of another partition by the partitioner turns the filter off: everything read.
    #[test]
    fn only_deliveries_the_filter_may_hold_are_read() {
        let mut agg = Aggregator::new(Config::default()).expect("no broker needed to build");
        let keys: Vec<String> = (0..64).map(|i| format!("{i:032x}")).collect();
        let p = crate::stored_keys::partition_of(&keys[0], 4);
        let (mine, foreign): (Vec<&String>, Vec<&String>) = keys.iter().partition(|k| crate::stored_keys::partition_of(k, 4) == p);
        let mut filter = StoredKeys::empty(p, 4, 100);
        filter.insert("acme", mine[0]);
        agg.partitions.entry(p).or_default().stored = Filter::On(filter);
        let events: Vec<schemas::Event> = mine.iter().take(3).map(|k| schemas::testkit::event(&format!("e-{k}"), k, schemas::EventType::Delivered, 1_700_000_000_000)).collect();
        let refs: Vec<(i64, EventRef<'_>)> = events.iter().enumerate().map(|(i, e)| (i as i64, e.as_event_ref())).collect();
        let read = agg.states_to_read(p, &[0, 1, 2, 1], &refs);
        assert_eq!(read, vec![("acme".to_string(), mine[0].clone())], "only the held one");
        let read = agg.states_to_read(p, &[1, 2], &refs);
        assert_eq!(read.len(), 2, "the new ones of the first piece may be stored now: {read:?}");
        let other = schemas::testkit::event("e-f", foreign[0], schemas::EventType::Delivered, 1_700_000_000_000);
        let refs: Vec<(i64, EventRef<'_>)> = vec![(0, events[2].as_event_ref()), (1, other.as_event_ref())];
        assert_eq!(agg.states_to_read(p, &[0, 1], &refs).len(), 2, "a foreign key: everything read");
        assert!(matches!(agg.partitions[&p].stored, Filter::Off), "and the filter is off");
        assert_eq!(agg.states_to_read(9, &[0], &refs).len(), 1, "a partition without a filter reads");
    }

    /// A record written with the first event schema (a normalizer not yet upgraded, in a
    /// rolling upgrade) is applied as the event it holds, between current ones, in offset
    /// order: its text borrowed from its rewrite in the current schema, kept with the unit.
    /// Bytes of no known schema are dead-lettered.
    #[test]
    fn a_unit_admits_records_of_an_older_event_schema() {
        let agg = Aggregator::new(Config::default()).expect("no broker needed to build");
        let event = |i: i64| {
            let mut e = schemas::testkit::event(&format!("{i:032x}"), &format!("{:064x}", i % 3), schemas::EventType::Delivered, 1_700_000_000_000 + i);
            e.recipient = format!("r{i}@x.io");
            e.labels = vec![format!("label-{i}")];
            e
        };
        let want: Vec<schemas::Event> = (0..6).map(event).collect();
        let unit: Vec<(i64, Option<Vec<u8>>)> = want
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let bytes = if i % 2 == 1 { schemas::avro::encode_event_v1(e) } else { schemas::avro::encode_event(e) };
                (100 + i as i64, Some(bytes.expect("encodes")))
            })
            .chain([(106, Some(b"not avro".to_vec()))])
            .collect();
        assert!(matches!(schemas::avro::decode_event_ref(unit[1].1.as_deref().unwrap_or_default()), Err(CodecError::OlderSchema)), "the test's record 1 is of the older schema");
        let upgraded = Bump::new();
        let (events, facts, refused) = agg.admit(0, &unit, &upgraded);
        let read: Vec<(i64, schemas::Event)> = events.iter().map(|(o, e)| (*o, e.to_owned_event())).collect();
        assert_eq!(read, want.into_iter().enumerate().map(|(i, e)| (100 + i as i64, e)).collect::<Vec<_>>());
        assert_eq!(facts.len(), 6);
        assert_eq!(refused.iter().map(|(o, d)| (*o, d.reason_code.as_str())).collect::<Vec<_>>(), vec![(106, "undecodable")]);
        assert!(upgraded.allocated_bytes() > 0, "the older records were rewritten into the unit's arena");
    }
}
