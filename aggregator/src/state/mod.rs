//! Per-delivery state, held in a `DashMap` and rebuilt from ClickHouse on demand.
//!
//! Applying an event is idempotent (an event id already seen is ignored) and
//! order-independent (status is a maximum by rank, times are minima/maxima,
//! counts follow distinct events), so replays and late events converge.
//!
//! # Memory (≤ 256 bytes per active delivery; `examples/state_memory.rs` measures it)
//! * The map key is the delivery key's 16 bytes (`key`), the state is boxed so an empty
//!   map slot costs 24 bytes, not the state's size.
//! * The delivery's identity (tenant, provider, message id, recipient) is not held: the
//!   delivery key is a hash of it, and every batch that changes a delivery has one of its
//!   events, which carries it (`batch` takes the row's identity from there).
//! * Attribution strings shared by many deliveries are interned (`names`); times are 4-byte
//!   offsets (`times`); what few deliveries need (rare milestones, an error text, huge
//!   amounts) sits in an optional `Rare` box.
//!
//! Layout: `key` (map key and hasher), `names` (interner), `times` (kept times), this file
//! (the state, `apply`, the store).

pub mod key;
pub mod names;
pub mod row;
pub mod ids;
pub mod times;

use crate::machine::{self, MachineReason};
use crate::rules;
use dashmap::DashMap;
pub use key::{DeliveryKey, KeyHash};
pub use names::Names;
pub use ids::{event_hash, Ids};
use schemas::{BounceClass, Channel, EventRef, EventType, MessageClass};
use std::sync::{Mutex, MutexGuard};
pub use times::{Slot, Times, WideTimes};

/// The attribution fields, in the order of their 2-bit priorities in `DeliveryState::prio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    Broadcast,
    Sequence,
    Contact,
    Template,
    MessageClass,
}

/// Attribution priority of an event: send records (2) beat provider tags and app events (1).
fn source_prio(e: &EventRef<'_>) -> u8 {
    if e.origin == schemas::Origin::SendRecord {
        2
    } else {
        1
    }
}

/// The parts few deliveries need, allocated on first use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rare {
    /// Rare milestones and times that do not fit the compact offsets.
    pub times: WideTimes,
    /// (occurred_at, reason) of the latest error; ties keep the greater reason.
    pub last_error: Option<(i64, Box<str>)>,
    /// The cost when it does not fit `i64` at scale 10.
    pub cost_wide: Option<Box<i128>>,
}

/// Equality is by value (`PartialEq` below): the same times may be held compactly or in `Rare`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryState {
    /// The contact id and the applied event ids (a replayed event is a no-op).
    pub ids: Ids,
    /// Cost mantissa at scale 10 (see `cost_amount`), unit in `cost_unit`.
    cost: i64,
    pub rare: Option<Box<Rare>>,
    pub times: Times,
    /// Interned (`Names`) attribution; 0 = none.
    pub broadcast_id: u32,
    pub sequence_id: u32,
    pub template_key: u32,
    /// Interned label set.
    pub labels: u32,
    /// Interned currency; 0 = no cost.
    pub cost_unit: u32,
    pub open_count: u32,
    pub click_count: u32,
    /// Opens and clicks fired by proxies or scanners (see `machine`): counted apart.
    pub machine_open_count: u32,
    pub machine_click_count: u32,
    pub soft_bounce_count: u32,
    pub deferral_count: u32,
    /// Batch sequence number (low 32 bits) of the last use, for eviction.
    pub touched: u32,
    /// 2 bits per `Attr`: the priority of the value held.
    prio: u16,
    /// The events-topic partition the delivery's events come from (keyed by delivery).
    pub partition: u16,
    pub channel: Channel,
    pub status: Option<EventType>,
    pub bounce_class: Option<BounceClass>,
    pub message_class: Option<MessageClass>,
}

impl PartialEq for DeliveryState {
    fn eq(&self, o: &Self) -> bool {
        let times = |s: &Self| -> Vec<Option<i64>> { Slot::ALL.iter().map(|t| s.time(*t)).collect() };
        self.ids == o.ids
            && self.cost_amount() == o.cost_amount()
            && self.cost_unit == o.cost_unit
            && self.last_error() == o.last_error()
            && times(self) == times(o)
            && (self.broadcast_id, self.sequence_id, self.template_key, self.labels) == (o.broadcast_id, o.sequence_id, o.template_key, o.labels)
            && (self.open_count, self.click_count, self.machine_open_count, self.machine_click_count) == (o.open_count, o.click_count, o.machine_open_count, o.machine_click_count)
            && (self.soft_bounce_count, self.deferral_count, self.touched, self.prio, self.partition) == (o.soft_bounce_count, o.deferral_count, o.touched, o.prio, o.partition)
            && (self.channel, self.status, self.bounce_class, self.message_class) == (o.channel, o.status, o.bounce_class, o.message_class)
    }
}

fn bounce_order(b: BounceClass) -> u8 {
    match b {
        BounceClass::Undetermined => 0,
        BounceClass::Soft => 1,
        BounceClass::Hard => 2,
    }
}

impl DeliveryState {
    pub fn new(channel: Channel) -> Self {
        DeliveryState { channel, ..Default::default() }
    }

    /// The rank of the status (`rules::rank`; a `bounced` status is always a hard bounce).
    pub fn status_rank(&self) -> u8 {
        self.status.map_or(0, |s| rules::rank(s, Some(BounceClass::Hard)))
    }

    pub fn prio(&self, a: Attr) -> u8 {
        ((self.prio >> (2 * a as u16)) & 3) as u8
    }

    /// Every attribution priority, packed (2 bits per `Attr`): what the `deliveries` row keeps.
    pub fn prio_bits(&self) -> u16 {
        self.prio
    }

    pub fn set_prio_bits(&mut self, bits: u16) {
        self.prio = bits;
    }

    pub fn set_prio(&mut self, a: Attr, p: u8) {
        let shift = 2 * a as u16;
        self.prio = (self.prio & !(3 << shift)) | ((p.min(3) as u16) << shift);
    }

    /// Whether `value` at priority `prio` replaces the held `current`: a higher priority
    /// wins, equal priorities keep the smaller value, so the order of arrival does not matter.
    fn better(&self, a: Attr, prio: u8, value: &str, current: Option<&str>) -> bool {
        match current {
            None => true,
            Some(cur) => prio > self.prio(a) || (prio == self.prio(a) && value < cur),
        }
    }

    fn offer_name(&mut self, names: &mut Names, a: Attr, prio: u8, value: Option<&str>) {
        let Some(v) = value.filter(|v| !v.is_empty()) else { return };
        let held = match a {
            Attr::Broadcast => self.broadcast_id,
            Attr::Sequence => self.sequence_id,
            _ => self.template_key,
        };
        if self.better(a, prio, v, (held != 0).then(|| names.get(held))) {
            let id = names.id(v);
            match a {
                Attr::Broadcast => self.broadcast_id = id,
                Attr::Sequence => self.sequence_id = id,
                _ => self.template_key = id,
            }
            self.set_prio(a, prio);
        }
    }

    /// Applies `e`; `machine` says whether it is a machine open/click.
    /// Returns false if the event was already applied.
    pub fn apply(
        &mut self,
        names: &mut Names,
        e: &EventRef<'_>,
        machine: Option<MachineReason>,
    ) -> bool {
        self.apply_hashed(names, e, event_hash(e.event_id), machine)
    }

    /// As [`DeliveryState::apply`], for a caller that already has `hash`, `event_hash(&e.event_id)`.
    pub fn apply_hashed(&mut self, names: &mut Names, e: &EventRef<'_>, hash: u64, machine: Option<MachineReason>) -> bool {
        if !self.ids.insert(hash) {
            return false;
        }
        if machine.is_some() {
            // kept and counted, but no engagement: no status, no times, no human counts
            match e.event_type {
                EventType::Clicked => self.machine_click_count += 1,
                _ => self.machine_open_count += 1,
            }
            return true;
        }
        let t = e.occurred_at;
        self.mark(e.event_type, t);
        for implied in rules::implied_milestones(e.event_type) {
            self.mark(*implied, t);
        }
        self.status = rules::next_status(self.status, self.status_rank(), e.event_type, e.bounce_class).0;
        if let Some(b) = e.bounce_class {
            if self.bounce_class.is_none_or(|cur| bounce_order(b) > bounce_order(cur)) {
                self.bounce_class = Some(b);
            }
        }
        match (e.event_type, e.bounce_class) {
            (EventType::Opened | EventType::Read, _) => self.open_count += 1,
            (EventType::Clicked, _) => self.click_count += 1,
            (EventType::Bounced, Some(BounceClass::Soft)) => self.soft_bounce_count += 1,
            (EventType::Deferred, _) => self.deferral_count += 1,
            _ => {}
        }
        if let Some(reason) = e.error_reason.or(e.error_code) {
            let newer = match self.last_error() {
                None => true,
                Some((ct, cr)) => (t, reason) > (ct, cr),
            };
            if newer {
                self.rare.get_or_insert_with(Default::default).last_error = Some((t, reason.into()));
            }
        }
        if let Some(c) = &e.cost {
            self.add_cost(names, c.mantissa_at_scale(), &c.unit);
        }
        let prio = source_prio(e);
        self.offer_name(names, Attr::Broadcast, prio, e.broadcast_id);
        self.offer_name(names, Attr::Sequence, prio, e.sequence_id);
        self.offer_name(names, Attr::Template, prio, e.template_key);
        if let Some(v) = e.contact_id.filter(|v| !v.is_empty()) {
            if self.better(Attr::Contact, prio, v, self.ids.contact()) {
                if self.ids.set_contact(v) {
                    self.set_prio(Attr::Contact, prio);
                } else {
                    metrics::counter!("sendtrace_aggregator_contact_id_too_long_total").increment(1);
                }
            }
        }
        if let Some(m) = e.message_class {
            if self.better(Attr::MessageClass, prio, m.as_str(), self.message_class.map(|c| c.as_str())) {
                self.message_class = Some(m);
                self.set_prio(Attr::MessageClass, prio);
            }
        }
        if !e.labels.is_empty() {
            self.labels = names.add_labels(self.labels, &e.labels);
        }
        true
    }

    fn mark(&mut self, ty: EventType, t: i64) {
        if let Some(s) = Slot::first_of(ty) {
            self.times.lower(&mut self.rare, s, t);
        }
        if let Some(s) = Slot::last_of(ty) {
            self.times.raise(&mut self.rare, s, t);
        }
    }

    /// Adds an amount in `unit`; a second currency on one delivery is not summed (documented).
    fn add_cost(&mut self, names: &mut Names, amount: i128, unit: &str) {
        if self.cost_unit == 0 {
            self.cost_unit = names.id(unit);
            if self.cost_unit == 0 {
                return; // no unit: not a cost
            }
        } else if names.get(self.cost_unit) != unit {
            return;
        }
        self.set_cost_amount(self.cost_amount().saturating_add(amount));
    }

    /// The cost mantissa at scale 10 (0 without a cost).
    pub fn cost_amount(&self) -> i128 {
        self.rare.as_ref().and_then(|r| r.cost_wide.as_deref().copied()).unwrap_or(self.cost as i128)
    }

    pub fn set_cost_amount(&mut self, amount: i128) {
        match i64::try_from(amount) {
            Ok(a) if self.rare.as_ref().is_none_or(|r| r.cost_wide.is_none()) => self.cost = a,
            _ => self.rare.get_or_insert_with(Default::default).cost_wide = Some(Box::new(amount)),
        }
    }

    pub fn last_error(&self) -> Option<(i64, &str)> {
        self.rare.as_ref()?.last_error.as_ref().map(|(t, r)| (*t, &**r))
    }

    pub fn set_last_error(&mut self, e: Option<(i64, String)>) {
        if let Some((t, r)) = e {
            self.rare.get_or_insert_with(Default::default).last_error = Some((t, r.into()));
        }
    }

    pub fn time(&self, slot: Slot) -> Option<i64> {
        self.times.get(self.rare.as_deref().map(|r| &r.times), slot)
    }

    /// Every slot's time, by slot index (`Slot::ALL`): `time` of each, in one pass.
    pub fn all_times(&self) -> [Option<i64>; times::SLOTS] {
        self.times.all(self.rare.as_deref().map(|r| &r.times))
    }

    pub fn set_time(&mut self, slot: Slot, t: Option<i64>) {
        if let Some(t) = t {
            self.times.set(&mut self.rare, slot, t);
        }
    }

    /// First occurrence of a milestone (`None` for deferrals and unknown events, which are not kept).
    pub fn first(&self, t: EventType) -> Option<i64> {
        self.time(Slot::first_of(t)?)
    }

    /// Last occurrence of delivered, opened or clicked.
    pub fn last(&self, t: EventType) -> Option<i64> {
        self.time(Slot::last_of(t)?)
    }

    /// (broadcast, sequence, template) name ids: what counters and event rows are attributed to.
    pub fn attribution(&self) -> (u32, u32, u32) {
        (self.broadcast_id, self.sequence_id, self.template_key)
    }

    pub fn event_count(&self) -> u32 {
        self.ids.len() as u32
    }
}

/// All deliveries this process holds, bounded by `max_deliveries`, and the names they share.
pub struct StateStore {
    pub map: Map,
    names: Mutex<Names>,
    pub max_deliveries: usize,
}

/// What `StateStore::apply` did with an event that was not a replay.
#[derive(Debug, Clone, Copy)]
pub struct Applied {
    pub machine: Option<MachineReason>,
}

impl StateStore {
    pub fn new(max_deliveries: usize) -> Self {
        StateStore { map: DashMap::with_hasher(KeyHash::default()), names: Mutex::new(Names::default()), max_deliveries }
    }

    /// The interned names; a batch holds the lock while it applies and builds rows.
    pub fn names(&self) -> MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The per-event state update: finds (or creates) the delivery, marks it used in batch
    /// `batch_seq`, classifies machine engagement, applies. `None` for an event already applied.
    pub fn apply(&self, names: &mut Names, e: &EventRef<'_>, partition: i32, batch_seq: u64, scanner_window_secs: i64) -> Option<Applied> {
        // (the key's shard alone locked: one lock, as a `DashMap` entry takes)
        let facts = Facts::of(e);
        let (hash, at) = place(&self.map, &facts.key);
        let shard = self.map.shards().get(at)?;
        apply_in(&self.map, &mut shard.write(), hash, &facts, names, e, partition, batch_seq, scanner_window_secs, |_| ()).0
    }

    /// Starts loading the held states of `keys` into the cache: each state and its event ids.
    /// Why: a batch's deliveries are spread over all the held ones, so each is a cache miss (the
    /// map's slot, the state, its ids: three in a row), and with an event's work between them the
    /// CPU waits for each in turn. Here the lookups do not depend on one another and do nothing
    /// else, so their misses overlap; `batch::apply` calls it for the next few events before
    /// applying them (BENCHMARKS.md §1b). Changes nothing; takes each shard's read lock once and
    /// releases it. Returns how many of `keys` are held.
    pub fn prefetch(&self, keys: &[DeliveryKey]) -> usize {
        let shards: Vec<_> = self.map.shards().iter().map(|s| s.read()).collect();
        prefetch_in(&self.map, &shards, keys)
    }

    /// Every shard write-locked, for one batch (`Locked`). Take the names' lock first, if both.
    pub fn lock(&self) -> Locked<'_> {
        Locked { map: &self.map, shards: self.map.shards().iter().map(|s| s.write()).collect() }
    }

    /// What the pipeline reads from ClickHouse before a batch, from one look at each event's
    /// delivery: `events` as (place in the batch, event, its delivery key). Why one look: the
    /// two questions were two lookups per event, each a cache miss, 1/6 of a batch
    /// (BENCHMARKS.md §1b). Takes the names' lock, then each shard's read lock once.
    ///
    /// The look is three loads in a row per event (the table's slot, the state, its ids: a
    /// miss each in a store larger than the cache), so events are looked at `LOOK_AHEAD` at a
    /// time, each step for all of them before the next (`prefetch_in`'s way): the finds, then
    /// the states' ids, then the questions; their misses overlap instead of following one
    /// another (`may_move` alone was 6.6 % of a 20,000-event unit's time).
    pub fn look_up<'a>(&self, events: impl Iterator<Item = (usize, &'a EventRef<'a>, DeliveryKey)>) -> Lookup {
        const LOOK_AHEAD: usize = 16;
        let names = self.names();
        let shards: Vec<_> = self.map.shards().iter().map(|s| s.read()).collect();
        let mut out = Lookup::default();
        let mut window: Vec<(usize, &EventRef<'_>, Option<&DeliveryState>)> = Vec::with_capacity(LOOK_AHEAD);
        let mut ask = |window: &mut Vec<(usize, &EventRef<'_>, Option<&DeliveryState>)>| {
            for (_, _, state) in window.iter() {
                if let Some(state) = state {
                    // (only its length prefix is read here)
                    prefetch_ids(state, 1);
                }
            }
            for &(at, e, state) in window.iter() {
                match state {
                    None => out.missing.push(at),
                    Some(state) if may_move(e, state, &names) => out.movable.push(at),
                    Some(_) => {}
                }
            }
            window.clear();
        };
        for (at, e, key) in events {
            let state = find(&self.map, &shards, &key);
            if let Some(state) = state {
                prefetch_state(state);
            }
            window.push((at, e, state));
            if window.len() == LOOK_AHEAD {
                ask(&mut window);
            }
        }
        ask(&mut window);
        out
    }

    /// Drops the deliveries of `partition` (another writer may have changed them: `offsets::claim`);
    /// returns how many.
    pub fn forget_partition(&self, partition: i32) -> usize {
        let before = self.map.len();
        self.map.retain(|_, s| s.partition as i32 != partition);
        before - self.map.len()
    }

    /// Drops the least recently touched deliveries (never those of batch `current`) above the bound.
    /// They are safe to drop: every applied change is already in ClickHouse.
    pub fn evict(&self, current: u64) -> usize {
        let len = self.map.len();
        if len <= self.max_deliveries {
            return 0;
        }
        let current = current as u32;
        // age in batches (wrapping: `touched` keeps the low 32 bits)
        let mut ages: Vec<u32> = self.map.iter().map(|e| current.wrapping_sub(e.touched)).collect();
        let excess = len - self.max_deliveries * 9 / 10;
        ages.sort_unstable_by(|a, b| b.cmp(a));
        let cutoff = ages.get(excess.saturating_sub(1)).copied().unwrap_or(u32::MAX).max(1);
        self.map.retain(|_, s| current.wrapping_sub(s.touched) < cutoff);
        len - self.map.len()
    }
}

/// The store's map, and one of its shards as `dashmap`'s raw API gives it.
type Map = DashMap<DeliveryKey, Box<DeliveryState>, KeyHash>;
type Shard = hashbrown::raw::RawTable<(DeliveryKey, dashmap::SharedValue<Box<DeliveryState>>)>;

/// `key`'s hash in `map` and its shard's index.
fn place(map: &Map, key: &DeliveryKey) -> (u64, usize) {
    let hash = map.hash_usize(key);
    (hash as u64, map.determine_shard(hash))
}

/// The held state of `key` in `shards` (every shard of `map`, locked by the caller).
fn find<'t, G: std::ops::Deref<Target = Shard>>(map: &Map, shards: &'t [G], key: &DeliveryKey) -> Option<&'t DeliveryState> {
    let (hash, at) = place(map, key);
    shards.get(at)?.get(hash, |(k, _)| k == key).map(|(_, s)| &**s.get())
}

/// The store with every shard write-locked, for one batch: each lock taken once a batch
/// instead of twice per event (an atomic read-modify-write each, which waits for the CPU's
/// pending stores: 3 % of a 20,000-event batch in `dashmap`'s lock; BENCHMARKS.md §1b).
/// Nothing else reads the store while a batch is applied (the pipeline is one task).
pub struct Locked<'s> {
    map: &'s Map,
    shards: Vec<dashmap::RwLockWriteGuard<'s, Shard>>,
}

impl Locked<'_> {
    /// The held state of `key`.
    pub fn get(&self, key: &DeliveryKey) -> Option<&DeliveryState> {
        find(self.map, &self.shards, key)
    }

    /// As `StateStore::prefetch`, under the locks held.
    pub fn prefetch(&self, keys: &[DeliveryKey]) -> usize {
        prefetch_in(self.map, &self.shards, keys)
    }

    /// Starts loading the table slots where `keys` are or would go (a hint: nothing is read),
    /// so that finding them later (`prefetch`, `apply_seen`) does not wait on the table. By
    /// hashbrown's layout (`RawTable::data_end`'s doc): the control bytes from `data_end` on,
    /// bucket i just below it, the probe starting at the hash's low bits. Why: the finds in
    /// `prefetch` waited on the table, a miss per event in a store larger than the cache
    /// (7 % of a shuffled batch's time, 2 % of its instructions; BENCHMARKS.md §1b).
    pub fn prefetch_slots(&self, keys: &[DeliveryKey]) {
        for key in keys {
            prefetch_slot(self.map, &self.shards, key);
        }
    }

    /// The per-event state update (`StateStore::apply`), and `before` first reads the
    /// delivery's state as it was before this event (`None`: not held yet). Why: `batch::apply`
    /// needs a delivery's attribution and status from before the batch; reading them here
    /// instead of in a lookup of its own saves a cache miss per event (BENCHMARKS.md §1b).
    /// What it reads of the event alone comes with it (`facts`, `Facts::of(e)`).
    #[allow(clippy::too_many_arguments)]
    pub fn apply_seen<R>(&mut self, facts: &Facts, names: &mut Names, e: &EventRef<'_>, partition: i32, batch_seq: u64, scanner_window_secs: i64, before: impl FnOnce(Option<&DeliveryState>) -> R) -> (Option<Applied>, R) {
        let (hash, at) = place(self.map, &facts.key);
        let Some(shard) = self.shards.get_mut(at) else {
            return (None, before(None)); // (a shard for every hash: `determine_shard`)
        };
        apply_in(self.map, shard, hash, facts, names, e, partition, batch_seq, scanner_window_secs, before)
    }
}

/// `Locked::apply_seen` in `shard`, the key's (`hash`: its hash in `map`), write-locked by the
/// caller.
#[allow(clippy::too_many_arguments)]
fn apply_in<R>(map: &Map, shard: &mut Shard, hash: u64, facts: &Facts, names: &mut Names, e: &EventRef<'_>, partition: i32, batch_seq: u64, scanner_window_secs: i64, before: impl FnOnce(Option<&DeliveryState>) -> R) -> (Option<Applied>, R) {
    let key = facts.key;
    let held = shard.get(hash, |(k, _)| *k == key).map(|(_, s)| &**s.get());
    let seen = before(held);
    if held.is_none() {
        shard.insert(hash, (key, dashmap::SharedValue::new(Box::new(DeliveryState::new(e.channel)))), |(k, _)| place(map, k).0);
    }
    let Some((_, state)) = shard.get_mut(hash, |(k, _)| *k == key) else {
        return (None, seen); // (inserted just above)
    };
    let state: &mut DeliveryState = state.get_mut();
    state.touched = batch_seq as u32;
    state.partition = partition.clamp(0, u16::MAX as i32) as u16;
    let machine = machine::classify_by(facts.agent, e, state.time(Slot::FirstDelivered), scanner_window_secs);
    (state.apply_hashed(names, e, facts.hash, machine).then_some(Applied { machine }), seen)
}

/// `Locked::prefetch_slots` of one key in `shards` (every shard of `map`, locked by the caller).
#[inline]
fn prefetch_slot(map: &Map, shards: &[dashmap::RwLockWriteGuard<'_, Shard>], key: &DeliveryKey) {
    let (hash, at) = place(map, key);
    let Some(shard) = shards.get(at) else { return };
    let pos = (hash as usize) & shard.buckets().wrapping_sub(1);
    let end = shard.data_end().as_ptr();
    // (wrapping: addresses only computed, never dereferenced)
    crate::memory::prefetch(end.cast::<u8>().wrapping_add(pos), 1);
    crate::memory::prefetch(end.wrapping_sub(pos + 1).cast::<u8>(), std::mem::size_of::<(DeliveryKey, dashmap::SharedValue<Box<DeliveryState>>)>());
}

/// `StateStore::prefetch` in `shards`, locked by the caller.
fn prefetch_in<G: std::ops::Deref<Target = Shard>>(map: &Map, shards: &[G], keys: &[DeliveryKey]) -> usize {
    let mut found: Vec<&DeliveryState> = Vec::with_capacity(keys.len());
    for state in keys.iter().filter_map(|key| find(map, shards, key)) {
        prefetch_state(state);
        found.push(state);
    }
    // (the states' first lines are on their way by now; their ids are behind them)
    for state in &found {
        prefetch_ids(state, usize::MAX);
    }
    found.len()
}

/// Starts loading `state` (a hint).
#[inline(always)]
fn prefetch_state(state: &DeliveryState) {
    crate::memory::prefetch((state as *const DeliveryState).cast(), std::mem::size_of::<DeliveryState>());
}

/// Starts loading up to `len` bytes of `state`'s ids (a hint; reads the state's pointer to them).
#[inline(always)]
fn prefetch_ids(state: &DeliveryState, len: usize) {
    let ids = state.ids.as_bytes();
    crate::memory::prefetch(ids.as_ptr(), ids.len().min(len));
}

/// What applying an event reads of the event alone: its delivery key, its id's hash
/// (`event_hash`) and its user agent's verdict (`machine::by_agent`). Computed once per event,
/// best as it is decoded, while its text is in cache: in a large batch each was a cache miss
/// per event when read as the event was applied (BENCHMARKS.md §1b).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub key: DeliveryKey,
    pub hash: u64,
    pub agent: Option<MachineReason>,
}

impl Facts {
    pub fn of(e: &EventRef<'_>) -> Facts {
        Facts { key: DeliveryKey::of(e.delivery_key), hash: event_hash(e.event_id), agent: machine::by_agent(e) }
    }
}

/// The events of a batch whose deliveries the pipeline reads from ClickHouse first, by their
/// places in the batch, repeats included (the reads send each key once): `StateStore::look_up`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// Events whose delivery is not held: it is reloaded (or new).
    pub missing: Vec<usize>,
    /// Events of held deliveries whose attribution the batch may change: the delivery has
    /// events and the event names a broadcast, sequence or template other than its own (a
    /// superset of those the batch moves; their stored event rows are read to move them).
    pub movable: Vec<usize>,
}

/// Whether `e` may change the attribution of `s`'s earlier events (`Lookup::movable`).
fn may_move(e: &EventRef<'_>, s: &DeliveryState, names: &Names) -> bool {
    let differs = |v: &Option<&str>, id: u32| v.is_some_and(|v| !v.is_empty() && v != names.get(id));
    s.event_count() > 0 && (differs(&e.broadcast_id, s.broadcast_id) || differs(&e.sequence_id, s.sequence_id) || differs(&e.template_key, s.template_key))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use schemas::Channel;

    pub(crate) fn event(
        id: &str,
        ty: EventType,
        bounce: Option<BounceClass>,
        t: i64,
    ) -> EventRef<'static> {
        let mut e =
            schemas::testkit::event(&format!("{:0<32}", id), "dk", ty, t).leak();
        e.bounce_class = bounce;
        e
    }

    #[test]
    fn replayed_event_is_a_no_op() {
        let e = event("1", EventType::Opened, None, 10);
        let n = &mut Names::default();
        let mut s = DeliveryState::new(e.channel);
        assert!(s.apply(n, &e, None));
        assert!(!s.apply(n, &e, None));
        assert_eq!(s.open_count, 1);
        assert_eq!(s.event_count(), 1);
    }

    #[test]
    fn out_of_order_delivered_after_opened_keeps_opened() {
        let n = &mut Names::default();
        let mut s = DeliveryState::new(Channel::Email);
        s.apply(n, &event("1", EventType::Sent, None, 1), None);
        s.apply(n, &event("3", EventType::Opened, None, 30), None);
        s.apply(n, &event("2", EventType::Delivered, None, 20), None);
        assert_eq!(s.status, Some(EventType::Opened));
        assert_eq!(s.first(EventType::Delivered), Some(20));
    }

    #[test]
    fn read_implies_delivered() {
        let mut s = DeliveryState::new(Channel::Whatsapp);
        s.apply(&mut Names::default(), &event("1", EventType::Read, None, 5), None);
        assert_eq!(s.first(EventType::Delivered), Some(5));
        assert_eq!(s.status, Some(EventType::Read));
    }

    #[test]
    fn send_record_attribution_wins_over_provider_tags() {
        let mut tagged = event("1", EventType::Delivered, None, 5);
        tagged.broadcast_id = Some("from-tag");
        let mut record = event("2", EventType::Queued, None, 1);
        record.provider_event_name = "send_record"; record.origin = schemas::Origin::SendRecord;
        record.broadcast_id = Some("from-record");
        let n = &mut Names::default();
        for order in [[&tagged, &record], [&record, &tagged]] {
            let mut s = DeliveryState::new(Channel::Email);
            for e in order {
                s.apply(n, e, None);
            }
            assert_eq!(n.get(s.broadcast_id), "from-record");
            assert_eq!(s.prio(Attr::Broadcast), 2);
        }
    }

    /// A delivery reloaded from its `deliveries` row keeps the priority each attribution value
    /// was chosen with. Here the broadcast came from a provider tag while a send record (without
    /// a broadcast) exists: the old reload guessed "send record" from `first_queued_at`, so a
    /// later tag with a smaller value lost; with the stored priority the result is the same as
    /// without the reload.
    #[test]
    fn reloaded_delivery_keeps_its_attribution_priorities() {
        use crate::store::rows::DeliveryRow;
        let mut record = event("1", EventType::Queued, None, 1);
        record.provider_event_name = "send_record";
        record.origin = schemas::Origin::SendRecord;
        record.contact_id = Some("c-1");
        let mut tag_b = event("2", EventType::Delivered, None, 5);
        tag_b.broadcast_id = Some("b-2");
        let mut tag_a = event("3", EventType::Opened, None, 9);
        tag_a.broadcast_id = Some("b-1");

        let n = &mut Names::default();
        let mut whole = DeliveryState::new(Channel::Email);
        for e in [&record, &tag_b, &tag_a] {
            whole.apply(n, e, None);
        }
        assert_eq!((n.get(whole.broadcast_id), whole.prio(Attr::Broadcast), whole.prio(Attr::Contact)), ("b-1", 1, 2));

        let mut before = DeliveryState::new(Channel::Email);
        before.apply(n, &record, None);
        before.apply(n, &tag_b, None);
        let row = DeliveryRow::from_state(&record, &before, n, 1, 0);
        assert_eq!(row.attribution_prio, before.prio_bits());
        let mut reloaded = row.clone().into_state(n);
        assert_eq!(reloaded.prio_bits(), before.prio_bits());
        reloaded.apply(n, &tag_a, None);
        assert_eq!(n.get(reloaded.broadcast_id), n.get(whole.broadcast_id), "same as without the reload");

        // A row written before the priorities were stored falls back to the old guess.
        let legacy = DeliveryRow { attribution_prio: 0, ..row }.into_state(n);
        assert_eq!(legacy.prio(Attr::Broadcast), 2);
    }

    #[test]
    fn eviction_keeps_recent_deliveries() {
        let store = StateStore::new(10);
        let start = u32::MAX as u64 - 5; // batch numbers wrap around u32 on the way
        for i in 0..20u64 {
            let mut s = DeliveryState::new(Channel::Email);
            s.touched = (start + i) as u32;
            store.map.insert(DeliveryKey::from(i as u128), Box::new(s));
        }
        assert_eq!(store.evict(start + 19), 11);
        assert_eq!(store.map.len(), 9);
        assert!((11..20).all(|i| store.map.contains_key(&DeliveryKey::from(i))), "the 9 most recent stay");
    }

    /// Prefetching finds exactly the held keys, in every shard, changes no state and leaves no
    /// lock held (the writes after it would wait forever).
    #[test]
    fn prefetch_finds_the_held_states_and_releases_the_shards() {
        let store = StateStore::new(1000);
        let n = &mut Names::default();
        for i in 0..200 {
            let mut e = event(&format!("{i}"), EventType::Sent, None, 1);
            e.delivery_key = schemas::testkit::leak(format!("d{i}"));
            store.apply(n, &e, 0, 1, 10);
        }
        let shards: std::collections::HashSet<usize> = (0..200).map(|i| store.map.determine_shard(store.map.hash_usize(&DeliveryKey::of(&format!("d{i}"))))).collect();
        assert_eq!(shards.len(), store.map.shards().len(), "the held keys span every shard");
        let keys: Vec<DeliveryKey> = (150..250).map(|i| DeliveryKey::of(&format!("d{i}"))).collect();
        let before: Vec<Option<DeliveryState>> = keys.iter().map(|k| store.map.get(k).map(|s| (**s).clone())).collect();
        assert_eq!(store.prefetch(&keys), 50);
        assert_eq!(store.prefetch(&[]), 0);
        // the slots' hint, held keys and others, and on a store with nothing in it
        {
            let held = store.lock();
            held.prefetch_slots(&keys);
            assert_eq!(held.prefetch(&keys), 50);
        }
        StateStore::new(10).lock().prefetch_slots(&keys);
        let after: Vec<Option<DeliveryState>> = keys.iter().map(|k| store.map.get(k).map(|s| (**s).clone())).collect();
        assert_eq!(before, after);
        for k in &keys {
            store.map.entry(*k).or_insert_with(|| Box::new(DeliveryState::new(Channel::Email)));
        }
        assert_eq!(store.map.len(), 250);
    }

    /// `look_up` names exactly the events whose delivery is not held, and, of the held ones,
    /// exactly those naming a broadcast, sequence or template other than the delivery's own
    /// while it has events, repeats included, in the events' order (the truth: the held
    /// deliveries' attributions as applied, compared as strings).
    #[test]
    fn look_up_names_the_missing_and_the_movable() {
        let store = StateStore::new(1000);
        let attr = |e: &mut EventRef<'static>, i: usize| {
            e.broadcast_id = (!i.is_multiple_of(3)).then(|| schemas::testkit::leak(format!("b{}", i % 2)));
            e.sequence_id = (i % 4 == 1).then(|| schemas::testkit::leak(format!("s{}", i % 5)));
            e.template_key = (i % 5 == 2).then(|| if i % 10 == 2 { "" } else { schemas::testkit::leak(format!("t{}", i % 3)) });
        };
        // held: d0..d5, each with one event of its own attribution (d5 has none: its state is
        // held without events)
        let mut own: std::collections::HashMap<String, [Option<String>; 3]> = Default::default();
        let mut n = store.names();
        for d in 0..5 {
            let mut e = event(&format!("h{d}"), EventType::Sent, None, 1);
            e.delivery_key = schemas::testkit::leak(format!("d{d}"));
            attr(&mut e, d * 7);
            store.apply(&mut n, &e, 0, 1, 10);
            let s = store.map.get(&DeliveryKey::of(&format!("d{d}"))).unwrap();
            own.insert(format!("d{d}"), [s.broadcast_id, s.sequence_id, s.template_key].map(|id| (id != 0).then(|| n.get(id).to_string())));
        }
        drop(n);
        store.map.insert(DeliveryKey::of("d5"), Box::new(DeliveryState::new(Channel::Email)));
        let events: Vec<EventRef<'static>> = (0..60)
            .map(|i| {
                let mut e = event(&format!("e{i}"), EventType::Delivered, None, 2);
                e.delivery_key = schemas::testkit::leak(format!("d{}", i % 8));
                attr(&mut e, i);
                e
            })
            .collect();
        let got = store.look_up(events.iter().enumerate().map(|(i, e)| (i, e, DeliveryKey::of(e.delivery_key))));
        let mut want = Lookup::default();
        for (i, e) in events.iter().enumerate() {
            let key = e.delivery_key.to_string();
            if key == "d5" {
                continue; // held, without events: nothing to move
            }
            let Some(own) = own.get(&key) else {
                want.missing.push(i);
                continue;
            };
            let differs = |v: &Option<&str>, own: &Option<String>| v.is_some_and(|v| !v.is_empty() && Some(v) != own.as_deref());
            if differs(&e.broadcast_id, &own[0]) || differs(&e.sequence_id, &own[1]) || differs(&e.template_key, &own[2]) {
                want.movable.push(i);
            }
        }
        assert_eq!(got, want);
        assert_eq!(want.missing.len(), 14, "d6 and d7, with repeats");
        assert!(!want.movable.is_empty() && want.movable.len() < 45, "some held events move, some do not: {}", want.movable.len());
    }

    #[test]
    fn rare_parts_and_costs_round_trip() {
        let n = &mut Names::default();
        let mut s = DeliveryState::new(Channel::Sms);
        let mut b = event("1", EventType::Bounced, Some(BounceClass::Hard), 7);
        b.error_reason = Some("550 user unknown");
        b.cost = Some(schemas::Money::new(rust_decimal::Decimal::new(75, 4), "USD"));
        s.apply(n, &b, None);
        let mut big = event("2", EventType::Sent, None, 3);
        big.cost = Some(schemas::Money::new(rust_decimal::Decimal::from(i64::MAX / 1000), "USD"));
        s.apply(n, &big, None);
        let mut eur = event("3", EventType::Sent, None, 4);
        eur.cost = Some(schemas::Money::new(rust_decimal::Decimal::ONE, "EUR"));
        s.apply(n, &eur, None);
        assert_eq!(s.last_error(), Some((7, "550 user unknown")));
        assert_eq!(s.cost_amount(), 75_000_000 + (i64::MAX / 1000) as i128 * 10_000_000_000, "beyond i64 at scale 10, exact");
        assert_eq!(n.get(s.cost_unit), "USD");
        assert_eq!(s.first(EventType::Bounced), Some(7));
        assert_eq!(s.first(EventType::Sent), Some(3));
    }

    fn arb_event() -> impl Strategy<Value = (EventType, Option<BounceClass>, i64)> {
        let ty = proptest::sample::select(EventType::VALUES.to_vec());
        let bc = proptest::option::of(proptest::sample::select(vec![BounceClass::Hard, BounceClass::Soft, BounceClass::Undetermined]));
        // times over 200 days: some fall outside the compact offsets' range and spill
        (ty, bc, 0i64..200 * 86_400_000)
    }

    proptest! {
        /// The final row does not depend on arrival order, nor on duplicates.
        #[test]
        fn any_order_and_duplicates_give_the_same_state(evs in proptest::collection::vec(arb_event(), 1..12), seed in any::<u64>()) {
            let events: Vec<EventRef<'static>> = evs.iter().enumerate().map(|(i, (ty, bc, t))| {
                let mut e = event(&format!("{i:x}"), *ty, if *ty == EventType::Bounced { *bc } else { None }, *t);
                e.error_reason = Some(schemas::testkit::leak(format!("r{}", t % 3)));
                // attribution from tags and send records, disagreeing; labels; costs
                if t % 2 == 0 { e.provider_event_name = "send_record"; e.origin = schemas::Origin::SendRecord; }
                e.broadcast_id = Some(schemas::testkit::leak(format!("b{}", t % 4)));
                e.contact_id = (t % 3 == 0).then(|| schemas::testkit::leak(format!("c{}", t % 5)));
                e.message_class = Some(if t % 2 == 0 { MessageClass::Marketing } else { MessageClass::Transactional });
                e.labels = vec![schemas::testkit::leak(format!("l{}", t % 3))];
                e.cost = Some(schemas::Money::new(rust_decimal::Decimal::new(t % 1000, 4), "USD"));
                e
            }).collect();
            let n = &mut Names::default();
            let mut a = DeliveryState::new(Channel::Email);
            for e in &events { a.apply(n, e, None); }
            // a shuffled order with every event twice
            let mut order: Vec<usize> = (0..events.len()).chain(0..events.len()).collect();
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                order.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut b = DeliveryState::new(Channel::Email);
            for i in order { b.apply(n, &events[i], None); }
            prop_assert_eq!(a, b);
        }
    }
}
