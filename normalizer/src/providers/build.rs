//! Turning a provider's parsed report into canonical events: ids, times,
//! attribution and recipient expansion live here once, for every provider.

use super::credentials::NormalizeOptions;
use schemas::event::Attribution;
use schemas::ids::{self, EventSource};
use schemas::{BounceClass, Channel, Event, EventType, MessageClass, Money, RawEnvelope, TimeSource};
use std::collections::BTreeMap;

/// A raw envelope with its Kafka coordinates.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub envelope: &'a RawEnvelope,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Where the event's identity comes from (see [`schemas::ids::event_id`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSource {
    ProviderEventId(String),
    /// The n-th item of the body (for batches without provider event ids).
    BodyItem(usize),
}

/// Everything a provider knows about one report, before recipient expansion.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub channel: Channel,
    pub provider_message_id: String,
    pub provider_event_id: Option<String>,
    pub id_source: IdSource,
    pub provider_event_name: String,
    pub event_type: EventType,
    pub bounce_class: Option<BounceClass>,
    /// The provider's own event time, if it sent one.
    pub occurred_at: Option<i64>,
    pub attribution: Attribution,
    pub click_url: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub cost: Option<Money>,
}

impl EventDraft {
    pub fn new(channel: Channel, provider_message_id: impl Into<String>, name: impl Into<String>, event_type: EventType) -> Self {
        EventDraft {
            channel,
            provider_message_id: provider_message_id.into(),
            provider_event_id: None,
            id_source: IdSource::BodyItem(0),
            provider_event_name: name.into(),
            event_type,
            bounce_class: None,
            occurred_at: None,
            attribution: Attribution::default(),
            click_url: None,
            user_agent: None,
            ip: None,
            error_code: None,
            error_reason: None,
            cost: None,
        }
    }

    /// One event for one recipient.
    pub fn for_recipient(&self, raw: &RawRecord<'_>, recipient: &str) -> Event {
        let env = raw.envelope;
        let source = match &self.id_source {
            IdSource::ProviderEventId(id) => EventSource::ProviderEventId(id),
            IdSource::BodyItem(i) => EventSource::Body { body: &env.body, item: *i },
        };
        let recipient = recipient.trim();
        let (occurred_at, time_source) = match self.occurred_at {
            Some(t) => (t, TimeSource::Provider),
            None => (env.received_at, TimeSource::Received),
        };
        let a = &self.attribution;
        Event {
            event_id: ids::event_id(&env.tenant, &env.provider, source, &self.provider_event_name, recipient),
            delivery_key: ids::delivery_key(&env.tenant, &env.provider, &self.provider_message_id, recipient),
            tenant: env.tenant.clone(),
            channel: self.channel,
            provider: env.provider.clone(),
            provider_message_id: self.provider_message_id.clone(),
            provider_event_id: self.provider_event_id.clone(),
            provider_event_name: self.provider_event_name.clone(),
            recipient: recipient.to_string(),
            broadcast_id: a.broadcast_id.clone(),
            sequence_id: a.sequence_id.clone(),
            contact_id: a.contact_id.clone(),
            template_key: a.template_key.clone(),
            message_class: a.message_class,
            labels: a.labels.clone(),
            metadata: a.metadata.clone(),
            event_type: self.event_type,
            bounce_class: self.bounce_class,
            occurred_at,
            received_at: env.received_at,
            time_source,
            click_url: self.click_url.clone(),
            user_agent: self.user_agent.clone(),
            ip: self.ip.clone(),
            error_code: self.error_code.clone(),
            error_reason: self.error_reason.clone(),
            cost: self.cost.clone(),
            raw_topic: raw.topic.to_string(),
            raw_partition: raw.partition,
            raw_offset: raw.offset,
        }
    }

    /// One event per recipient, in order, skipping blanks.
    pub fn for_recipients<'r>(&self, raw: &RawRecord<'_>, recipients: impl IntoIterator<Item = &'r str>) -> Vec<Event> {
        recipients
            .into_iter()
            .filter(|r| !r.trim().is_empty())
            .map(|r| self.for_recipient(raw, r))
            .collect()
    }
}

/// Splits provider tags (name → values) into attribution by the configured names;
/// every other tag becomes a `name:value` label.
pub fn attribution_from_tags<'a>(
    tags: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>,
    opts: &NormalizeOptions,
) -> Attribution {
    let mut a = Attribution::default();
    for (name, values) in tags {
        let first = values.first().map(|v| v.to_string());
        if name == opts.broadcast_tag {
            a.broadcast_id = first;
        } else if name == opts.sequence_tag {
            a.sequence_id = first;
        } else if name == opts.contact_tag {
            a.contact_id = first;
        } else if name == opts.template_tag {
            a.template_key = first;
        } else if name == opts.message_class_tag {
            a.message_class = first.as_deref().and_then(MessageClass::parse);
        } else {
            for v in values {
                a.labels.push(if v.is_empty() { name.to_string() } else { format!("{name}:{v}") });
            }
        }
    }
    a.labels.sort();
    a.labels.dedup();
    a
}

/// Copies headers with the configured prefix into metadata (prefix stripped, lower-cased name).
pub fn metadata_from_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    opts: &NormalizeOptions,
) -> BTreeMap<String, String> {
    let prefix = opts.metadata_header_prefix.to_ascii_lowercase();
    headers
        .into_iter()
        .filter_map(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            lower.strip_prefix(&prefix).map(|k| (k.to_string(), value.to_string()))
        })
        .collect()
}

/// Parses an RFC 3339 time into UTC milliseconds.
pub fn parse_time(field: &'static str, s: &str) -> Result<i64, super::NormalizeError> {
    schemas::event::rfc3339_millis::parse(s).ok_or_else(|| super::NormalizeError::InvalidField {
        field,
        reason: format!("not an RFC 3339 time: {s}"),
    })
}

/// Strings, numbers and booleans as text; objects, arrays and null give `None`.
pub fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Custom key/value fields (SendGrid custom args, Mailgun user variables, ..): the configured
/// names become attribution, every other scalar goes to metadata. Objects, arrays and null are skipped.
pub fn attribution_from_custom<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
    opts: &NormalizeOptions,
) -> Attribution {
    let vars: Vec<(&str, String)> = fields.into_iter().filter_map(|(k, v)| Some((k, scalar(v)?))).collect();
    let names = [&opts.broadcast_tag, &opts.sequence_tag, &opts.contact_tag, &opts.template_tag, &opts.message_class_tag];
    let (named, rest): (Vec<_>, Vec<_>) = vars.into_iter().partition(|(k, _)| names.iter().any(|n| n.as_str() == *k));
    let mut a = attribution_from_tags(named.iter().map(|(k, v)| (*k, vec![v.as_str()])), opts);
    a.metadata.extend(rest.into_iter().map(|(k, v)| (k.to_string(), v)));
    a
}
