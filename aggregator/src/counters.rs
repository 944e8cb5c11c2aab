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

/// A counter key as one integer: the index of its `Dims` in the batch's [`KeyText`] (which
/// stands for the `Dims` within a batch), the period's index in `Periods` and the bucket start
/// (days since the epoch). Why: a `(Dims, u8, u16)` key was 20 bytes hashed field by field and
/// compared field by field in every probe, and its map entry 64 bytes; this one is 8, its entry
/// 48 (BENCHMARKS.md §1b).
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

/// The sums, and each key's text columns encoded once per batch ([`KeyText`]; each event's
/// `Dims` and attribution looked up once as it is counted, not once per key: per key it was
/// ~600 instructions per event, 3.6 % of a batch; BENCHMARKS.md §1b).
#[derive(Debug, Default)]
pub struct Sums {
    counters: FxHashMap<Key, Acc<u64>>,
    /// Keyed by the counter key and the index of the attribution in the batch's [`KeyText`].
    attributed: FxHashMap<(Key, u32), Acc<i64>>,
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
}

/// Days `BucketStarts` keeps (a power of two: the slot is the day's low bits).
const DAYS: usize = 128;

impl<'p> BucketStarts<'p> {
    pub fn new(periods: &'p Periods) -> Self {
        BucketStarts { periods, kept: vec![(i64::MIN, 0); periods.0.len() * DAYS] }
    }

    /// As [`bucket_starts`].
    pub fn push(&mut self, at: i64, out: &mut Vec<u16>) {
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
    }
}

/// Where an event's `Dims` text is in the batch's [`KeyText`] (`Sums::count_in` returns it
/// for `count_attributed_in`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DimsText(u32);

/// Keys of the plain counters made room for before a batch, at most (`Sums::for_batch`): a
/// batch spread over months makes a key per event and period nearly, and the map grown from
/// empty was rehashed ~15 times a batch (~100 instructions per event; 0.98x with room made,
/// campaign unchanged; BENCHMARKS.md §1b). Live traffic's keys are a few hundred.
const COUNTERS_SIZED: usize = 2_048;

impl Sums {
    /// Sums for a batch of `events` events counted in `periods` periods each: the attributed
    /// sums' map sized for as many keys as the batch can make (each event a key per period),
    /// so it is never grown and rehashed as it fills (a campaign's attributions make a key
    /// nearly per event: grown from empty it was rehashed ~12 times a batch, 1 % of it;
    /// BENCHMARKS.md §1b). The plain counters' keys are few on live traffic (no attribution):
    /// room for up to `COUNTERS_SIZED`.
    pub fn for_batch(events: usize, periods: usize) -> Self {
        let mut sums = Sums::default();
        sums.attributed.reserve(events.saturating_mul(periods));
        sums.counters.reserve(events.min(COUNTERS_SIZED));
        sums
    }

    /// One applied event into `counters`, with its bucket starts (`BucketStarts`); `names`
    /// holds `d`'s names. Returns where `d`'s text is, for `count_attributed_in`.
    pub fn count_in(&mut self, d: Dims, starts: &[u16], cost: i128, names: &Names) -> DimsText {
        let dims = self.text.dims(d, names, &mut self.used);
        for (p, start) in starts.iter().enumerate() {
            let acc = self.counters.entry(Key::new(dims, p, *start)).or_default();
            acc.events += 1;
            // (saturating: `admission` bounds each cost, and stored rows came through it)
            acc.cost = acc.cost.saturating_add(cost);
        }
        DimsText(dims)
    }

    /// One applied event into `attributed_counters` under `a`, with its bucket starts and
    /// where its `Dims`' text is (`count_in`'s answer for it).
    pub fn count_attributed_in(&mut self, text: DimsText, starts: &[u16], a: Attribution, cost: i128, names: &Names) {
        let attribution = self.text.attribution(a, names, &mut self.used);
        for (p, start) in starts.iter().enumerate() {
            let acc = self.attributed.entry((Key::new(text.0, p, *start), attribution)).or_default();
            acc.events += 1;
            acc.cost = acc.cost.saturating_add(cost);
        }
    }

    /// One event into `attributed_counters` under `a`, `sign` = 1, or -1 to take it out.
    #[allow(clippy::too_many_arguments)]
    pub fn count_attributed(&mut self, periods: &Periods, d: Dims, a: Attribution, at: i64, cost: i128, sign: i64, names: &Names) {
        let dims = self.text.dims(d, names, &mut self.used);
        let attribution = self.text.attribution(a, names, &mut self.used);
        for (p, (_, start)) in periods.buckets(at).enumerate() {
            let acc = self.attributed.entry((Key::new(dims, p, clickhouse_date(start)), attribution)).or_default();
            acc.events += sign;
            acc.cost = acc.cost.saturating_add((sign as i128).saturating_mul(cost));
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
        self.sums.counters.len()
    }

    /// Appends every row to `counters` and `attributed_counters`, in the maps' order (which is
    /// deterministic: `FxHash` has no random seed), the bytes `rows` would serialize to.
    ///
    /// A row's text columns come from its key's few distinct parts (a batch has hundreds of
    /// distinct `Dims` for thousands of rows), encoded once per batch by `into_table`
    /// ([`KeyText`]), so a row is a few copies of those bytes plus its numbers: nine strings
    /// per row, each with its own name lookup, were a tenth of the batch (BENCHMARKS.md §1b).
    pub fn write_rowbinary(&self, counters: &mut RowBuffer, attributed: &mut RowBuffer) {
        let text = &self.text;
        counters.bytes.reserve(self.sums.counters.len() * 96);
        let mut b = Cursor::new(&mut counters.bytes);
        for (key, acc) in &self.sums.counters {
            let (dims, p, bucket_start) = key.parts();
            let k = text.dims.get(dims as usize).copied().unwrap_or_default();
            let (start, events, cost) = (bucket_start.to_le_bytes(), acc.events.to_le_bytes(), acc.cost.to_le_bytes());
            let mut r = b.room_for(3 * Room::BYTES + start.len() + events.len() + cost.len());
            r.bytes(text.get(k.tenant));
            r.bytes(text.period(p));
            r.put(start);
            r.bytes(text.get(k.counters));
            r.put(events);
            r.put(cost);
        }
        drop(b);
        counters.rows += self.sums.counters.len();
        attributed.bytes.reserve(self.sums.attributed.len() * 112);
        let mut b = Cursor::new(&mut attributed.bytes);
        let mut rows = 0;
        for ((key, attribution), acc) in &self.sums.attributed {
            if acc.events == 0 && acc.cost == 0 {
                continue;
            }
            let (dims, p, bucket_start) = key.parts();
            let k = text.dims.get(dims as usize).copied().unwrap_or_default();
            let a = text.attributions.get(*attribution as usize).copied().unwrap_or_default();
            let (start, events, cost) = (bucket_start.to_le_bytes(), acc.events.to_le_bytes(), acc.cost.to_le_bytes());
            let mut r = b.room_for(4 * Room::BYTES + start.len() + events.len() + cost.len());
            r.bytes(text.get(k.tenant));
            r.bytes(text.period(p));
            r.put(start);
            r.bytes(text.get(a));
            r.bytes(text.get(k.attributed));
            r.put(events);
            r.put(cost);
            rows += 1;
        }
        drop(b);
        attributed.rows += rows;
    }

    /// The rows, in `write_rowbinary`'s order.
    pub fn rows(&self) -> (Vec<CounterRow<Text<'static>>>, Vec<AttributedCounterRow<Text<'static>>>) {
        let text = |id: u32| -> Text<'static> { self.names.get(&id).filter(|_| id != 0).map_or(Text::Borrowed(""), |n| Text::Shared(n.clone())) };
        let period = |i: u8| -> Text<'static> { self.periods.get(i as usize).map_or(Text::Borrowed(""), |n| Text::Shared(n.clone())) };
        let names = &text;
        let counters: Vec<CounterRow<Text<'static>>> = self
            .sums
            .counters
            .iter()
            .map(|(key, &Acc { events, cost: cost_amount })| {
                let (d, p, bucket_start) = self.text.key(*key);
                CounterRow {
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
                }
            })
            .collect();
        let attributed: Vec<AttributedCounterRow<Text<'static>>> = self
            .sums
            .attributed
            .iter()
            .filter(|(_, acc)| acc.events != 0 || acc.cost != 0)
            .map(|((key, attribution), &Acc { events, cost: cost_amount })| {
                let (d, p, bucket_start) = self.text.key(*key);
                let (b, s, t) = self.text.attribution_of.get(*attribution as usize).copied().unwrap_or_default();
                AttributedCounterRow {
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
                }
            })
            .collect();
        (counters, attributed)
    }
}

/// A batch's key parts as `RowBinary`, each encoded once: the periods' names, and per
/// distinct `Dims` and attribution the consecutive text columns they fill.
#[derive(Debug, Default)]
struct KeyText {
    bytes: Vec<u8>,
    /// Each period's name, by index in `Periods`.
    periods: Vec<(u32, u32)>,
    /// By index (a [`Key`]'s first part).
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
    fn get(&self, (start, end): (u32, u32)) -> &[u8] {
        self.bytes.get(start as usize..end as usize).unwrap_or_default()
    }

    /// A key's `Dims`, period index and bucket start.
    fn key(&self, key: Key) -> (Dims, u8, u16) {
        let (dims, p, start) = key.parts();
        // (every key's index was given by `dims`, which pushed its `Dims`)
        (self.dims_of[dims as usize], p, start)
    }

    /// Period `p`'s name.
    fn period(&self, p: u8) -> &[u8] {
        self.periods.get(p as usize).map_or(&[][..], |k| self.get(*k))
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
