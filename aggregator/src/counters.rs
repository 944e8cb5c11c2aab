//! A batch's counter sums: `counters` (tenant × channel × provider × event type × bounce
//! class × machine × currency) and `attributed_counters` (the same by broadcast, sequence and
//! template), per period bucket. Keys are interned (`Dims`), so summing an event hashes and
//! compares a few integers, not nine strings; strings are built once per output row.

use crate::buckets::{clickhouse_date, Periods};
use crate::machine::MachineReason;
use crate::store::{AttributedCounterRow, CounterRow, EventRow};
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

    /// The rows (in the maps' order, which is deterministic: `FxHash` has no random seed).
    pub fn into_rows(self, periods: &Periods, names: &Names) -> (Vec<CounterRow>, Vec<AttributedCounterRow>) {
        let period = |i: u8| periods.0.get(i as usize).map_or("", |p| p.0.as_str()).to_string();
        let counters: Vec<CounterRow> = self
            .counters
            .into_iter()
            .map(|((d, p, bucket_start), (events, cost_amount))| CounterRow {
                tenant: names.get(d.tenant).into(),
                period: period(p),
                bucket_start,
                channel: d.channel.as_str().into(),
                provider: names.get(d.provider).into(),
                event_type: d.event_type.as_str().into(),
                bounce_class: d.bounce.map_or("", |b| b.as_str()).into(),
                cost_unit: names.get(d.cost_unit).into(),
                machine: d.machine.map_or("", |m| m.as_str()).into(),
                events,
                cost_amount,
            })
            .collect();
        let attributed: Vec<AttributedCounterRow> = self
            .attributed
            .into_iter()
            .filter(|(_, (n, c))| *n != 0 || *c != 0)
            .map(|(((d, p, bucket_start), (b, s, t)), (events, cost_amount))| AttributedCounterRow {
                tenant: names.get(d.tenant).into(),
                period: period(p),
                bucket_start,
                broadcast_id: names.get(b).into(),
                sequence_id: names.get(s).into(),
                template_key: names.get(t).into(),
                channel: d.channel.as_str().into(),
                provider: names.get(d.provider).into(),
                event_type: d.event_type.as_str().into(),
                bounce_class: d.bounce.map_or("", |b| b.as_str()).into(),
                machine: d.machine.map_or("", |m| m.as_str()).into(),
                cost_unit: names.get(d.cost_unit).into(),
                events,
                cost_amount,
            })
            .collect();
        (counters, attributed)
    }
}
