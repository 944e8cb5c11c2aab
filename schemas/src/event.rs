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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    pub tenant: String,
    pub channel: Channel,
    pub provider: String,
    pub provider_message_id: String,
    pub provider_event_id: Option<String>,
    pub provider_event_name: String,
    pub delivery_key: String,
    pub recipient: String,
    pub broadcast_id: Option<String>,
    pub sequence_id: Option<String>,
    pub contact_id: Option<String>,
    pub template_key: Option<String>,
    pub message_class: Option<MessageClass>,
    pub labels: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub event_type: EventType,
    pub bounce_class: Option<BounceClass>,
    /// UTC milliseconds since the epoch.
    #[serde(with = "rfc3339_millis")]
    pub occurred_at: i64,
    #[serde(with = "rfc3339_millis")]
    pub received_at: i64,
    pub time_source: TimeSource,
    pub click_url: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub cost: Option<Money>,
    pub raw_topic: String,
    pub raw_partition: i32,
    pub raw_offset: i64,
    /// Who reported it (the Avro field is nullable only for events written before it existed).
    #[serde(default)]
    pub origin: Origin,
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
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s}")))
    }
}
