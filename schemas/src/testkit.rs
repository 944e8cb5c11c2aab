//! Test support (feature `testkit`): a canonical event with every optional field empty, for
//! tests and benchmarks in other crates to fill in, so no test repeats the whole struct.

use crate::{Channel, Event, EventType, TimeSource};

/// An email event of tenant `acme` from `ses` (message `m1`, recipient `a@x.io`, raw topic `raw`),
/// named after its type, at `occurred_at` (also its receive time); everything optional empty.
pub fn event(event_id: &str, delivery_key: &str, event_type: EventType, occurred_at: i64) -> Event {
    Event {
        event_id: event_id.into(),
        tenant: "acme".into(),
        channel: Channel::Email,
        provider: "ses".into(),
        provider_message_id: "m1".into(),
        provider_event_id: None,
        provider_event_name: event_type.as_str().into(),
        delivery_key: delivery_key.into(),
        recipient: "a@x.io".into(),
        broadcast_id: None,
        sequence_id: None,
        contact_id: None,
        template_key: None,
        message_class: None,
        labels: Vec::new(),
        metadata: Default::default(),
        event_type,
        bounce_class: None,
        occurred_at,
        received_at: occurred_at,
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
        origin: crate::Origin::Provider,
    }
}

/// `s` as text that lives for the rest of the process, for an [`crate::EventRef`] built in a
/// test (leaked, never freed).
pub fn leak(s: impl Into<String>) -> &'static str {
    Box::leak(s.into().into_boxed_str())
}
