//! The canonical event: one provider report about one recipient.

use crate::money::Money;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// (The default only serves to build empty values; every event names its channel.)
    #[default]
    Email,
    Sms,
    Whatsapp,
    Push,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Queued,
    Sent,
    Delivered,
    Deferred,
    Bounced,
    Complained,
    Failed,
    Opened,
    Clicked,
    Unsubscribed,
    Read,
    Replied,
    /// A provider event we have no canonical name for; `provider_event_name` keeps the original.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BounceClass {
    Hard,
    Soft,
    Undetermined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageClass {
    Marketing,
    Transactional,
}

/// Where `occurred_at` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeSource {
    Provider,
    Received,
}

macro_rules! symbols {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            /// Symbols in Avro order; the position is the Avro enum index.
            pub const SYMBOLS: &'static [&'static str] = &[$($s),*];
            pub const VALUES: &'static [$t] = &[$(<$t>::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
            pub fn index(self) -> u32 {
                Self::VALUES.iter().position(|v| *v == self).unwrap_or(0) as u32
            }
            pub fn parse(s: &str) -> Option<Self> {
                Self::VALUES.iter().copied().find(|v| v.as_str() == s)
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

symbols!(Channel { Email = "email", Sms = "sms", Whatsapp = "whatsapp", Push = "push" });
symbols!(EventType {
    Queued = "queued", Sent = "sent", Delivered = "delivered", Deferred = "deferred",
    Bounced = "bounced", Complained = "complained", Failed = "failed", Opened = "opened",
    Clicked = "clicked", Unsubscribed = "unsubscribed", Read = "read", Replied = "replied",
    Unknown = "unknown",
});
symbols!(BounceClass { Hard = "hard", Soft = "soft", Undetermined = "undetermined" });
symbols!(MessageClass { Marketing = "marketing", Transactional = "transactional" });
symbols!(TimeSource { Provider = "provider", Received = "received" });
symbols!(Origin { Provider = "provider", SendRecord = "send_record", AppEvent = "app_event" });

/// Who reported an event. A send record's attribution outranks a provider's tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The provider's own report (webhook, push result).
    #[default]
    Provider,
    /// The sender's send record (`POST /v1/sends`).
    SendRecord,
    /// The sender's app-side event (`POST /v1/events`).
    AppEvent,
}

/// One canonical event. Field names are the Avro field names (`avro/event.avsc`).
///
/// Its text is `S`: owned (`String`, the default: what the normalizer builds and encodes) or
/// [`EventRef`]'s `&str`, borrowed from the record's bytes (`avro::decode_event_ref`: the
/// aggregator reads a batch without a string allocation per field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "S: Serialize", deserialize = "S: Deserialize<'de> + Ord"))]
pub struct Event<S = String> {
    pub event_id: S,
    pub tenant: S,
    pub channel: Channel,
    pub provider: S,
    pub provider_message_id: S,
    pub provider_event_id: Option<S>,
    pub provider_event_name: S,
    pub delivery_key: S,
    pub recipient: S,
    pub broadcast_id: Option<S>,
    pub sequence_id: Option<S>,
    pub contact_id: Option<S>,
    pub template_key: Option<S>,
    pub message_class: Option<MessageClass>,
    pub labels: Vec<S>,
    pub metadata: BTreeMap<S, S>,
    pub event_type: EventType,
    pub bounce_class: Option<BounceClass>,
    /// UTC milliseconds since the epoch.
    #[serde(with = "rfc3339_millis")]
    pub occurred_at: i64,
    #[serde(with = "rfc3339_millis")]
    pub received_at: i64,
    pub time_source: TimeSource,
    pub click_url: Option<S>,
    pub user_agent: Option<S>,
    pub ip: Option<S>,
    pub error_code: Option<S>,
    pub error_reason: Option<S>,
    pub cost: Option<Money>,
    pub raw_topic: S,
    pub raw_partition: i32,
    pub raw_offset: i64,
    /// Who reported it (the Avro field is nullable only for events written before it existed).
    #[serde(default)]
    pub origin: Origin,
}

/// An event whose text borrows from the bytes it was decoded from: 416 bytes, where with
/// `Cow<str>` text it was 560 (a pipeline unit holds up to 20,000 of them, BENCHMARKS.md §1b).
/// A record written with an older schema is first rewritten in the current one
/// ([`crate::avro::upgrade_event`]), so there is always something to borrow from.
pub type EventRef<'a> = Event<&'a str>;

/// Every field of an event, with its text mapped by `$f` (one list, so the conversions below
/// cannot miss a field the struct gains).
macro_rules! map_text {
    ($e:expr, $f:expr) => {{
        let e = $e;
        let mut f = $f;
        Event {
            event_id: f(&e.event_id),
            tenant: f(&e.tenant),
            channel: e.channel,
            provider: f(&e.provider),
            provider_message_id: f(&e.provider_message_id),
            provider_event_id: e.provider_event_id.as_deref().map(&mut f),
            provider_event_name: f(&e.provider_event_name),
            delivery_key: f(&e.delivery_key),
            recipient: f(&e.recipient),
            broadcast_id: e.broadcast_id.as_deref().map(&mut f),
            sequence_id: e.sequence_id.as_deref().map(&mut f),
            contact_id: e.contact_id.as_deref().map(&mut f),
            template_key: e.template_key.as_deref().map(&mut f),
            message_class: e.message_class,
            labels: e.labels.iter().map(|l| f(l)).collect(),
            metadata: e.metadata.iter().map(|(k, v)| (f(k), f(v))).collect(),
            event_type: e.event_type,
            bounce_class: e.bounce_class,
            occurred_at: e.occurred_at,
            received_at: e.received_at,
            time_source: e.time_source,
            click_url: e.click_url.as_deref().map(&mut f),
            user_agent: e.user_agent.as_deref().map(&mut f),
            ip: e.ip.as_deref().map(&mut f),
            error_code: e.error_code.as_deref().map(&mut f),
            error_reason: e.error_reason.as_deref().map(&mut f),
            cost: e.cost.clone(),
            raw_topic: f(&e.raw_topic),
            raw_partition: e.raw_partition,
            raw_offset: e.raw_offset,
            origin: e.origin,
        }
    }};
}

impl Event {
    /// This event as an [`EventRef`] borrowing all its text.
    pub fn as_event_ref(&self) -> EventRef<'_> {
        fn b(s: &str) -> &str {
            s
        }
        map_text!(self, b)
    }

    /// This event as an [`EventRef`] whose text lives for the rest of the process (tests and
    /// benchmarks build events so; leaked, never freed).
    #[cfg(any(test, feature = "testkit"))]
    pub fn leak(&self) -> EventRef<'static> {
        fn l(s: &str) -> &'static str {
            crate::testkit::leak(s)
        }
        map_text!(self, l)
    }
}

impl EventRef<'_> {
    /// An owned copy.
    pub fn to_owned_event(&self) -> Event {
        fn o(s: &str) -> String {
            s.to_owned()
        }
        map_text!(self, o)
    }
}

/// Attribution a sender may attach to a message (send records, custom args, tags).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub broadcast_id: Option<String>,
    pub sequence_id: Option<String>,
    pub contact_id: Option<String>,
    pub template_key: Option<String>,
    pub message_class: Option<MessageClass>,
    pub labels: Vec<String>,
    pub metadata: BTreeMap<String, String>,
}

/// Timestamps on the JSON side are RFC 3339 UTC with milliseconds.
pub mod rfc3339_millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(ms: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_else(|| ms.to_string())
    }

    /// Parses RFC 3339 (any offset) into UTC milliseconds.
    pub fn parse(s: &str) -> Option<i64> {
        DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
    }

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s}")))
    }
}
