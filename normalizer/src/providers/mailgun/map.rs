//! Mailgun `event-data` → a draft. Event types and sample events:
//! <https://documentation.mailgun.com/en/latest/api-events.html#event-structure>.
//!
//! `user-variables` named by [`NormalizeOptions`] become attribution, the others metadata;
//! `tags` become labels.
//!
//! The body is read into [`Body`], borrowed and lenient (`providers/json.rs`), as the earlier
//! `serde_json::Value` pointer lookups read it (kept as `map_before.rs`, the tests' oracle;
//! issue 14: the `Value` trees were most of the other providers' cost).

use crate::providers::build::{attribution_from_scalars, IdSource};
use crate::providers::json::{lenient_struct, Array, Obj, Present, Scalar, Scalars, Str, Strs};
use crate::providers::{EventDraft, NormalizeError, NormalizeOptions};
use schemas::event::Attribution;
use schemas::{BounceClass, Channel, EventType};
use serde_json::Value;

lenient_struct! {
    /// A webhook body: the event is `event-data` (the `signature` is `verify`'s).
    pub struct Body<'a> {
        event_data: Obj<EventData<'a>> = "event-data",
    }
}

lenient_struct! {
    /// What the mapping reads of `event-data`.
    pub struct EventData<'a> {
        event: Str<'a> = "event",
        id: Str<'a> = "id",
        /// Kept as the `Value` it is (a number, or a string of one), for its error text.
        timestamp: Present<Value> = "timestamp",
        recipient: Str<'a> = "recipient",
        message: Obj<Message<'a>> = "message",
        envelope: Obj<Envelope<'a>> = "envelope",
        client_info: Obj<ClientInfo<'a>> = "client-info",
        ip: Str<'a> = "ip",
        url: Str<'a> = "url",
        severity: Str<'a> = "severity",
        reason: Str<'a> = "reason",
        delivery_status: Obj<DeliveryStatus<'a>> = "delivery-status",
        reject: Obj<Reject<'a>> = "reject",
        user_variables: Scalars<'a> = "user-variables",
        tags: Strs<'a> = "tags",
    }
}

lenient_struct! {
    pub struct Message<'a> {
        headers: Obj<Headers<'a>> = "headers",
        /// `None` when not an array (then the `to` header counts).
        recipients: Array<Str<'a>> = "recipients",
    }
}

lenient_struct! {
    pub struct Headers<'a> {
        message_id: Str<'a> = "message-id",
        to: Str<'a> = "to",
    }
}

lenient_struct! {
    pub struct Envelope<'a> {
        targets: Str<'a> = "targets",
    }
}

lenient_struct! {
    pub struct ClientInfo<'a> {
        user_agent: Str<'a> = "user-agent",
    }
}

lenient_struct! {
    pub struct DeliveryStatus<'a> {
        message: Str<'a> = "message",
        description: Str<'a> = "description",
        code: Scalar<'a> = "code",
    }
}

lenient_struct! {
    pub struct Reject<'a> {
        reason: Str<'a> = "reason",
    }
}

/// `event-data`, if the body is an object holding one as an object.
fn event_data(body: &[u8]) -> Result<Option<EventData<'_>>, serde_json::Error> {
    Ok(serde_json::from_slice::<Obj<Body<'_>>>(body)?.0.and_then(|b| b.event_data.0))
}

/// `event-data.message.headers.message-id`, without angle brackets.
pub fn message_id_of(body: &[u8]) -> Option<String> {
    message_id(&event_data(body).ok()??)
}

/// The event and its recipients; `None` for an event about no recipient (`stored`, mailing-list
/// events), which has nothing to report.
pub fn draft(body: &[u8], opts: &NormalizeOptions) -> Result<Option<(EventDraft, Vec<String>)>, NormalizeError> {
    let ed = event_data(body).map_err(|e| NormalizeError::InvalidJson(e.to_string()))?.ok_or(NormalizeError::MissingField("event-data"))?;
    let name = ed.event.get().ok_or(NormalizeError::MissingField("event-data.event"))?;
    let (event_type, bounce_class) = classify(name, &ed);
    let recipients = recipients(name, &ed);
    if recipients.is_empty() {
        return match event_type {
            EventType::Unknown => Ok(None),
            _ => Err(NormalizeError::NoRecipients),
        };
    }
    let message_id = message_id(&ed).ok_or(NormalizeError::MissingField("event-data.message.headers.message-id"))?;

    let mut d = EventDraft::new(Channel::Email, message_id, name, event_type);
    d.bounce_class = bounce_class;
    if let Some(id) = ed.id.get() {
        d.id_source = IdSource::ProviderEventId(id.to_string());
        d.provider_event_id = Some(id.to_string());
    }
    d.occurred_at = timestamp_ms(&ed)?;
    d.user_agent = ed.client_info.get().and_then(|c| c.user_agent.get()).map(str::to_string);
    d.ip = ed.ip.get().map(str::to_string);
    if event_type == EventType::Clicked {
        d.click_url = ed.url.get().map(str::to_string);
    }
    match name {
        "failed" => {
            let status = ed.delivery_status.get();
            let non_empty = |s: Option<&str>| s.filter(|s| !s.trim().is_empty()).map(str::to_string);
            d.error_reason = non_empty(status.and_then(|s| s.message.get())).or_else(|| non_empty(status.and_then(|s| s.description.get())));
            d.error_code = status.and_then(|s| s.code.0.as_deref()).map(str::to_string);
        }
        "rejected" => d.error_reason = ed.reject.get().and_then(|r| r.reason.get()).map(str::to_string),
        _ => {}
    }
    d.attribution = attribution(&ed, opts);
    if let Some(reason) = ed.reason.get() {
        d.attribution.metadata.insert("reason".into(), reason.to_string());
    }
    Ok(Some((d, recipients)))
}

/// `recipient`; for `rejected` (which names none) the message's recipients, else the
/// envelope targets or the `To` header (comma-separated, display names dropped).
fn recipients(name: &str, ed: &EventData<'_>) -> Vec<String> {
    let non_empty = |r: &&str| !r.trim().is_empty();
    if let Some(r) = ed.recipient.get().filter(non_empty) {
        return vec![r.to_string()];
    }
    if name != "rejected" {
        return Vec::new();
    }
    let message = ed.message.get();
    if let Some(list) = message.and_then(|m| m.recipients.0.as_ref()) {
        return list.iter().filter_map(Str::get).filter(non_empty).map(str::to_string).collect();
    }
    let header_to = || message.and_then(|m| m.headers.get()).and_then(|h| h.to.get());
    let to = ed.envelope.get().and_then(|e| e.targets.get()).or_else(header_to).unwrap_or_default();
    to.split(',')
        .map(|part| part.rsplit_once('<').map_or(part, |(_, addr)| addr.trim_end().trim_end_matches('>')).trim())
        .filter(non_empty)
        .map(str::to_string)
        .collect()
}

fn classify(name: &str, ed: &EventData<'_>) -> (EventType, Option<BounceClass>) {
    let t = match name {
        "accepted" => EventType::Sent,
        "rejected" => EventType::Failed,
        "delivered" => EventType::Delivered,
        "failed" => {
            let class = match ed.severity.get() {
                Some("permanent") => BounceClass::Hard,
                Some("temporary") => BounceClass::Soft,
                _ => BounceClass::Undetermined,
            };
            return (EventType::Bounced, Some(class));
        }
        "opened" => EventType::Opened,
        "clicked" => EventType::Clicked,
        "unsubscribed" => EventType::Unsubscribed,
        "complained" => EventType::Complained,
        _ => EventType::Unknown,
    };
    (t, None)
}

/// Mailgun's send API answers `<id@domain>`, events carry `id@domain`: compare without brackets.
fn message_id(ed: &EventData<'_>) -> Option<String> {
    let id = ed.message.get()?.headers.get()?.message_id.get()?.trim();
    let id = id.strip_prefix('<').and_then(|i| i.strip_suffix('>')).unwrap_or(id);
    (!id.is_empty()).then(|| id.to_string())
}

/// `timestamp` in (fractional) unix seconds → milliseconds; `None` when absent.
fn timestamp_ms(ed: &EventData<'_>) -> Result<Option<i64>, NormalizeError> {
    if !ed.timestamp.present {
        return Ok(None);
    }
    let v = &ed.timestamp.value;
    let secs = v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()));
    // Bounded so the conversion to i64 cannot saturate: years 0..=9999.
    match secs.map(|s| (s * 1000.0).round()) {
        Some(ms) if (0.0..=253_402_300_799_000.0).contains(&ms) => Ok(Some(ms as i64)),
        _ => Err(NormalizeError::InvalidField { field: "event-data.timestamp", reason: format!("not unix seconds: {v}") }),
    }
}

/// `user-variables` (configured names → attribution, the rest → metadata) and `tags` → labels.
fn attribution(ed: &EventData<'_>, opts: &NormalizeOptions) -> Attribution {
    let vars = ed.user_variables.0.iter().flatten().filter_map(|(k, v)| Some((k.as_ref(), v.0.as_deref()?)));
    let mut a = attribution_from_scalars(vars, opts);
    a.labels = ed.tags.all.iter().filter(|t| !t.is_empty()).map(|t| t.to_string()).collect();
    a.labels.sort();
    a.labels.dedup();
    a
}
