//! A generated event stream with its brute-force truth, for exactness tests:
//! many deliveries, events in shuffled order, duplicates (the same event twice),
//! and send records arriving after provider events. A quarter of the recipients get
//! two deliveries, spelled in another case the second time, and some opens come from
//! scanners and Apple's privacy proxy (machine opens), for the unique-recipient counts.

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schemas::{BounceClass, Event, EventType, MessageClass, Money};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// (period, bucket start `YYYY-MM-DD`, channel, provider, event type, machine, broadcast id).
pub type UniqueKey = (String, String, String, String, String, String, String);

pub struct Stream {
    /// In the order they are produced (duplicates included).
    pub events: Vec<Event>,
}

/// xorshift: deterministic, no dependency.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

pub fn event(tenant: &str, msg: &str, rcpt: &str, ty: EventType, bounce: Option<BounceClass>, t: i64, n: usize) -> Event {
    let provider = "ses";
    let record = ty == EventType::Queued;
    Event {
        tenant: tenant.into(),
        provider: provider.into(),
        provider_message_id: msg.into(),
        provider_event_id: Some(format!("{msg}-{n}")),
        provider_event_name: if record { "send_record".into() } else { ty.as_str().into() },
        origin: if record { schemas::Origin::SendRecord } else { schemas::Origin::Provider },
        recipient: rcpt.into(),
        broadcast_id: record.then(|| format!("b{}", n % 3)),
        message_class: record.then_some(MessageClass::Marketing),
        bounce_class: bounce,
        cost: record.then(|| Money::new(rust_decimal::Decimal::new(75, 4), "USD")),
        raw_topic: "generated".into(),
        raw_offset: n as i64,
        ..schemas::testkit::event(
            &schemas::ids::event_id(tenant, provider, schemas::ids::EventSource::ProviderEventId(&format!("{msg}-{n}")), ty.as_str(), rcpt),
            &schemas::ids::delivery_key(tenant, provider, msg, rcpt),
            ty,
            t,
        )
    }
}

/// `deliveries` deliveries over the last few days, ~6 events each, shuffled, 10 % duplicated.
pub fn stream(seed: u64, deliveries: usize) -> Stream {
    let mut rng = Rng::new(seed);
    let now = chrono::Utc::now().timestamp_millis();
    let mut events = Vec::new();
    let mut n = 0;
    // a quarter of the people get a second delivery, addressed as `User..@Example.COM`
    let people = (deliveries * 3 / 4).max(1);
    for d in 0..deliveries {
        let msg = format!("gen-{seed}-{d}");
        let person = d % people;
        let rcpt = if d < people { format!("user{person}@example.com") } else { format!("User{person}@Example.COM") };
        let start = now - (rng.below(5 * 86_400_000) as i64) - 3_600_000;
        let mut path = vec![EventType::Queued, EventType::Sent, EventType::Delivered];
        match rng.below(6) {
            0 => path = vec![EventType::Queued, EventType::Sent, EventType::Bounced],
            1 => path.extend([EventType::Opened, EventType::Opened, EventType::Clicked]),
            2 => path.extend([EventType::Opened, EventType::Complained]),
            3 => path.extend([EventType::Deferred]),
            4 => path.extend([EventType::Opened, EventType::Unsubscribed]),
            _ => {}
        }
        let opens_before_click = path.contains(&EventType::Clicked);
        let mut first_open = true;
        for (i, ty) in path.iter().enumerate() {
            let bounce = (*ty == EventType::Bounced).then(|| if rng.below(3) == 0 { BounceClass::Soft } else { BounceClass::Hard });
            let mut e = event("acme", &msg, &rcpt, *ty, bounce, start + i as i64 * 60_000, n);
            // machine opens (they move no status): a link scanner's first open before a human open
            // and click; every other unsubscriber's open is an Apple privacy proxy prefetch
            if *ty == EventType::Opened && first_open {
                first_open = false;
                if opens_before_click {
                    e.user_agent = Some("Mozilla/5.0 (compatible; Barracuda Sentinel)".into());
                } else if path.contains(&EventType::Unsubscribed) && d % 2 == 0 {
                    e.user_agent = Some("Mozilla/5.0".into());
                    e.ip = Some("17.58.1.2".into());
                }
            }
            events.push(e);
            n += 1;
        }
    }
    // shuffle: late and out-of-order arrivals, send records after provider events
    for i in (1..events.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        events.swap(i, j);
    }
    // duplicates: redeliveries of the same events
    let dups: Vec<Event> = (0..events.len() / 10).map(|_| events[rng.below(events.len() as u64) as usize].clone()).collect();
    for e in dups {
        let at = rng.below(events.len() as u64) as usize;
        events.insert(at, e);
    }
    Stream { events }
}

impl Stream {
    /// Machine reason (`""` for people) of each distinct event, as the aggregator classifies it
    /// (events of a delivery are at least a minute apart, so arrival order does not matter).
    pub fn machine_reasons(&self) -> BTreeMap<String, &'static str> {
        let distinct = self.distinct();
        let mut delivered: BTreeMap<&str, i64> = BTreeMap::new();
        for e in distinct.values().filter(|e| e.event_type == EventType::Delivered) {
            let t = delivered.entry(e.delivery_key.as_str()).or_insert(e.occurred_at);
            *t = (*t).min(e.occurred_at);
        }
        distinct
            .values()
            .map(|e| {
                let m = aggregator::machine::classify(&e.as_event_ref(), delivered.get(e.delivery_key.as_str()).copied(), aggregator::machine::DEFAULT_SCANNER_WINDOW_SECS);
                (e.event_id.clone(), m.map(|r| r.as_str()).unwrap_or(""))
            })
            .collect()
    }

    /// Whether each distinct event is a machine open or click ([`Stream::machine_reasons`]).
    pub fn is_machine(&self) -> BTreeMap<String, bool> {
        self.machine_reasons().into_iter().map(|(id, r)| (id, !r.is_empty())).collect()
    }

    /// Distinct events, by id.
    pub fn distinct(&self) -> BTreeMap<String, &Event> {
        self.events.iter().map(|e| (e.event_id.clone(), e)).collect()
    }

    /// Expected status per delivery key: the highest-ranked distinct event (the README rule).
    pub fn expected_status(&self) -> BTreeMap<String, String> {
        let mut best: BTreeMap<String, (u8, EventType)> = BTreeMap::new();
        for e in self.distinct().values() {
            let r = aggregator::rules::rank(e.event_type, e.bounce_class);
            let cur = best.entry(e.delivery_key.clone()).or_insert((0, EventType::Unknown));
            if r > cur.0 {
                *cur = (r, e.event_type);
            }
        }
        best.into_iter().map(|(k, (_, t))| (k, t.as_str().to_string())).collect()
    }

    /// Expected day counters: (day, event_type, bounce_class) → count, days in `tz`.
    pub fn expected_day_counts(&self, tz: chrono_tz::Tz) -> BTreeSet<(String, String, String, u64)> {
        use chrono::TimeZone;
        let mut m: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        for e in self.distinct().values() {
            let utc = chrono::DateTime::from_timestamp_millis(e.occurred_at).unwrap_or_default();
            let day = tz.from_utc_datetime(&utc.naive_utc()).date_naive().to_string();
            *m.entry((day, e.event_type.as_str().into(), e.bounce_class.map(|b| b.as_str()).unwrap_or_default().into())).or_default() += 1;
        }
        m.into_iter().map(|((a, b, c), n)| (a, b, c, n)).collect()
    }

    /// Expected `attributed_counters` by day (UTC): (day, broadcast, event_type) → count, each
    /// event under its delivery's send record's broadcast ('' without one), whatever the order.
    pub fn expected_attributed_day_counts(&self) -> BTreeSet<(String, String, String, u64)> {
        let distinct = self.distinct();
        let broadcast: BTreeMap<&str, &str> = distinct
            .values()
            .filter_map(|e| Some((e.delivery_key.as_str(), e.broadcast_id.as_deref().filter(|_| e.provider_event_name == "send_record")?)))
            .collect();
        let mut m: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        for e in distinct.values() {
            let day = chrono::DateTime::from_timestamp_millis(e.occurred_at).unwrap_or_default().date_naive().to_string();
            let b = broadcast.get(e.delivery_key.as_str()).copied().unwrap_or_default();
            *m.entry((day, b.to_string(), e.event_type.as_str().to_string())).or_default() += 1;
        }
        m.into_iter().map(|((a, b, c), n)| (a, b, c, n)).collect()
    }

    /// Expected unique recipients, brute force: for each key (period, bucket start, channel,
    /// provider, event type, machine, broadcast id) the set of ASCII lower-cased recipients of the
    /// distinct events. Periods and bucket starts come from `aggregator::buckets` (what counters
    /// use) for `zone`; machine reasons from `aggregator::machine::classify`, given the delivery's
    /// delivery time (events of a delivery are a minute apart, so the `too_fast` rule never
    /// applies and arrival order does not matter); the broadcast is the delivery's send record's
    /// ('' without one), as the event rows end up attributed.
    pub fn expected_unique_recipients(&self, zone: &str) -> BTreeMap<UniqueKey, BTreeSet<String>> {
        let periods = aggregator::buckets::Periods::new(zone).expect("a valid zone");
        let distinct = self.distinct();
        let mut delivered: BTreeMap<&str, i64> = BTreeMap::new();
        for e in distinct.values().filter(|e| e.event_type == EventType::Delivered) {
            let t = delivered.entry(e.delivery_key.as_str()).or_insert(e.occurred_at);
            *t = (*t).min(e.occurred_at);
        }
        let broadcast: BTreeMap<&str, &str> = distinct
            .values()
            .filter_map(|e| Some((e.delivery_key.as_str(), e.broadcast_id.as_deref().filter(|_| e.provider_event_name == "send_record")?)))
            .collect();
        let mut m: BTreeMap<UniqueKey, BTreeSet<String>> = BTreeMap::new();
        for e in distinct.values() {
            let machine = aggregator::machine::classify(&e.as_event_ref(), delivered.get(e.delivery_key.as_str()).copied(), aggregator::machine::DEFAULT_SCANNER_WINDOW_SECS)
                .map(|r| r.as_str())
                .unwrap_or_default();
            for (period, start) in periods.buckets(e.occurred_at) {
                let key = (
                    period.to_string(),
                    start.to_string(),
                    e.channel.as_str().to_string(),
                    e.provider.clone(),
                    e.event_type.as_str().to_string(),
                    machine.to_string(),
                    broadcast.get(e.delivery_key.as_str()).copied().unwrap_or_default().to_string(),
                );
                m.entry(key).or_default().insert(e.recipient.to_ascii_lowercase());
            }
        }
        m
    }

    /// Produces every event (Avro, keyed by delivery) and waits for all acknowledgements.
    pub async fn produce(&self, brokers: &str, topic: &str, range: std::ops::Range<usize>) {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        let mut pending = Vec::new();
        for e in &self.events[range] {
            let payload = schemas::avro::encode_event(e).expect("encode");
            let key = e.delivery_key.clone();
            let p = producer.clone();
            let topic = topic.to_string();
            pending.push(tokio::spawn(async move {
                p.send(FutureRecord::to(&topic).key(&key).payload(&payload), Duration::from_secs(30)).await.map(|_| ()).map_err(|(e, _)| e)
            }));
        }
        for h in pending {
            h.await.expect("task").expect("produced");
        }
    }
}
