//! One batch of one partition: events in, the rows every table needs out.
//! Pure given the loaded state, so it can be tested without ClickHouse.

use crate::buckets::{clickhouse_date, Periods};
use crate::sinks::clickhouse::{CounterRow, DeliveryRow, EventRow};
use crate::state::{DeliveryKey, KeyHash, StateStore};
use crate::suppression::{self, SuppressionRow};
use schemas::Event;
use rustc_hash::FxHashMap;
use std::collections::{hash_map, HashMap};

/// The rows a batch writes.
#[derive(Debug, Default)]
pub struct BatchRows {
    pub events: Vec<EventRow>,
    pub counters: Vec<CounterRow>,
    pub deliveries: Vec<DeliveryRow>,
    /// Suppressions caused by single events (complaints, hard bounces, unsubscribes).
    pub suppressions: Vec<SuppressionRow>,
    /// Soft email bounces: whether they cross the threshold needs the address's history.
    pub soft_bounces: Vec<Event>,
    /// Events ignored because they were already applied (replays, provider retries).
    pub duplicates: usize,
}

/// Applies `events` (with their events-topic offsets) to the state and returns the rows.
/// Deliveries missing from `store` must have been loaded (or be new) before the call.
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

/// A counter row's key, borrowed from the event while the batch is summed.
type CounterKey<'a> = (&'a str, &'a str, u16, &'static str, &'a str, &'static str, &'static str, &'a str, &'static str);

/// A delivery this batch changed: an event of it (the row's identity: tenant, provider,
/// message id, recipient) and the offset of its latest applied event (the row's version).
struct Touched<'a> {
    key: DeliveryKey,
    event: &'a Event,
    version: u64,
}

pub fn apply(store: &StateStore, partition: i32, events: &[(i64, Event)], batch_seq: u64, now_ms: i64, cfg: &BatchConfig) -> BatchRows {
    let mut rows = BatchRows::default();
    let mut counters: FxHashMap<CounterKey<'_>, (u64, i128)> = FxHashMap::default();
    // deliveries changed by this batch, in first-seen order
    let mut touched: Vec<Touched<'_>> = Vec::new();
    let mut index: HashMap<DeliveryKey, usize, KeyHash> = HashMap::default();
    let mut names = store.names();
    for (offset, e) in events {
        let Some(applied) = store.apply(&mut names, e, batch_seq, cfg.scanner_window_secs) else {
            rows.duplicates += 1;
            continue;
        };
        let version = (*offset).max(0) as u64;
        match index.entry(applied.key) {
            hash_map::Entry::Occupied(i) => {
                if let Some(t) = touched.get_mut(*i.get()) {
                    t.version = t.version.max(version);
                }
            }
            hash_map::Entry::Vacant(v) => {
                v.insert(touched.len());
                touched.push(Touched { key: applied.key, event: e, version });
            }
        }
        let machine = applied.machine.map(|m| m.as_str()).unwrap_or_default();
        let mut row = EventRow::from_event(e, partition, *offset);
        row.machine = machine.into();
        rows.events.push(row);
        rows.suppressions.extend(suppression::immediate(e));
        if suppression::is_soft_email_bounce(e) {
            rows.soft_bounces.push(e.clone());
        }
        let cost = e.cost.as_ref().map(|c| c.mantissa_at_scale()).unwrap_or(0);
        let unit = e.cost.as_ref().map(|c| c.unit.as_str()).unwrap_or_default();
        let bounce = e.bounce_class.map(|b| b.as_str()).unwrap_or_default();
        for (period, start) in cfg.periods.buckets(e.occurred_at) {
            let key = (e.tenant.as_str(), period, clickhouse_date(start), e.channel.as_str(), e.provider.as_str(), e.event_type.as_str(), bounce, unit, machine);
            let acc = counters.entry(key).or_insert((0, 0));
            acc.0 += 1;
            acc.1 += cost;
        }
    }
    rows.counters = counters
        .into_iter()
        .map(|((tenant, period, bucket_start, channel, provider, event_type, bounce_class, cost_unit, machine), (events, cost_amount))| CounterRow {
            tenant: tenant.into(),
            period: period.into(),
            bucket_start,
            channel: channel.into(),
            provider: provider.into(),
            event_type: event_type.into(),
            bounce_class: bounce_class.into(),
            cost_unit: cost_unit.into(),
            machine: machine.into(),
            events,
            cost_amount,
        })
        .collect();
    rows.counters.sort_unstable(); // a deterministic order (and so the same insert block on a retry)
    rows.deliveries = touched
        .iter()
        .filter_map(|t| store.map.get(&t.key).map(|s| DeliveryRow::from_state(t.event, &s, &names, t.version, now_ms)))
        .collect();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::{EventType, Channel, TimeSource};

    fn ev(id: &str, dk: &str, ty: EventType, t: i64) -> Event {
        Event {
            event_id: format!("{:0<32}", id), tenant: "acme".into(), channel: Channel::Email, provider: "ses".into(),
            provider_message_id: "m".into(), provider_event_id: None, provider_event_name: ty.as_str().into(),
            delivery_key: dk.into(), recipient: "a@x.io".into(), broadcast_id: None, sequence_id: None, contact_id: None,
            template_key: None, message_class: None, labels: vec![], metadata: Default::default(), event_type: ty,
            bounce_class: None, occurred_at: t, received_at: t, time_source: TimeSource::Provider, click_url: None,
            user_agent: None, ip: None, error_code: None, error_reason: None, cost: None, raw_topic: "raw".into(),
            raw_partition: 0, raw_offset: 0,
        }
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
        let rows = apply(&store, 0, &events, 1, 0, &BatchConfig::default());
        assert_eq!(rows.events.len(), 3);
        assert_eq!(rows.duplicates, 1);
        assert_eq!(rows.deliveries.len(), 2);
        let day_total: u64 = rows.counters.iter().filter(|c| c.period == "day").map(|c| c.events).sum();
        assert_eq!(day_total, 3);
        let d1 = rows.deliveries.iter().find(|d| d.delivery_key == "d1").unwrap();
        assert_eq!(d1.status, "delivered");
        assert_eq!(d1.version, 1);
        // the same batch again changes nothing
        let again = apply(&store, 0, &events, 2, 0, &BatchConfig::default());
        assert!(again.events.is_empty() && again.counters.is_empty() && again.deliveries.is_empty());
    }
}
