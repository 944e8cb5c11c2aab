//! A batch's counter sums: `counters` (tenant × channel × provider × event type × bounce
//! class × machine × currency) and `attributed_counters` (the same by broadcast, sequence and
//! template), per period bucket. Keys are interned (`Dims`), so summing an event hashes and
//! compares a few integers, not nine strings; strings are built once per output row.

use crate::buckets::{clickhouse_date, Periods};
use crate::machine::MachineReason;
use crate::store::rowbinary::{put_str, Cursor, Room, RowBuffer};
use crate::store::{AttributedCounterRow, CounterRow, EventRow, Text};
use crate::state::Names;
use rustc_hash::FxHashMap;
use schemas::{BounceClass, Channel, EventRef, EventType};
use std::sync::Arc;

/// A delivery's attribution as counted: (broadcast, sequence, template) name ids.
pub type Attribution = (u32, u32, u32);

/// The dimensions of one event, interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dims {
    tenant: u32,
    provider: u32,
    cost_unit: u32,
    channel: Channel,
    event_type: EventType,
    bounce: Option<BounceClass>,
    machine: Option<MachineReason>,
}

impl Dims {
    /// The tenant's interned id.
    pub fn tenant(&self) -> u32 {
        self.tenant
    }

    pub fn of_event(e: &EventRef<'_>, machine: Option<MachineReason>, names: &mut Names) -> Dims {
        Dims {
            tenant: names.id(e.tenant),
            provider: names.id(e.provider),
            cost_unit: e.cost.as_ref().map_or(0, |c| names.id(&c.unit)),
            channel: e.channel,
            event_type: e.event_type,
            bounce: e.bounce_class,
            machine,
        }
    }

    /// Every field in one integer, distinct for distinct `Dims`: the three name ids, then a byte
    /// each for the channel, the event type, the bounce class and the machine reason (0 for
    /// none, else its discriminant + 1). Why: the derived `Hash` fed the hasher field by field,
    /// an enum's discriminant as a word each, and the derived `Eq` compared them one by one, in
    /// the lookup every counted event makes (`KeyText::dims`, ~170 instructions per event).
    #[inline]
    pub fn packed(&self) -> u128 {
        let opt = |x: Option<u8>| x.map_or(0, |x| u128::from(x) + 1);
        u128::from(self.tenant)
            | u128::from(self.provider) << 32
            | u128::from(self.cost_unit) << 64
            | u128::from(self.channel as u8) << 96
            | u128::from(self.event_type as u8) << 104
            | opt(self.bounce.map(|b| b as u8)) << 112
            | opt(self.machine.map(|m| m as u8)) << 120
    }

    /// From a stored event row; `None` if a column holds a value this version does not know.
    pub fn of_row(r: &EventRow, names: &mut Names) -> Option<Dims> {
        Some(Dims {
            tenant: names.id(&r.tenant),
            provider: names.id(&r.provider),
            cost_unit: names.id(&r.cost_unit),
            channel: Channel::parse(&r.channel)?,
            event_type: EventType::parse(&r.event_type)?,
            bounce: if r.bounce_class.is_empty() { None } else { Some(BounceClass::parse(&r.bounce_class)?) },
            machine: if r.machine.is_empty() { None } else { Some(MachineReason::parse(&r.machine)?) },
        })
    }
}

/// A counter table's sums are kept by leaf: the index of the key's `Dims` in the batch's
/// [`KeyText`] (which stands for the `Dims` within a batch) and the index of the event's tuple
/// of bucket starts, one per period, in the batch's [`StartTuples`]: one map entry per event
/// for all periods, not one per period (a campaign's batch, whose events fall in one day, made
/// three entries per event per table, each ~70–100 instructions; BENCHMARKS.md §1b). A period's
/// rows are its leaves', summed where leaves differ only in tuples that share that period's
/// start (two days of one week): [`each_row`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
struct Leaf(u64);

impl Leaf {
    fn new(dims: u32, tuple: u32) -> Leaf {
        Leaf(u64::from(dims) << 32 | u64::from(tuple))
    }

    fn dims(self) -> u32 {
        (self.0 >> 32) as u32
    }

    fn tuple(self) -> u32 {
        self.0 as u32
    }

    fn with_tuple(self, tuple: u32) -> Leaf {
        Leaf::new(self.dims(), tuple)
    }
}

/// A counter key as one integer, for a batch whose events fall in many tuples of bucket starts
/// (a catch-up over months: [`LEAF_TUPLES`]): the index of its `Dims` in the batch's
/// [`KeyText`], the period's index in `Periods` and the bucket start (days since the epoch).
/// Why: a `(Dims, u8, u16)` key was 20 bytes hashed field by field and compared field by field
/// in every probe, and its map entry 64 bytes; this one is 8, its entry 48 (BENCHMARKS.md §1b).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key(u64);

impl Key {
    fn new(dims: u32, period: usize, start: u16) -> Key {
        Key((dims as u64) << 24 | (period as u64 & 0xff) << 16 | start as u64)
    }

    /// (dims index, period index, bucket start)
    fn parts(self) -> (u32, u8, u16) {
        ((self.0 >> 24) as u32, (self.0 >> 16) as u8, self.0 as u16)
    }
}

/// Tuples of bucket starts a batch's sums are kept by leaf for, at most: past them, by period
/// ([`Key`]). Summing a leaf's rows per period where its tuples share a start (two days of one
/// week) is a map entry per leaf and period again, plus the leaves': a stream spread over 90
/// days, nearly a tuple per event, was +4 % instructions kept by leaf.
const LEAF_TUPLES: usize = 4;

/// The distinct tuples of bucket starts (one per period, in `Periods`' order) a batch's events
/// fall in, by index: a live batch's events fall in one or two days, a catch-up's in a few
/// hundred at most.
#[derive(Debug, Default)]
struct StartTuples {
    periods: usize,
    /// Each tuple's starts, `periods` per tuple.
    starts: Vec<u16>,
    /// By the tuple packed into one integer (up to eight periods, as `Periods` makes: three,
    /// or six with a reporting zone).
    packed: FxHashMap<u128, u32>,
    /// By the tuple itself, for more periods than that.
    long: FxHashMap<Vec<u16>, u32>,
    /// The last tuple asked for, packed, and its index (a batch's events come day by day).
    last: Option<(u128, u32)>,
    /// By UTC day, when the tuple is the day's alone (`BucketStarts::push`): (day, index) in
    /// `BY_DAY` slots by the day's low bits, `i64::MIN` for none.
    by_day: Vec<(i64, u32)>,
}

/// Slots of `StartTuples::by_day` (a power of two).
const BY_DAY: usize = 128;

impl StartTuples {
    fn new(periods: usize) -> Self {
        StartTuples { periods, by_day: vec![(i64::MIN, 0); BY_DAY], ..Default::default() }
    }

    /// [`Self::id`], found by `day` when the tuple is that UTC day's alone.
    #[inline]
    fn id_of_day(&mut self, day: Option<i64>, starts: &[u16]) -> u32 {
        let Some(day) = day else { return self.id(starts) };
        if let Some((d, i)) = self.by_day.get(day as usize & (BY_DAY - 1)) {
            if *d == day {
                return *i;
            }
        }
        let i = self.id(starts);
        if let Some(slot) = self.by_day.get_mut(day as usize & (BY_DAY - 1)) {
            *slot = (day, i);
        }
        i
    }

    /// The index of `starts` (one per period), given one on first sight.
    #[inline]
    fn id(&mut self, starts: &[u16]) -> u32 {
        if let [a, b, c] = *starts {
            let packed = u128::from(a) << 32 | u128::from(b) << 16 | u128::from(c);
            if let Some((p, i)) = self.last {
                if p == packed {
                    return i;
                }
            }
        }
        self.id_slow(starts)
    }

    #[inline(never)]
    fn id_slow(&mut self, starts: &[u16]) -> u32 {
        let next = self.len() as u32;
        if starts.len() > 8 {
            return match self.long.get(starts) {
                Some(i) => *i,
                None => {
                    self.starts.extend_from_slice(starts);
                    self.long.insert(starts.to_vec(), next);
                    next
                }
            };
        }
        let packed = starts.iter().fold(0u128, |a, s| a << 16 | u128::from(*s));
        if let Some((p, i)) = self.last {
            if p == packed {
                return i;
            }
        }
        let i = *self.packed.entry(packed).or_insert_with(|| {
            self.starts.extend_from_slice(starts);
            next
        });
        self.last = Some((packed, i));
        i
    }

    /// Tuple `i`'s starts, one per period.
    fn starts(&self, i: u32) -> &[u16] {
        let at = i as usize * self.periods;
        self.starts.get(at..at + self.periods).unwrap_or_default()
    }

    /// Tuple `i`'s start in period `p`.
    fn start(&self, i: u32, p: usize) -> u16 {
        self.starts.get(i as usize * self.periods + p).copied().unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.starts.len() / self.periods.max(1)
    }

    /// For period `p`, each tuple's first tuple with the same start in `p`; `None` when no two
    /// share it (one tuple, or one per month for the month period).
    fn first_sharing(&self, p: usize) -> Option<Vec<u32>> {
        let n = self.len();
        if n < 2 {
            return None;
        }
        let mut first: FxHashMap<u16, u32> = FxHashMap::with_capacity_and_hasher(n, Default::default());
        let mut shared = false;
        let of: Vec<u32> = (0..n as u32)
            .map(|i| {
                let f = *first.entry(self.start(i, p)).or_insert(i);
                shared |= f != i;
                f
            })
            .collect();
        shared.then_some(of)
    }
}

/// Adds `b`'s sums to `a`'s.
trait AddSums {
    fn add(&mut self, b: &Self);
}

impl<N: Copy + std::ops::AddAssign> AddSums for Acc<N> {
    #[inline(always)]
    fn add(&mut self, b: &Self) {
        self.events += b.events;
        // (saturating: `admission` bounds each cost, and stored rows came through it)
        self.cost = self.cost.saturating_add(b.cost);
    }
}

/// Where a table's rows go, one call each: `row(dims index, attribution index (0 for
/// `counters`), period index, bucket start, sums)`. A trait, not a closure, so that writing a
/// row is inlined at each place rows come from (`CounterRows`, `AttributedRows`: called from
/// two loops, the closure that wrote them was not, ~36 instructions a row more;
/// BENCHMARKS.md §1b); [`Each`] for a closure.
trait Sink<A> {
    fn row(&mut self, dims: u32, attribution: u32, p: u8, start: u16, acc: &A);
}

/// A closure as a [`Sink`].
struct Each<F>(F);

impl<A, F: FnMut(u32, u32, u8, u16, &A)> Sink<A> for Each<F> {
    #[inline(always)]
    fn row(&mut self, dims: u32, attribution: u32, p: u8, start: u16, acc: &A) {
        (self.0)(dims, attribution, p, start, acc)
    }
}

/// Each row of a table kept by leaf (`K`: a [`Leaf`], with the attribution for
/// `attributed_counters`; `parts` tells them), period by period, into `sink`.
/// In a period where no two of the batch's tuples share a start, a leaf is a row; where some
/// do, the leaves that differ only in such tuples are summed into one row first.
#[inline(always)]
fn each_row<K, A>(leaves: &FxHashMap<K, A>, tuples: &StartTuples, parts: impl Fn(&K) -> (Leaf, u32), with_leaf: impl Fn(&K, Leaf) -> K, sink: &mut impl Sink<A>)
where
    K: Copy + Eq + std::hash::Hash,
    A: AddSums + Default,
{
    if leaves.is_empty() {
        return;
    }
    for p in 0..tuples.periods {
        // (one loop writing rows, so that the sink's code is here once)
        let merged: FxHashMap<K, A>;
        let rows = match tuples.first_sharing(p) {
            None => leaves,
            Some(first) => {
                let mut m: FxHashMap<K, A> = FxHashMap::with_capacity_and_hasher(leaves.len(), Default::default());
                for (k, acc) in leaves {
                    let l = parts(k).0;
                    let into = with_leaf(k, l.with_tuple(first.get(l.tuple() as usize).copied().unwrap_or(l.tuple())));
                    m.entry(into).or_default().add(acc);
                }
                merged = m;
                &merged
            }
        };
        for (k, acc) in rows {
            let (l, a) = parts(k);
            sink.row(l.dims(), a, p as u8, tuples.start(l.tuple(), p), acc);
        }
    }
}

/// The sums, and each key's text columns encoded once per batch ([`KeyText`]; each event's
/// `Dims` and attribution looked up once as it is counted, not once per key: per key it was
/// ~600 instructions per event, 3.6 % of a batch; BENCHMARKS.md §1b).
#[derive(Debug, Default)]
pub struct Sums {
    counters: FxHashMap<Leaf, Acc<u64>>,
    /// Keyed by the leaf and the index of the attribution in the batch's [`KeyText`].
    attributed: FxHashMap<(Leaf, u32), Acc<i64>>,
    tuples: StartTuples,
    /// Whether the batch's events fell in more than [`LEAF_TUPLES`] tuples: its sums are kept
    /// by period then, in the two maps below, and the two above are empty.
    spread: bool,
    counters_by_period: FxHashMap<Key, Acc<u64>>,
    attributed_by_period: FxHashMap<(Key, u32), Acc<i64>>,
    /// The batch's events (room made for its keys).
    events: usize,
    text: KeyText,
    /// The text of every name id the keys use.
    used: FxHashMap<u32, Arc<str>>,
}

/// A key's sums (where its text columns are in the batch's [`KeyText`] is in the key itself:
/// writing a row looks nothing up).
#[derive(Debug, Default, Clone, Copy)]
struct Acc<N> {
    events: N,
    cost: i128,
}

/// Appends the start (a ClickHouse `Date`) of the bucket holding `at` in each period, in
/// `Periods`' order: computed once per event for both counter tables (the calendar
/// arithmetic was a tenth of a batch, done twice; BENCHMARKS.md §1b).
pub fn bucket_starts(periods: &Periods, at: i64, out: &mut Vec<u16>) {
    out.extend(periods.buckets(at).map(|(_, start)| clickhouse_date(start)));
}

/// Milliseconds in a UTC day.
const DAY_MS: i64 = 86_400_000;

/// [`bucket_starts`] for a batch's events, each UTC period's start kept for the UTC day it
/// was computed for, in one of `DAYS` slots by day: a batch meets few days, or (a stream
/// spread over months) at most `DAYS` in a row without one evicting another, so chrono's
/// calendar runs about once per day and period, not per event (it was ~1,000 instructions
/// per event, 6 % of a batch; BENCHMARKS.md §1b). One slot, as before, served a batch applied
/// in time order; applied as they came, a stream over 90 days changed day nearly every
/// event. Zoned periods are computed per event, as before (a zone's day is not a UTC day).
///
/// Exact: a UTC period's start depends on `at` only through its UTC date
/// (`buckets::bucket_start`: `from_timestamp_millis(at)`'s `date_naive`, or the epoch out of
/// chrono's range, whose bounds are whole days), i.e. through `at.div_euclid(DAY_MS)`.
#[derive(Debug)]
pub struct BucketStarts<'p> {
    periods: &'p Periods,
    /// `DAYS` slots of one per period: (UTC day, its start), for UTC periods; `i64::MIN`
    /// before the first.
    kept: Vec<(i64, u16)>,
    /// Whether every period is a UTC one.
    utc: bool,
}

/// Days `BucketStarts` keeps (a power of two: the slot is the day's low bits).
const DAYS: usize = 128;

impl<'p> BucketStarts<'p> {
    pub fn new(periods: &'p Periods) -> Self {
        BucketStarts { periods, kept: vec![(i64::MIN, 0); periods.0.len() * DAYS], utc: periods.0.iter().all(|(_, _, tz)| tz.is_none()) }
    }

    /// As [`bucket_starts`]; returns the UTC day of `at` when every period is a UTC one (the
    /// starts are then the day's alone: `Sums::count_in` finds their tuple by it).
    pub fn push(&mut self, at: i64, out: &mut Vec<u16>) -> Option<i64> {
        let day = at.div_euclid(DAY_MS);
        let n = self.periods.0.len();
        let slot = (day as usize & (DAYS - 1)) * n;
        let kept = self.kept.get_mut(slot..slot + n).unwrap_or_default();
        for ((_, period, tz), kept) in self.periods.0.iter().zip(kept.iter_mut()) {
            out.push(match tz {
                Some(tz) => clickhouse_date(crate::buckets::bucket_start_in(*period, at, *tz)),
                None => {
                    if kept.0 != day {
                        *kept = (day, clickhouse_date(crate::buckets::bucket_start(*period, at)));
                    }
                    kept.1
                }
            });
        }
        self.utc.then_some(day)
    }
}

/// Where an event's `Dims` text is in the batch's [`KeyText`], and its bucket starts' tuple
/// (its [`Leaf`]; `Sums::count_in` returns it for `count_attributed_in`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DimsText(Leaf);

/// Keys of the plain counters made room for before a batch, at most (`Sums::for_batch`): a
/// batch spread over months makes a key per event and period nearly, and the map grown from
/// empty was rehashed ~15 times a batch (~100 instructions per event; 0.98x with room made,
/// campaign unchanged; BENCHMARKS.md §1b). Live traffic's keys are a few hundred.
const COUNTERS_SIZED: usize = 2_048;

impl Sums {
    /// Sums for a batch of `events` events counted in `periods` periods each: the attributed
    /// sums' map, when first used, sized for as many keys as the batch can make (a leaf per
    /// event; a key per event and period once spread), so it is never grown and rehashed as it
    /// fills (a campaign's attributions make a key nearly per event: grown from empty it was
    /// rehashed ~12 times a batch, 1 % of it; BENCHMARKS.md §1b). The plain counters' keys are
    /// few on live traffic (no attribution): room for up to `COUNTERS_SIZED`.
    pub fn for_batch(events: usize, periods: usize) -> Self {
        let mut sums = Sums { tuples: StartTuples::new(periods), events, ..Sums::default() };
        sums.counters.reserve(events.min(COUNTERS_SIZED));
        sums
    }

    /// One applied event into `counters`, with its bucket starts (`BucketStarts`, one per
    /// period, and the UTC day that alone makes them, if one does); `names` holds `d`'s names.
    /// Returns where `d`'s text is and the starts' tuple, for `count_attributed_in`.
    pub fn count_in(&mut self, d: Dims, starts: &[u16], day: Option<i64>, cost: i128, names: &Names) -> DimsText {
        let dims = self.text.dims(d, names, &mut self.used);
        let leaf = Leaf::new(dims, self.tuples.id_of_day(day, starts));
        if !self.spread && self.tuples.len() > LEAF_TUPLES {
            self.spread_out();
        }
        self.add_counter(leaf, Acc { events: 1, cost });
        DimsText(leaf)
    }

    /// `acc` into `counters` at `leaf` (by leaf, or by period when spread).
    #[inline(always)]
    fn add_counter(&mut self, leaf: Leaf, acc: Acc<u64>) {
        if self.spread {
            for (p, start) in self.tuples.starts(leaf.tuple()).iter().enumerate() {
                self.counters_by_period.entry(Key::new(leaf.dims(), p, *start)).or_default().add(&acc);
            }
        } else {
            self.counters.entry(leaf).or_default().add(&acc);
        }
    }

    /// From leaves to keys by period, once the batch's events have fallen in more than
    /// [`LEAF_TUPLES`] tuples (before any attributed sum: those are counted after every
    /// event's `count_in`).
    #[cold]
    fn spread_out(&mut self) {
        self.spread = true;
        let periods = self.tuples.periods;
        self.counters_by_period.reserve(self.events.min(COUNTERS_SIZED));
        self.attributed_by_period.reserve(self.events.saturating_mul(periods));
        for (leaf, acc) in std::mem::take(&mut self.counters) {
            self.add_counter(leaf, acc);
        }
        for ((leaf, a), acc) in std::mem::take(&mut self.attributed) {
            self.add_attributed(leaf, a, acc);
        }
    }

    /// One applied event into `attributed_counters` under `a`, with where its `Dims`' text
    /// and its bucket starts are (`count_in`'s answer for it).
    pub fn count_attributed_in(&mut self, text: DimsText, a: Attribution, cost: i128, names: &Names) {
        let attribution = self.text.attribution(a, names, &mut self.used);
        self.add_attributed(text.0, attribution, Acc { events: 1, cost });
    }

    /// `acc` into `attributed_counters` at `leaf` (by leaf, or by period when spread).
    #[inline(always)]
    fn add_attributed(&mut self, leaf: Leaf, attribution: u32, acc: Acc<i64>) {
        if self.spread {
            for (p, start) in self.tuples.starts(leaf.tuple()).iter().enumerate() {
                self.attributed_by_period.entry((Key::new(leaf.dims(), p, *start), attribution)).or_default().add(&acc);
            }
        } else {
            // (room made at the first: a spread batch never uses this map)
            if self.attributed.capacity() == 0 {
                self.attributed.reserve(self.events);
            }
            self.attributed.entry((leaf, attribution)).or_default().add(&acc);
        }
    }

    /// One event into `attributed_counters` under `a`, `sign` = 1, or -1 to take it out.
    #[allow(clippy::too_many_arguments)]
    pub fn count_attributed(&mut self, periods: &Periods, d: Dims, a: Attribution, at: i64, cost: i128, sign: i64, names: &Names) {
        let dims = self.text.dims(d, names, &mut self.used);
        let attribution = self.text.attribution(a, names, &mut self.used);
        let mut starts = Vec::with_capacity(periods.0.len());
        bucket_starts(periods, at, &mut starts);
        let leaf = Leaf::new(dims, self.tuples.id(&starts));
        self.add_attributed(leaf, attribution, Acc { events: sign, cost: (sign as i128).saturating_mul(cost) });
    }

    /// Each `counters` row's sums, into `sink`.
    #[inline(always)]
    fn each_counter(&self, sink: &mut impl Sink<Acc<u64>>) {
        each_row(&self.counters, &self.tuples, |l| (*l, 0), |_, l| l, sink);
        for (k, acc) in &self.counters_by_period {
            let (dims, p, start) = k.parts();
            sink.row(dims, 0, p, start, acc);
        }
    }

    /// Each `attributed_counters` row's sums, zero ones too, into `sink`.
    #[inline(always)]
    fn each_attributed(&self, sink: &mut impl Sink<Acc<i64>>) {
        each_row(&self.attributed, &self.tuples, |(l, a)| (*l, *a), |(_, a), l| (l, *a), sink);
        for ((k, a), acc) in &self.attributed_by_period {
            let (dims, p, start) = k.parts();
            sink.row(dims, *a, p, start, acc);
        }
    }

    /// The batch's sums, ready to be written: the names their keys use were resolved as
    /// they were counted (a few per batch), so the rows can be written after the names' lock
    /// is released.
    pub fn into_table(mut self, periods: &Periods) -> CounterTables {
        for (name, _, _) in &periods.0 {
            let span = self.text.span(|b| put_str(b, name));
            self.text.periods.push(span);
        }
        // (`SHORT` bytes after the last text: each is copied as that many, `Room::bytes_of`)
        self.text.bytes.extend_from_slice(&[0; crate::store::rowbinary::SHORT]);
        let text = std::mem::take(&mut self.text);
        let used = std::mem::take(&mut self.used);
        let periods = periods.0.iter().map(|(name, _, _)| name.as_str().into()).collect();
        CounterTables { sums: self, names: used, periods, text }
    }
}

/// A batch's counter sums, ready to be written as `counters` and `attributed_counters` rows
/// (`write_rowbinary`, straight into the tables' buffers: no row structs; BENCHMARKS.md §1b)
/// or read as rows (`rows`, for tests and inspection).
#[derive(Debug, Default)]
pub struct CounterTables {
    sums: Sums,
    /// The text of every name id the keys use.
    names: FxHashMap<u32, Arc<str>>,
    /// Period names by index in `Periods`.
    periods: Vec<Arc<str>>,
    /// The keys' text columns, encoded.
    text: KeyText,
}

impl CounterTables {
    /// The text of a name id the keys use ("" for 0 or another id). Every applied event's
    /// attribution is a key of `attributed_counters`, so the event rows' names are here too.
    pub fn name(&self, id: u32) -> &str {
        self.names.get(&id).map_or("", |n| n)
    }

    /// Rows of `counters`.
    pub fn counter_rows(&self) -> usize {
        let mut rows = 0;
        self.sums.each_counter(&mut Each(|_, _, _, _, _: &Acc<u64>| rows += 1));
        rows
    }

    /// Appends every row to `counters` and `attributed_counters`, in the maps' order (which is
    /// deterministic: `FxHash` has no random seed), the bytes `rows` would serialize to.
    ///
    /// A row's text columns come from its key's few distinct parts (a batch has hundreds of
    /// distinct `Dims` for thousands of rows), encoded once per batch by `into_table`
    /// ([`KeyText`]), so a row is a few copies of those bytes plus its numbers: nine strings
    /// per row, each with its own name lookup, were a tenth of the batch (BENCHMARKS.md §1b).
    pub fn write_rowbinary(&self, counters: &mut RowBuffer, attributed: &mut RowBuffer) {
        let (text, sums) = (&self.text, &self.sums);
        let periods = sums.tuples.periods;
        counters.bytes.reserve((sums.counters.len() * periods + sums.counters_by_period.len()) * 96);
        let mut rows = CounterRows { b: Cursor::new(&mut counters.bytes), text, rows: 0 };
        sums.each_counter(&mut rows);
        let n = rows.rows;
        drop(rows);
        counters.rows += n;
        attributed.bytes.reserve((sums.attributed.len() * periods + sums.attributed_by_period.len()) * 112);
        let mut rows = AttributedRows { b: Cursor::new(&mut attributed.bytes), text, rows: 0 };
        sums.each_attributed(&mut rows);
        let n = rows.rows;
        drop(rows);
        attributed.rows += n;
    }

    /// The rows, in `write_rowbinary`'s order.
    pub fn rows(&self) -> (Vec<CounterRow<Text<'static>>>, Vec<AttributedCounterRow<Text<'static>>>) {
        let text = |id: u32| -> Text<'static> { self.names.get(&id).filter(|_| id != 0).map_or(Text::Borrowed(""), |n| Text::Shared(n.clone())) };
        let period = |i: u8| -> Text<'static> { self.periods.get(i as usize).map_or(Text::Borrowed(""), |n| Text::Shared(n.clone())) };
        let names = &text;
        let dims = |i: u32| self.text.dims_of.get(i as usize).copied();
        let mut counters: Vec<CounterRow<Text<'static>>> = Vec::new();
        self.sums.each_counter(&mut Each(|i, _, p, bucket_start, &Acc { events, cost: cost_amount }: &Acc<u64>| {
            // (every index was given by `KeyText::dims`, which pushed its `Dims`)
            let Some(d) = dims(i) else { return };
            counters.push(CounterRow {
                tenant: names(d.tenant),
                period: period(p),
                bucket_start,
                channel: Text::Borrowed(d.channel.as_str()),
                provider: names(d.provider),
                event_type: Text::Borrowed(d.event_type.as_str()),
                bounce_class: Text::Borrowed(d.bounce.map_or("", |b| b.as_str())),
                cost_unit: names(d.cost_unit),
                machine: Text::Borrowed(d.machine.map_or("", |m| m.as_str())),
                events,
                cost_amount,
            });
        }));
        let mut attributed: Vec<AttributedCounterRow<Text<'static>>> = Vec::new();
        self.sums.each_attributed(&mut Each(|i, attribution, p, bucket_start, &Acc { events, cost: cost_amount }: &Acc<i64>| {
            if events == 0 && cost_amount == 0 {
                return;
            }
            let Some(d) = dims(i) else { return };
            let (b, s, t) = self.text.attribution_of.get(attribution as usize).copied().unwrap_or_default();
            attributed.push(AttributedCounterRow {
                tenant: names(d.tenant),
                period: period(p),
                bucket_start,
                broadcast_id: names(b),
                sequence_id: names(s),
                template_key: names(t),
                channel: Text::Borrowed(d.channel.as_str()),
                provider: names(d.provider),
                event_type: Text::Borrowed(d.event_type.as_str()),
                bounce_class: Text::Borrowed(d.bounce.map_or("", |b| b.as_str())),
                machine: Text::Borrowed(d.machine.map_or("", |m| m.as_str())),
                cost_unit: names(d.cost_unit),
                events,
                cost_amount,
            });
        }));
        (counters, attributed)
    }
}

/// A span of `KeyText::bytes` as `Room::bytes_of` takes it.
#[inline(always)]
fn span((start, end): (u32, u32)) -> (usize, usize) {
    (start as usize, end as usize)
}

/// `counters` rows written as `RowBinary` (`CounterTables::write_rowbinary`).
struct CounterRows<'b, 't> {
    b: Cursor<'b>,
    text: &'t KeyText,
    rows: usize,
}

impl Sink<Acc<u64>> for CounterRows<'_, '_> {
    #[inline(always)]
    fn row(&mut self, dims: u32, _: u32, p: u8, bucket_start: u16, acc: &Acc<u64>) {
        let text = self.text;
        let k = text.dims.get(dims as usize).copied().unwrap_or_default();
        let (start, events, cost) = (bucket_start.to_le_bytes(), acc.events.to_le_bytes(), acc.cost.to_le_bytes());
        let mut r = self.b.room_for(3 * Room::BYTES + start.len() + events.len() + cost.len());
        r.bytes_of(&text.bytes, span(k.tenant));
        r.bytes_of(&text.bytes, span(text.period_span(p)));
        r.put(start);
        r.bytes_of(&text.bytes, span(k.counters));
        r.put(events);
        r.put(cost);
        self.rows += 1;
    }
}

/// `attributed_counters` rows written as `RowBinary`, but for those whose sums are zero (an
/// attribution moved away and back within the batch).
struct AttributedRows<'b, 't> {
    b: Cursor<'b>,
    text: &'t KeyText,
    rows: usize,
}

impl Sink<Acc<i64>> for AttributedRows<'_, '_> {
    #[inline(always)]
    fn row(&mut self, dims: u32, attribution: u32, p: u8, bucket_start: u16, acc: &Acc<i64>) {
        if acc.events == 0 && acc.cost == 0 {
            return;
        }
        let text = self.text;
        let k = text.dims.get(dims as usize).copied().unwrap_or_default();
        let a = text.attributions.get(attribution as usize).copied().unwrap_or_default();
        let (start, events, cost) = (bucket_start.to_le_bytes(), acc.events.to_le_bytes(), acc.cost.to_le_bytes());
        let mut r = self.b.room_for(4 * Room::BYTES + start.len() + events.len() + cost.len());
        r.bytes_of(&text.bytes, span(k.tenant));
        r.bytes_of(&text.bytes, span(text.period_span(p)));
        r.put(start);
        r.bytes_of(&text.bytes, span(a));
        r.bytes_of(&text.bytes, span(k.attributed));
        r.put(events);
        r.put(cost);
        self.rows += 1;
    }
}

/// A batch's key parts as `RowBinary`, each encoded once: the periods' names, and per
/// distinct `Dims` and attribution the consecutive text columns they fill.
#[derive(Debug, Default)]
struct KeyText {
    bytes: Vec<u8>,
    /// Each period's name, by index in `Periods`.
    periods: Vec<(u32, u32)>,
    /// By index (a [`Leaf`]'s first part).
    dims: Vec<DimsSpans>,
    /// The `Dims` themselves, by the same index (for `CounterTables::rows`).
    dims_of: Vec<Dims>,
    /// Broadcast, sequence and template columns, by index (`Sums::attributed`'s second key part).
    attributions: Vec<(u32, u32)>,
    /// The attributions themselves, by the same index.
    attribution_of: Vec<Attribution>,
    /// By [`Dims::packed`].
    dims_index: FxHashMap<u128, u32>,
    attribution_index: FxHashMap<Attribution, u32>,
}

/// Where a `Dims`' columns are in `KeyText::bytes`, as (start, end).
#[derive(Debug, Default, Clone, Copy)]
struct DimsSpans {
    /// `tenant`.
    tenant: (u32, u32),
    /// `counters`' columns after the bucket start: channel, provider, event type, bounce, cost unit, machine.
    counters: (u32, u32),
    /// `attributed_counters`' after the attribution: channel, provider, event type, bounce, machine, cost unit.
    attributed: (u32, u32),
}

impl KeyText {
    /// Where period `p`'s name is.
    fn period_span(&self, p: u8) -> (u32, u32) {
        self.periods.get(p as usize).copied().unwrap_or_default()
    }

    fn span(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> (u32, u32) {
        let start = self.bytes.len() as u32;
        write(&mut self.bytes);
        (start, self.bytes.len() as u32)
    }

    /// The index of `d`'s text (encoded on first sight; the names it uses kept in `used`).
    fn dims(&mut self, d: Dims, names: &Names, used: &mut FxHashMap<u32, Arc<str>>) -> u32 {
        let packed = d.packed();
        if let Some(i) = self.dims_index.get(&packed) {
            return *i;
        }
        let name = |id: u32| names.get(id);
        for id in [d.tenant, d.provider, d.cost_unit] {
            used.entry(id).or_insert_with(|| name(id).into());
        }
        let [bounce, machine] = [d.bounce.map_or("", |x| x.as_str()), d.machine.map_or("", |m| m.as_str())];
        let k = DimsSpans {
            tenant: self.span(|b| put_str(b, name(d.tenant))),
            counters: self.span(|b| {
                for s in [d.channel.as_str(), name(d.provider), d.event_type.as_str(), bounce, name(d.cost_unit), machine] {
                    put_str(b, s);
                }
            }),
            attributed: self.span(|b| {
                for s in [d.channel.as_str(), name(d.provider), d.event_type.as_str(), bounce, machine, name(d.cost_unit)] {
                    put_str(b, s);
                }
            }),
        };
        let i = self.dims.len() as u32;
        self.dims.push(k);
        self.dims_of.push(d);
        self.dims_index.insert(packed, i);
        i
    }

    /// The index of `a`'s broadcast, sequence and template columns (as `dims`).
    fn attribution(&mut self, a: Attribution, names: &Names, used: &mut FxHashMap<u32, Arc<str>>) -> u32 {
        if let Some(i) = self.attribution_index.get(&a) {
            return *i;
        }
        for id in [a.0, a.1, a.2] {
            used.entry(id).or_insert_with(|| names.get(id).into());
        }
        let k = self.span(|b| {
            for id in [a.0, a.1, a.2] {
                put_str(b, names.get(id));
            }
        });
        let i = self.attributions.len() as u32;
        self.attributions.push(k);
        self.attribution_of.push(a);
        self.attribution_index.insert(a, i);
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Kept starts equal the computed ones, for times in any order (sorted is the batch's
        /// case, where they are kept longest), in UTC and in a zone.
        #[test]
        fn kept_bucket_starts_are_the_computed_ones(
            mut times in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::any::<i64>(),
                -100 * DAY_MS..100 * DAY_MS,
                1_700_000_000_000i64..1_700_000_000_000 + 100 * DAY_MS,
            ], 1..200),
            sorted in proptest::prelude::any::<bool>(),
            zone in proptest::sample::select(vec!["UTC", "Asia/Kathmandu", "America/Los_Angeles"]),
        ) {
            if sorted {
                times.sort_unstable();
            }
            let periods = Periods::new(zone).unwrap();
            let mut kept = BucketStarts::new(&periods);
            for at in times {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                kept.push(at, &mut a);
                bucket_starts(&periods, at, &mut b);
                proptest::prop_assert_eq!(a, b, "at {}", at);
            }
        }

        /// Two `Dims` pack to the same integer exactly when they are equal (the counters' text
        /// index is keyed by it: two keys summed as one would mix their counts).
        #[test]
        fn dims_pack_to_equal_integers_only_when_equal(a in dims(), b in dims(), mask in 0u8..128) {
            // `c`: each field from `a` or `b` by a bit of `mask` (so `c` differs from `a` in any
            // one field, or several, or none)
            let pick = |bit: u8| mask & (1 << bit) != 0;
            let c = Dims {
                tenant: if pick(0) { b.tenant } else { a.tenant },
                provider: if pick(1) { b.provider } else { a.provider },
                cost_unit: if pick(2) { b.cost_unit } else { a.cost_unit },
                channel: if pick(3) { b.channel } else { a.channel },
                event_type: if pick(4) { b.event_type } else { a.event_type },
                bounce: if pick(5) { b.bounce } else { a.bounce },
                machine: if pick(6) { b.machine } else { a.machine },
            };
            proptest::prop_assert_eq!(a == c, a.packed() == c.packed(), "{:?} {:?}", a, c);
        }
    }

    proptest::proptest! {
        /// Sums kept by leaf (a key and its tuple of bucket starts) come out as one row per key,
        /// period and start, each the sum of what was counted there: brute force over the same
        /// counts, with tuples that share some periods' starts and not others, and with more
        /// periods than a packed tuple holds.
        #[test]
        fn leaves_come_out_as_one_row_per_key_period_and_start(
            counts in proptest::collection::vec((0u32..3, proptest::collection::vec(0u16..4, 9), 1u64..5, -3i128..3), 0..60),
            periods in proptest::sample::select(vec![1usize, 3, 6, 9]),
        ) {
            let mut tuples = StartTuples::new(periods);
            let mut leaves: FxHashMap<Leaf, Acc<u64>> = FxHashMap::default();
            let mut truth: std::collections::BTreeMap<(u32, u8, u16), (u64, i128)> = Default::default();
            for (dims, starts, events, cost) in &counts {
                // (starts as days of a few weeks: a period's start the first of its group)
                let starts: Vec<u16> = starts.iter().take(periods).enumerate().map(|(p, d)| d - d % (p as u16 % 3 + 1)).collect();
                let leaf = Leaf::new(*dims, tuples.id(&starts));
                leaves.entry(leaf).or_default().add(&Acc { events: *events, cost: *cost });
                for (p, start) in starts.iter().enumerate() {
                    let t = truth.entry((*dims, p as u8, *start)).or_default();
                    t.0 += events;
                    t.1 += cost;
                }
            }
            let mut rows: std::collections::BTreeMap<(u32, u8, u16), (u64, i128)> = Default::default();
            let mut written = 0;
            each_row(&leaves, &tuples, |l| (*l, 0), |_, l| l, &mut Each(|dims, _, p, start, acc: &Acc<u64>| {
                written += 1;
                rows.insert((dims, p, start), (acc.events, acc.cost));
            }));
            proptest::prop_assert_eq!(written, rows.len(), "a key, period and start written twice");
            proptest::prop_assert_eq!(rows, truth);
        }
    }

    proptest::proptest! {
        /// A batch's counter rows, through `Sums` as a batch counts (each event's `count_in`,
        /// then its `count_attributed_in`, then moves in and out by `count_attributed`), equal
        /// brute-force sums by key, period and start: one row each, zero attributed rows left
        /// out. Events over one day (kept by leaf), a few days of a week or two (leaves summed
        /// per period) and months (by period past `LEAF_TUPLES` tuples), in UTC and in a zone.
        #[test]
        fn counter_rows_are_the_sums_by_key_period_and_start(
            events in proptest::collection::vec((0usize..3, 0usize..2, 0i64..1_000, -2i128..5), 1..80),
            days in proptest::sample::select(vec![1i64, 3, 12, 120]),
            moves in proptest::collection::vec(0usize..80, 0..6),
            zone in proptest::sample::select(vec!["UTC", "Asia/Kathmandu"]),
        ) {
            let periods = Periods::new(zone).unwrap();
            let mut names = Names::default();
            let tenants = [names.id("acme"), names.id("globex")];
            let provider = names.id("ses");
            let campaigns = [(names.id("bc-1"), 0, 0), (names.id("bc-2"), 0, names.id("t"))];
            let types = [EventType::Delivered, EventType::Opened, EventType::Bounced];
            let dims = |t: usize, k: usize| Dims { tenant: tenants[k], provider, cost_unit: 0, channel: Channel::Email, event_type: types[t], bounce: None, machine: None };
            // 2026-03-01T00:00Z, and each event's time within `days` days of it
            let at = |x: i64| 1_772_323_200_000 + x * days * DAY_MS / 1_000;
            let mut sums = Sums::for_batch(events.len(), periods.0.len());
            let mut kept = BucketStarts::new(&periods);
            let mut counted = Vec::new();
            // (keyed by `Dims::packed`: one integer each, distinct for distinct `Dims`)
            let mut truth: std::collections::BTreeMap<(u128, u8, u16), (u64, i128)> = Default::default();
            let mut truth_attributed: std::collections::BTreeMap<(u128, Attribution, u8, u16), (i64, i128)> = Default::default();
            let mut starts = Vec::new();
            for (t, k, x, cost) in &events {
                starts.clear();
                let day = kept.push(at(*x), &mut starts);
                counted.push(sums.count_in(dims(*t, *k), &starts, day, *cost, &names));
                for (p, start) in starts.iter().enumerate() {
                    let e = truth.entry((dims(*t, *k).packed(), p as u8, *start)).or_default();
                    e.0 += 1;
                    e.1 += cost;
                }
            }
            for ((t, k, x, cost), text) in events.iter().zip(&counted) {
                let a = campaigns[*k];
                sums.count_attributed_in(*text, a, *cost, &names);
                for (p, (_, start)) in periods.buckets(at(*x)).enumerate() {
                    let e = truth_attributed.entry((dims(*t, *k).packed(), a, p as u8, clickhouse_date(start))).or_default();
                    e.0 += 1;
                    e.1 += cost;
                }
            }
            // events of the batch moved from their attribution to the other, as a late send
            // record moves its delivery's: out of one, into the other
            for (t, k, x, cost) in moves.iter().filter_map(|i| events.get(*i)) {
                for (c, sign) in [(*k, -1), (1 - *k, 1)] {
                    let a = campaigns[c];
                    sums.count_attributed(&periods, dims(*t, *k), a, at(*x), *cost, sign, &names);
                    for (p, (_, start)) in periods.buckets(at(*x)).enumerate() {
                        let e = truth_attributed.entry((dims(*t, *k).packed(), a, p as u8, clickhouse_date(start))).or_default();
                        e.0 += sign;
                        e.1 += sign as i128 * cost;
                    }
                }
            }
            let tables = sums.into_table(&periods);
            let (rows, attributed) = tables.rows();
            proptest::prop_assert_eq!(rows.len(), tables.counter_rows());
            let ids: Vec<(&str, u32)> = ["acme", "globex", "bc-1", "bc-2", "t"].iter().map(|n| (*n, names.id(n))).collect();
            let name = |t: &Text<'_>| -> u32 { ids.iter().find(|(n, _)| *n == &**t).map_or(0, |(_, id)| *id) };
            let period = |t: &Text<'_>| periods.0.iter().position(|(n, _, _)| n.as_str() == &**t).unwrap() as u8;
            let dims_of = |tenant: &Text<'_>, ty: &Text<'_>| Dims { tenant: name(tenant), provider, cost_unit: 0, channel: Channel::Email, event_type: EventType::parse(ty).unwrap(), bounce: None, machine: None }.packed();
            let mut got: std::collections::BTreeMap<(u128, u8, u16), (u64, i128)> = Default::default();
            for r in &rows {
                let old = got.insert((dims_of(&r.tenant, &r.event_type), period(&r.period), r.bucket_start), (r.events, r.cost_amount));
                proptest::prop_assert!(old.is_none(), "a counters row written twice");
            }
            proptest::prop_assert_eq!(got, truth);
            let mut got: std::collections::BTreeMap<(u128, Attribution, u8, u16), (i64, i128)> = Default::default();
            for r in &attributed {
                let a = (name(&r.broadcast_id), name(&r.sequence_id), name(&r.template_key));
                let old = got.insert((dims_of(&r.tenant, &r.event_type), a, period(&r.period), r.bucket_start), (r.events, r.cost_amount));
                proptest::prop_assert!(old.is_none(), "an attributed row written twice");
            }
            truth_attributed.retain(|_, (n, c)| *n != 0 || *c != 0);
            proptest::prop_assert_eq!(got, truth_attributed);
        }
    }

    fn dims() -> impl proptest::strategy::Strategy<Value = Dims> {
        use proptest::prelude::*;
        // small ids as well as any, so that equal ones come up
        let id = || prop_oneof![0u32..3, any::<u32>()];
        let of = |n: usize| 0..n;
        (id(), id(), id(), of(Channel::VALUES.len()), of(EventType::VALUES.len()), proptest::option::of(of(BounceClass::VALUES.len())), proptest::option::of(of(MachineReason::ALL.len()))).prop_map(|(tenant, provider, cost_unit, c, t, b, m)| Dims {
            tenant,
            provider,
            cost_unit,
            channel: Channel::VALUES[c],
            event_type: EventType::VALUES[t],
            bounce: b.map(|b| BounceClass::VALUES[b]),
            machine: m.map(|m| MachineReason::ALL[m]),
        })
    }
}
