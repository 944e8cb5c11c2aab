//! A synthetic, realistic event stream for the aggregator benchmarks
//! (`benches/state_update.rs`, `examples/state_memory.rs`).
//!
//! Each delivery gets one send record (attribution, cost, labels) and ~5 provider
//! events (~6.1 on average); keys and strings have real lengths: 32-hex delivery
//! keys and event ids, a ~60-char provider message id, a 25-char recipient.
//! Deterministic (xorshift), so every run measures the same events.

#![allow(dead_code)] // each target uses a part

pub mod cpu_time;

use rust_decimal::Decimal;
use schemas::ids::{delivery_key, event_id, EventSource};
use schemas::{BounceClass, Channel, Event, EventType, MessageClass, Money, TimeSource};
use std::collections::BTreeMap;

/// xorshift64: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const TENANTS: [&str; 4] = ["acme", "globex-corp", "initech", "umbrella-health"];
const EMAIL_PROVIDERS: [&str; 4] = ["ses", "sendgrid", "postmark", "mailgun"];
/// 2026-01-01T00:00:00Z; events spread over the 90 days after it.
const T0: i64 = 1_767_225_600_000;

use EventType::*;

/// Paths of one delivery after its send record (`queued`), with weights; mean length ~6.1 with it.
const EMAIL_PATHS: &[(u64, &[EventType])] = &[
    (2, &[Sent, Delivered, Opened, Opened, Clicked, Opened]),
    (3, &[Sent, Delivered, Opened, Opened, Clicked]),
    (2, &[Sent, Deferred, Delivered, Opened, Opened]),
    (1, &[Sent, Delivered, Opened, Complained, Opened]),
    (1, &[Sent, Deferred, Bounced, Deferred, Bounced]),
    (1, &[Sent, Delivered, Opened, Unsubscribed]),
];

/// The events of delivery number `d`, in the order they happened, sent at a random time in
/// the 90 days after 2026-01-01.
pub fn delivery_events(rng: &mut Rng, d: usize) -> Vec<Event> {
    delivery_events_sent(rng, d, |rng| T0 + rng.below(90 * 86_400_000) as i64)
}

/// The events of delivery number `d`, in the order they happened, sent at `sent(rng)`; each
/// later event 1 s to 1 h after the one before it.
pub fn delivery_events_sent(rng: &mut Rng, d: usize, sent: impl FnOnce(&mut Rng) -> i64) -> Vec<Event> {
    let tenant = TENANTS[d % TENANTS.len()];
    let channel = match rng.below(20) {
        0..=15 => Channel::Email,
        16..=18 => Channel::Sms,
        _ => Channel::Whatsapp,
    };
    let provider = match channel {
        Channel::Email => EMAIL_PROVIDERS[rng.below(4) as usize],
        _ => "twilio",
    };
    // SES-like message id: 60 characters
    let msg = format!(
        "0100018f{:08x}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}-000000",
        d as u32,
        rng.next() as u32,
        rng.next() as u16,
        rng.next() as u16,
        rng.next() as u16,
        rng.next() & 0xffff_ffff_ffff
    );
    let rcpt = match channel {
        Channel::Email => format!("u{:07}@example-mail.com", d % 10_000_000), // 25 chars
        _ => format!("+1415{:07}", d % 10_000_000),
    };
    let dk = delivery_key(tenant, provider, &msg, &rcpt);
    let mut pick = rng.below(EMAIL_PATHS.iter().map(|p| p.0).sum());
    let mut path: &[EventType] = EMAIL_PATHS[0].1;
    for (w, p) in EMAIL_PATHS {
        if pick < *w {
            path = p;
            break;
        }
        pick -= w;
    }
    let start = sent(rng);
    let broadcast = format!("bc-2026-{:04}", d % 97);
    let mut out = Vec::with_capacity(path.len() + 1);
    let mut t = start;
    for (i, ty) in std::iter::once(Queued).chain(path.iter().copied()).enumerate() {
        // SMS and WhatsApp have no opens/clicks: WhatsApp reads, SMS stops at delivered
        let ty = match (channel, ty) {
            (Channel::Whatsapp, Opened | Clicked) => Read,
            (Channel::Sms, Opened | Clicked | Complained | Unsubscribed) => Delivered,
            _ => ty,
        };
        let is_record = ty == Queued;
        let bounce = (ty == Bounced).then_some(if i < 4 { BounceClass::Soft } else { BounceClass::Hard });
        let pe_id = format!("{msg}-{i}");
        let name = if is_record { "send_record".to_string() } else { ty.as_str().to_string() };
        let mut metadata = BTreeMap::new();
        if is_record {
            metadata.insert("campaign".to_string(), "spring-sale".to_string());
        }
        out.push(Event {
            event_id: event_id(tenant, provider, EventSource::ProviderEventId(&pe_id), &name, &rcpt),
            tenant: tenant.into(),
            channel,
            provider: provider.into(),
            provider_message_id: msg.clone(),
            provider_event_id: Some(pe_id),
            provider_event_name: name,
            delivery_key: dk.clone(),
            recipient: rcpt.clone(),
            broadcast_id: (is_record || rng.below(2) == 0).then(|| broadcast.clone()),
            sequence_id: None,
            contact_id: is_record.then(|| format!("contact-{d}")),
            template_key: is_record.then(|| "welcome-v3".to_string()),
            message_class: is_record.then_some(MessageClass::Marketing),
            labels: if is_record { vec!["newsletter".into()] } else { vec![] },
            metadata,
            event_type: ty,
            bounce_class: bounce,
            occurred_at: t,
            received_at: t + 1_500,
            time_source: TimeSource::Provider,
            click_url: (ty == Clicked).then(|| "https://example.com/spring?utm_source=newsletter".to_string()),
            user_agent: matches!(ty, Opened | Clicked).then(|| "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)".to_string()),
            ip: matches!(ty, Opened | Clicked).then(|| "203.0.113.7".to_string()),
            error_code: (ty == Bounced).then(|| "5.1.1".to_string()),
            error_reason: (ty == Bounced).then(|| "smtp; 550 5.1.1 user unknown".to_string()),
            cost: is_record.then(|| Money::new(Decimal::new(75, 5), "USD")),
            raw_topic: "sendtrace.raw.v1".into(),
            raw_partition: (d % 12) as i32,
            raw_offset: (d * 8 + i) as i64,
            origin: if is_record { schemas::Origin::SendRecord } else { schemas::Origin::Provider },
        });
        t += 1_000 + rng.below(3_600_000) as i64;
    }
    out
}

/// `deliveries` deliveries' events, shuffled (events of one delivery arrive among
/// many others, as on the events topic), each with its offset.
pub fn stream(seed: u64, deliveries: usize) -> Vec<(i64, Event)> {
    let mut rng = Rng::new(seed);
    let mut events: Vec<Event> = (0..deliveries).flat_map(|d| delivery_events(&mut rng, d)).collect();
    for i in (1..events.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        events.swap(i, j);
    }
    events.into_iter().enumerate().map(|(o, e)| (o as i64, e)).collect()
}

/// 2026-03-10T02:00:00Z: a campaign's first send.
const CAMPAIGN_T0: i64 = 1_773_108_000_000;
/// How far out of order a provider reports events (on top of their own order).
const REORDER_MS: u64 = 300_000;

/// A campaign as a live events topic carries it: `deliveries` deliveries sent within one hour,
/// their events (~6.1 each) happening over the next hours, in the order they were received,
/// each up to 5 minutes out of place. Unlike [`stream`] (the same deliveries' events shuffled
/// over 90 days: a batch of it spans all 90), a batch spans minutes of one day, as live
/// traffic's and a catch-up's batches do (a topic is read in the order it was written), while
/// the deliveries a batch touches are still spread over all of them (all are in flight at
/// once). Each with its offset.
pub fn campaign(seed: u64, deliveries: usize) -> Vec<(i64, Event)> {
    let mut rng = Rng::new(seed);
    let mut events: Vec<(i64, Event)> = Vec::new();
    for d in 0..deliveries {
        for e in delivery_events_sent(&mut rng, d, |rng| CAMPAIGN_T0 + rng.below(3_600_000) as i64) {
            events.push((e.received_at + rng.below(REORDER_MS) as i64, e));
        }
    }
    events.sort_by_key(|(arrival, e)| (*arrival, e.received_at));
    events.into_iter().enumerate().map(|(o, (_, e))| (o as i64, e)).collect()
}
