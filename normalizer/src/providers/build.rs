//! Turning a provider's parsed report into canonical events: ids, times,
//! attribution and recipient expansion live here once, for every provider.

use super::credentials::NormalizeOptions;
use super::limits::Limits;
use super::NormalizeError;
use schemas::event::Attribution;
use schemas::ids::{self, BodyDigest, EventSource};
use schemas::avro::RawEnvelopeRef;
use schemas::{BounceClass, Channel, Event, EventType, MessageClass, Money, Origin, RawEnvelope, TimeSource};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A raw envelope with its Kafka coordinates. The envelope borrows the stored record's bytes
/// (`schemas::avro::decode_raw_ref`): the body and headers are read in place, never copied
/// (issue 14: copying them was a fifth of the pipeline's decode).
#[derive(Debug, Clone)]
pub struct RawRecord<'a> {
    pub envelope: RawEnvelopeRef<'a>,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The body's digest, computed at most once however many items need it.
    body_digest: std::cell::OnceCell<BodyDigest>,
}

impl<'a> RawRecord<'a> {
    /// A record of an envelope read in place (the pipeline's path).
    pub fn borrowed(envelope: RawEnvelopeRef<'a>, topic: &'a str, partition: i32, offset: i64) -> Self {
        RawRecord { envelope, topic, partition, offset, body_digest: Default::default() }
    }

    /// A record of an owned envelope (`normalizer check`, tests): the same view of it.
    pub fn new(envelope: &'a RawEnvelope, topic: &'a str, partition: i32, offset: i64) -> Self {
        let view = RawEnvelopeRef {
            request_id: &envelope.request_id,
            tenant: &envelope.tenant,
            provider: envelope.provider,
            route: envelope.route.clone(),
            url: &envelope.url,
            content_type: &envelope.content_type,
            received_at: envelope.received_at,
            // a `BTreeMap`: sorted by name, one entry per name, as `RawEnvelopeRef` holds them
            headers: envelope.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            body: &envelope.body,
        };
        RawRecord::borrowed(view, topic, partition, offset)
    }

    /// SHA-256 of the body, for ids of items without a provider event id.
    pub fn body_digest(&self) -> &BodyDigest {
        self.body_digest.get_or_init(|| ids::body_digest(self.envelope.body))
    }
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
    /// Who reports it: the provider (the default), or the sender's send record / app event.
    pub origin: Origin,
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
            origin: Origin::Provider,
        }
    }

    /// Every field this draft shares with all its recipients, against `limits`.
    fn check(&self, limits: &Limits, received_at: i64) -> Result<(), NormalizeError> {
        limits.check_attribution(&self.attribution)?;
        for (what, value, limit) in [
            ("provider message id", Some(self.provider_message_id.as_str()), limits.max_id_bytes),
            ("provider event id", self.provider_event_id.as_deref(), limits.max_id_bytes),
            ("error code", self.error_code.as_deref(), limits.max_id_bytes),
            ("ip", self.ip.as_deref(), limits.max_id_bytes),
            ("provider event name", Some(self.provider_event_name.as_str()), limits.max_text_bytes),
            ("click url", self.click_url.as_deref(), limits.max_text_bytes),
            ("user agent", self.user_agent.as_deref(), limits.max_text_bytes),
            ("error reason", self.error_reason.as_deref(), limits.max_text_bytes),
        ] {
            limits.check_len(what, value, limit)?;
        }
        if let Some(t) = self.occurred_at {
            limits.check_time(t, received_at)?;
        }
        Ok(())
    }

    /// About how many bytes one event of this draft takes (its strings; the recipient apart).
    fn approx_bytes(&self) -> usize {
        let a = &self.attribution;
        let opt = |s: &Option<String>| s.as_deref().map_or(0, str::len);
        256 + self.provider_message_id.len()
            + self.provider_event_name.len()
            + opt(&self.provider_event_id)
            + opt(&self.click_url)
            + opt(&self.user_agent)
            + opt(&self.ip)
            + opt(&self.error_code)
            + opt(&self.error_reason)
            + opt(&a.broadcast_id)
            + opt(&a.sequence_id)
            + opt(&a.contact_id)
            + opt(&a.template_key)
            + a.labels.iter().map(String::len).sum::<usize>()
            + a.metadata.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }

    /// One event for one recipient (unchecked: [`Normalized::push`] checks first).
    fn event(&self, raw: &RawRecord<'_>, recipient: &str) -> Event {
        self.clone().into_event(raw, recipient)
    }

    /// [`EventDraft::event`] that moves the draft's strings into the event instead of copying
    /// them: the last (usually only) recipient's event takes them (issue 14: copying every
    /// string, label and metadata entry of the draft was most of building an event).
    fn into_event(self, raw: &RawRecord<'_>, recipient: &str) -> Event {
        let env = &raw.envelope;
        let source = match &self.id_source {
            IdSource::ProviderEventId(id) => EventSource::ProviderEventId(id),
            IdSource::BodyItem(i) => EventSource::Body { digest: raw.body_digest(), item: *i },
        };
        let event_id = ids::event_id(env.tenant, env.provider.as_str(), source, &self.provider_event_name, recipient);
        let delivery_key = ids::delivery_key(env.tenant, env.provider.as_str(), &self.provider_message_id, recipient);
        let (occurred_at, time_source) = match self.occurred_at {
            Some(t) => (t, TimeSource::Provider),
            None => (env.received_at, TimeSource::Received),
        };
        let a = self.attribution;
        Event {
            event_id,
            delivery_key,
            tenant: env.tenant.to_string(),
            channel: self.channel,
            provider: env.provider.as_str().to_string(),
            provider_message_id: self.provider_message_id,
            provider_event_id: self.provider_event_id,
            provider_event_name: self.provider_event_name,
            recipient: recipient.to_string(),
            broadcast_id: a.broadcast_id,
            sequence_id: a.sequence_id,
            contact_id: a.contact_id,
            template_key: a.template_key,
            message_class: a.message_class,
            labels: a.labels,
            metadata: a.metadata,
            event_type: self.event_type,
            bounce_class: self.bounce_class,
            occurred_at,
            received_at: env.received_at,
            time_source,
            click_url: self.click_url,
            user_agent: self.user_agent,
            ip: self.ip,
            error_code: self.error_code,
            error_reason: self.error_reason,
            cost: self.cost,
            raw_topic: raw.topic.to_string(),
            raw_partition: raw.partition,
            raw_offset: raw.offset,
            origin: self.origin,
        }
    }
}

/// What one raw record yields: its events, and the parts that could not become events.
/// One bad item never spoils its neighbours: it is a [`Rejected`] entry (a dead letter
/// naming its position) and the other items flow.
#[derive(Debug, Default)]
pub struct Normalized {
    pub events: Vec<Event>,
    pub rejected: Vec<Rejected>,
    /// About how many bytes `events` hold (bounded by `max_record_output_bytes`).
    bytes: usize,
}

/// One part of a record that could not become events.
#[derive(Debug)]
pub struct Rejected {
    /// Position of the item in the body (0 when the body is one report).
    pub item: usize,
    pub error: NormalizeError,
}

impl Normalized {
    /// Expands item `item`'s draft into one event per recipient (blanks skipped, trimmed),
    /// within `opts.limits`, checked before anything is copied: a draft beyond a bound, or
    /// one that would take the record past `max_events_per_record` or
    /// `max_record_output_bytes`, is rejected whole; a recipient beyond its bound alone.
    pub fn push<'r>(
        &mut self,
        raw: &RawRecord<'_>,
        opts: &NormalizeOptions,
        item: usize,
        draft: &EventDraft,
        recipients: impl IntoIterator<Item = &'r str>,
    ) {
        self.push_draft(raw, opts, item, Cow::Borrowed(draft), recipients)
    }

    /// [`Normalized::push`] of a draft the caller is done with: the last recipient's event
    /// takes the draft's strings instead of copies of them.
    pub fn push_owned<'r>(
        &mut self,
        raw: &RawRecord<'_>,
        opts: &NormalizeOptions,
        item: usize,
        draft: EventDraft,
        recipients: impl IntoIterator<Item = &'r str>,
    ) {
        self.push_draft(raw, opts, item, Cow::Owned(draft), recipients)
    }

    fn push_draft<'r>(
        &mut self,
        raw: &RawRecord<'_>,
        opts: &NormalizeOptions,
        item: usize,
        draft: Cow<'_, EventDraft>,
        recipients: impl IntoIterator<Item = &'r str>,
    ) {
        let limits = &opts.limits;
        let recipients: Vec<&str> = recipients.into_iter().map(str::trim).filter(|r| !r.is_empty()).collect();
        if let Err(error) = draft.check(limits, raw.envelope.received_at) {
            return self.reject(item, error);
        }
        let total = self.events.len().saturating_add(recipients.len());
        if total > limits.max_events_per_record {
            let error = NormalizeError::LimitExceeded(format!(
                "events of the record: {total} > {} (item {item} has {} recipients)",
                limits.max_events_per_record,
                recipients.len()
            ));
            return self.reject(item, error);
        }
        let per_event = draft.approx_bytes();
        let bytes = recipients.iter().map(|r| per_event + r.len()).sum::<usize>();
        if self.bytes.saturating_add(bytes) > limits.max_record_output_bytes {
            let error = NormalizeError::LimitExceeded(format!(
                "output bytes of the record: {} > {} (item {item}: {} recipients × {per_event} bytes)",
                self.bytes.saturating_add(bytes),
                limits.max_record_output_bytes,
                recipients.len(),
            ));
            return self.reject(item, error);
        }
        self.bytes += bytes;
        let last = recipients.iter().rposition(|r| r.len() <= limits.max_recipient_bytes);
        let mut draft = Some(draft);
        for (n, recipient) in recipients.into_iter().enumerate() {
            if recipient.len() > limits.max_recipient_bytes {
                let error = NormalizeError::LimitExceeded(format!(
                    "recipient {n} of item {item}: {} bytes > {}",
                    recipient.len(),
                    limits.max_recipient_bytes
                ));
                self.reject(item, error);
                continue;
            }
            let event = match (Some(n) == last, draft.take()) {
                (true, Some(Cow::Owned(d))) => d.into_event(raw, recipient),
                (_, Some(d)) => {
                    let event = d.event(raw, recipient);
                    draft = Some(d);
                    event
                }
                // the draft is taken only by the last recipient's event
                (_, None) => continue,
            };
            self.events.push(event);
        }
    }

    /// Records that item `item` could not be read.
    pub fn reject(&mut self, item: usize, error: NormalizeError) {
        self.rejected.push(Rejected { item, error });
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
    // Compared in place (ASCII case-insensitively, as lower-casing both did): only the headers
    // kept are copied, not every header name once per event.
    let prefix = opts.metadata_header_prefix.as_str();
    headers
        .into_iter()
        .filter_map(|(name, value)| {
            let rest = name.get(prefix.len()..).filter(|_| name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes()))?;
            Some((rest.to_ascii_lowercase(), value.to_string()))
        })
        .collect()
}

/// Parses an RFC 3339 time into UTC milliseconds.
pub fn parse_time(field: &'static str, s: &str) -> Result<i64, NormalizeError> {
    schemas::event::rfc3339_millis::parse(s).ok_or_else(|| NormalizeError::InvalidField {
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
    attribution_from_scalars(vars.iter().map(|(k, v)| (*k, v.as_str())), opts)
}

/// [`attribution_from_custom`] of fields already read as text (`json::Scalar`), in order.
pub fn attribution_from_scalars<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>, opts: &NormalizeOptions) -> Attribution {
    let names = [&opts.broadcast_tag, &opts.sequence_tag, &opts.contact_tag, &opts.template_tag, &opts.message_class_tag];
    let (named, rest): (Vec<_>, Vec<_>) = fields.into_iter().partition(|(k, _)| names.iter().any(|n| n.as_str() == *k));
    let mut a = attribution_from_tags(named.iter().map(|(k, v)| (*k, vec![*v])), opts);
    a.metadata.extend(rest.into_iter().map(|(k, v)| (k.to_string(), v.to_string())));
    a
}
