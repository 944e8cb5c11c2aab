//! A batch's counter sums: `counters` (tenant × channel × provider × event type × bounce
//! class × machine × currency) and `attributed_counters` (the same by broadcast, sequence and
//! template), per period bucket. Keys are interned (`Dims`), so summing an event hashes and
//! compares a few integers, not nine strings; strings are built once per output row.

use crate::buckets::{clickhouse_date, Periods};
use crate::machine::MachineReason;
use crate::store::{AttributedCounterRow, CounterRow, EventRow, Text};
use crate::state::Names;
use rustc_hash::FxHashMap;
use schemas::{BounceClass, Channel, Event, EventType};

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
    pub fn of_event(e: &Event, machine: Option<MachineReason>, names: &mut Names) -> Dims {
        Dims {
            tenant: names.id(&e.tenant),
            provider: names.id(&e.provider),
            cost_unit: e.cost.as_ref().map_or(0, |c| names.id(&c.unit)),
            channel: e.channel,
            event_type: e.event_type,
            bounce: e.bounce_class,
            machine,
        }
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

/// (dims, period index in `Periods`, bucket start as days since the epoch)
type Bucketed = (Dims, u8, u16);

#[derive(Debug, Default)]
pub struct Sums {
    counters: FxHashMap<Bucketed, (u64, i128)>,
    attributed: FxHashMap<(Bucketed, Attribution), (i64, i128)>,
}

fn buckets(periods: &Periods, d: Dims, at: i64) -> impl Iterator<Item = Bucketed> + '_ {
    periods.buckets(at).enumerate().map(move |(i, (_, start))| (d, i as u8, clickhouse_date(start)))
}

impl Sums {
    /// One applied event into `counters`.
    pub fn count(&mut self, periods: &Periods, d: Dims, at: i64, cost: i128) {
        for k in buckets(periods, d, at) {
            let acc = self.counters.entry(k).or_insert((0, 0));
            acc.0 += 1;
            // (saturating: `admission` bounds each cost, and stored rows came through it)
            acc.1 = acc.1.saturating_add(cost);
        }
    }

    /// One event into `attributed_counters` under `a`, `sign` = 1, or -1 to take it out.
    pub fn count_attributed(&mut self, periods: &Periods, d: Dims, a: Attribution, at: i64, cost: i128, sign: i64) {
        for k in buckets(periods, d, at) {
            let acc = self.attributed.entry((k, a)).or_insert((0, 0));
            acc.0 += sign;
            acc.1 = acc.1.saturating_add((sign as i128).saturating_mul(cost));
        }
    }

    /// The rows (in the maps' order, which is deterministic: `FxHash` has no random seed);
    /// names shared with `names`, period names with each other.
    pub fn into_rows(self, periods: &Periods, names: &Names) -> (Vec<CounterRow<Text<'static>>>, Vec<AttributedCounterRow<Text<'static>>>) {
        // UTC periods are static names; a zone's, one string per batch
        let period_names: Vec<Text<'static>> =
            periods.0.iter().map(|(name, p, tz)| if tz.is_none() && name == p.as_str() { Text::Borrowed(p.as_str()) } else { Text::Shared(name.as_str().into()) }).collect();
        let period = |i: u8| period_names.get(i as usize).cloned().unwrap_or_default();
        let counters: Vec<CounterRow<Text<'static>>> = self
            .counters
            .into_iter()
            .map(|((d, p, bucket_start), (events, cost_amount))| CounterRow {
                tenant: names.text(d.tenant),
                period: period(p),
                bucket_start,
                channel: Text::Borrowed(d.channel.as_str()),
                provider: names.text(d.provider),
                event_type: Text::Borrowed(d.event_type.as_str()),
                bounce_class: Text::Borrowed(d.bounce.map_or("", |b| b.as_str())),
                cost_unit: names.text(d.cost_unit),
                machine: Text::Borrowed(d.machine.map_or("", |m| m.as_str())),
                events,
                cost_amount,
            })
            .collect();
        let attributed: Vec<AttributedCounterRow<Text<'static>>> = self
            .attributed
            .into_iter()
            .filter(|(_, (n, c))| *n != 0 || *c != 0)
            .map(|(((d, p, bucket_start), (b, s, t)), (events, cost_amount))| AttributedCounterRow {
                tenant: names.text(d.tenant),
                period: period(p),
                bucket_start,
                broadcast_id: names.text(b),
                sequence_id: names.text(s),
                template_key: names.text(t),
                channel: Text::Borrowed(d.channel.as_str()),
                provider: names.text(d.provider),
                event_type: Text::Borrowed(d.event_type.as_str()),
                bounce_class: Text::Borrowed(d.bounce.map_or("", |b| b.as_str())),
                machine: Text::Borrowed(d.machine.map_or("", |m| m.as_str())),
                cost_unit: names.text(d.cost_unit),
                events,
                cost_amount,
            })
            .collect();
        (counters, attributed)
    }
}
