//! Per-delivery state, held in a `DashMap` and rebuilt from ClickHouse on demand.
//!
//! Applying an event is idempotent (an event id already seen is ignored) and
//! order-independent (status is a maximum by rank, times are minima/maxima,
//! counts follow distinct events), so replays and late events converge.

use crate::machine::MachineReason;
use crate::rules;
use dashmap::DashMap;
use schemas::{BounceClass, Channel, Event, EventType};

/// Attribution value with the priority of its source: send records (2) beat
/// provider tags (1); equal priorities keep the smaller value, so order does not matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributed(pub Option<(u8, String)>);

impl Attributed {
    fn offer(&mut self, prio: u8, value: Option<&String>) {
        let Some(v) = value else { return };
        let better = match &self.0 {
            None => true,
            Some((p, cur)) => prio > *p || (prio == *p && v < cur),
        };
        if better {
            self.0 = Some((prio, v.clone()));
        }
    }
    pub fn value(&self) -> Option<String> {
        self.0.as_ref().map(|(_, v)| v.clone())
    }
}

const N_TYPES: usize = EventType::VALUES.len();

/// One time per event type, `i64::MIN` for none: half the size of `[Option<i64>; N]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times([i64; N_TYPES]);

impl Default for Times {
    fn default() -> Self {
        Times([i64::MIN; N_TYPES])
    }
}

impl Times {
    pub fn get(&self, i: usize) -> Option<i64> {
        self.0.get(i).copied().filter(|t| *t != i64::MIN)
    }
    pub fn set(&mut self, i: usize, t: Option<i64>) {
        if let Some(slot) = self.0.get_mut(i) {
            *slot = t.unwrap_or(i64::MIN);
        }
    }
    /// Keeps the earlier of the stored time and `t`.
    pub fn lower(&mut self, i: usize, t: i64) {
        let cur = self.get(i);
        self.set(i, Some(cur.map_or(t, |c| c.min(t))));
    }
    /// Keeps the later of the stored time and `t`.
    pub fn raise(&mut self, i: usize, t: i64) {
        let cur = self.get(i);
        self.set(i, Some(cur.map_or(t, |c| c.max(t))));
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryState {
    pub tenant: String,
    /// (The delivery key is the map key; it is not repeated here.)
    pub channel: Channel,
    pub provider: String,
    pub provider_message_id: String,
    pub recipient: String,
    pub broadcast_id: Attributed,
    pub sequence_id: Attributed,
    pub contact_id: Attributed,
    pub template_key: Attributed,
    pub message_class: Attributed,
    pub labels: Vec<String>,
    pub status: Option<EventType>,
    pub status_rank: u8,
    pub bounce_class: Option<BounceClass>,
    /// First and last occurrence per event type (index = `EventType::index`).
    pub first_at: Times,
    pub last_at: Times,
    pub open_count: u32,
    pub click_count: u32,
    /// Opens and clicks fired by proxies or scanners (see `machine`): counted apart.
    pub machine_open_count: u32,
    pub machine_click_count: u32,
    pub soft_bounce_count: u32,
    pub deferral_count: u32,
    pub event_count: u32,
    /// (occurred_at, reason) of the latest error; ties keep the greater reason.
    pub last_error: Option<(i64, String)>,
    /// Cost mantissa at scale 10, and its unit.
    pub cost: Option<(i128, String)>,
    /// Hashes of applied event ids (sorted): a replayed event is a no-op.
    pub seen: Vec<u64>,
    /// Offset (events topic) of the latest applied event: the row version.
    pub version: u64,
    /// Batch sequence number of the last use, for eviction.
    pub touched: u64,
}

/// 64 bits of the event id (itself a SHA-256 prefix in hex).
pub fn event_hash(event_id: &str) -> u64 {
    u64::from_str_radix(event_id.get(..16).unwrap_or(event_id), 16).unwrap_or_else(|_| {
        // Not hex (foreign producer): FNV-1a of the bytes.
        event_id.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
    })
}

fn bounce_order(b: BounceClass) -> u8 {
    match b {
        BounceClass::Undetermined => 0,
        BounceClass::Soft => 1,
        BounceClass::Hard => 2,
    }
}

impl DeliveryState {
    pub fn new(e: &Event) -> Self {
        DeliveryState {
            tenant: e.tenant.clone(),
            channel: e.channel,
            provider: e.provider.clone(),
            provider_message_id: e.provider_message_id.clone(),
            recipient: e.recipient.to_ascii_lowercase(),
            ..Default::default()
        }
    }

    /// Applies `e` (read at `offset` of the events topic); `machine` says whether it is a
    /// machine open/click. Returns false if the event was already applied.
    pub fn apply(&mut self, e: &Event, offset: u64, machine: Option<MachineReason>) -> bool {
        let h = event_hash(&e.event_id);
        match self.seen.binary_search(&h) {
            Ok(_) => return false,
            Err(pos) => self.seen.insert(pos, h),
        }
        self.version = self.version.max(offset);
        self.event_count += 1;
        if machine.is_some() {
            // kept and counted, but no engagement: no status, no times, no human counts
            match e.event_type {
                EventType::Clicked => self.machine_click_count += 1,
                _ => self.machine_open_count += 1,
            }
            return true;
        }
        let t = e.occurred_at;
        let mut mark = |ty: EventType| {
            let i = ty.index() as usize;
            self.first_at.lower(i, t);
            self.last_at.raise(i, t);
        };
        mark(e.event_type);
        for implied in rules::implied_milestones(e.event_type) {
            mark(*implied);
        }
        let (status, rank) = rules::next_status(self.status, self.status_rank, e.event_type, e.bounce_class);
        self.status = status;
        self.status_rank = rank;
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
        if let Some(reason) = e.error_reason.as_ref().or(e.error_code.as_ref()) {
            let cand = (t, reason.clone());
            if self.last_error.as_ref().is_none_or(|cur| &cand > cur) {
                self.last_error = Some(cand);
            }
        }
        if let Some(c) = &e.cost {
            match &mut self.cost {
                None => self.cost = Some((c.mantissa_at_scale(), c.unit.clone())),
                Some((amount, unit)) if *unit == c.unit => *amount += c.mantissa_at_scale(),
                Some(_) => {} // a second currency on one delivery is not summed (documented)
            }
        }
        let prio = if e.provider_event_name == "send_record" { 2 } else { 1 };
        self.broadcast_id.offer(prio, e.broadcast_id.as_ref());
        self.sequence_id.offer(prio, e.sequence_id.as_ref());
        self.contact_id.offer(prio, e.contact_id.as_ref());
        self.template_key.offer(prio, e.template_key.as_ref());
        self.message_class.offer(prio, e.message_class.map(|m| m.as_str().to_string()).as_ref());
        for l in &e.labels {
            if let Err(pos) = self.labels.binary_search(l) {
                self.labels.insert(pos, l.clone());
            }
        }
        true
    }

    pub fn first(&self, t: EventType) -> Option<i64> {
        self.first_at.get(t.index() as usize)
    }
    pub fn last(&self, t: EventType) -> Option<i64> {
        self.last_at.get(t.index() as usize)
    }
}

/// All deliveries this process holds, bounded by `max_deliveries`.
pub struct StateStore {
    pub map: DashMap<String, DeliveryState>,
    pub max_deliveries: usize,
}

impl StateStore {
    pub fn new(max_deliveries: usize) -> Self {
        StateStore { map: DashMap::new(), max_deliveries }
    }

    /// Drops the least recently touched deliveries (not touched in batch `current`) above the bound.
    /// They are safe to drop: every applied change is already in ClickHouse.
    pub fn evict(&self, current: u64) -> usize {
        let len = self.map.len();
        if len <= self.max_deliveries {
            return 0;
        }
        let mut touched: Vec<u64> = self.map.iter().map(|e| e.touched).collect();
        let excess = len - self.max_deliveries * 9 / 10;
        touched.sort_unstable();
        let cutoff = touched.get(excess.saturating_sub(1)).copied().unwrap_or(0).min(current.saturating_sub(1));
        let before = self.map.len();
        self.map.retain(|_, s| s.touched > cutoff);
        before - self.map.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use schemas::{Channel, TimeSource};

    pub(crate) fn event(id: &str, ty: EventType, bounce: Option<BounceClass>, t: i64) -> Event {
        Event {
            event_id: format!("{:0<32}", id),
            tenant: "acme".into(),
            channel: Channel::Email,
            provider: "ses".into(),
            provider_message_id: "m1".into(),
            provider_event_id: None,
            provider_event_name: ty.as_str().into(),
            delivery_key: "dk".into(),
            recipient: "a@x.io".into(),
            broadcast_id: None,
            sequence_id: None,
            contact_id: None,
            template_key: None,
            message_class: None,
            labels: vec![],
            metadata: Default::default(),
            event_type: ty,
            bounce_class: bounce,
            occurred_at: t,
            received_at: t,
            time_source: TimeSource::Provider,
            click_url: None,
            user_agent: None,
            ip: None,
            error_code: None,
            error_reason: None,
            cost: None,
            raw_topic: "raw".into(),
            raw_partition: 0,
            raw_offset: 0,
        }
    }

    #[test]
    fn replayed_event_is_a_no_op() {
        let e = event("1", EventType::Opened, None, 10);
        let mut s = DeliveryState::new(&e);
        assert!(s.apply(&e, 1, None));
        assert!(!s.apply(&e, 2, None));
        assert_eq!(s.open_count, 1);
        assert_eq!(s.event_count, 1);
    }

    #[test]
    fn out_of_order_delivered_after_opened_keeps_opened() {
        let mut s = DeliveryState::new(&event("1", EventType::Sent, None, 1));
        s.apply(&event("1", EventType::Sent, None, 1), 1, None);
        s.apply(&event("3", EventType::Opened, None, 30), 2, None);
        s.apply(&event("2", EventType::Delivered, None, 20), 3, None);
        assert_eq!(s.status, Some(EventType::Opened));
        assert_eq!(s.first(EventType::Delivered), Some(20));
    }

    #[test]
    fn read_implies_delivered() {
        let mut s = DeliveryState::new(&event("1", EventType::Read, None, 5));
        s.apply(&event("1", EventType::Read, None, 5), 1, None);
        assert_eq!(s.first(EventType::Delivered), Some(5));
        assert_eq!(s.status, Some(EventType::Read));
    }

    #[test]
    fn send_record_attribution_wins_over_provider_tags() {
        let mut tagged = event("1", EventType::Delivered, None, 5);
        tagged.broadcast_id = Some("from-tag".into());
        let mut record = event("2", EventType::Queued, None, 1);
        record.provider_event_name = "send_record".into();
        record.broadcast_id = Some("from-record".into());
        for order in [[&tagged, &record], [&record, &tagged]] {
            let mut s = DeliveryState::new(order[0]);
            for (i, e) in order.iter().enumerate() {
                s.apply(e, i as u64, None);
            }
            assert_eq!(s.broadcast_id.value().as_deref(), Some("from-record"));
        }
    }

    #[test]
    fn eviction_keeps_recent_deliveries() {
        let store = StateStore::new(10);
        for i in 0..20u64 {
            let mut s = DeliveryState::new(&event("1", EventType::Sent, None, 1));
            s.touched = i;
            store.map.insert(format!("k{i}"), s);
        }
        store.evict(19);
        assert!(store.map.len() <= 10);
        assert!(store.map.contains_key("k19"));
    }

    fn arb_event() -> impl Strategy<Value = (EventType, Option<BounceClass>, i64)> {
        let ty = proptest::sample::select(EventType::VALUES.to_vec());
        let bc = proptest::option::of(proptest::sample::select(vec![BounceClass::Hard, BounceClass::Soft, BounceClass::Undetermined]));
        (ty, bc, 0i64..1_000_000)
    }

    proptest! {
        /// The final row does not depend on arrival order, nor on duplicates.
        #[test]
        fn any_order_and_duplicates_give_the_same_state(evs in proptest::collection::vec(arb_event(), 1..12), seed in any::<u64>()) {
            let events: Vec<Event> = evs.iter().enumerate().map(|(i, (ty, bc, t))| {
                let mut e = event(&format!("{i:x}"), *ty, if *ty == EventType::Bounced { *bc } else { None }, *t);
                e.error_reason = Some(format!("r{}", t % 3));
                e
            }).collect();
            let mut a = DeliveryState::new(&events[0]);
            for e in &events { a.apply(e, 0, None); }
            // a shuffled order with every event twice
            let mut order: Vec<usize> = (0..events.len()).chain(0..events.len()).collect();
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                order.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut b = DeliveryState::new(&events[order[0]]);
            for i in order { b.apply(&events[i], 0, None); }
            prop_assert_eq!(a, b);
        }
    }
}
