//! The `serde_json::Value` mapping that `map.rs` replaced (issue 14), kept for tests only: the
//! oracle `tests.rs` holds the borrowed mapping to on odd inputs.
//!
//! Mailgun `event-data` → a draft. Event types and sample events:
//! <https://documentation.mailgun.com/en/latest/api-events.html#event-structure>.
//!
//! `user-variables` named by [`NormalizeOptions`] become attribution, the others metadata;
//! `tags` become labels.

use crate::providers::build::{attribution_from_custom, scalar, IdSource};
use crate::providers::{EventDraft, NormalizeError, NormalizeOptions};
use schemas::event::Attribution;
use schemas::{BounceClass, Channel, EventType};
use serde_json::Value;

/// `event-data.message.headers.message-id`, without angle brackets.
pub fn message_id_of(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    message_id(v.get("event-data")?)
}

/// The event and its recipients; `None` for an event about no recipient (`stored`, mailing-list
/// events), which has nothing to report.
pub fn draft(body: &[u8], opts: &NormalizeOptions) -> Result<Option<(EventDraft, Vec<String>)>, NormalizeError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| NormalizeError::InvalidJson(e.to_string()))?;
    let ed = v.get("event-data").filter(|e| e.is_object()).ok_or(NormalizeError::MissingField("event-data"))?;
    let name = str_at(ed, "/event").ok_or(NormalizeError::MissingField("event-data.event"))?;
    let (event_type, bounce_class) = classify(name, ed);
    let recipients = recipients(name, ed);
    if recipients.is_empty() {
        return match event_type {
            EventType::Unknown => Ok(None),
            _ => Err(NormalizeError::NoRecipients),
        };
    }
    let message_id = message_id(ed).ok_or(NormalizeError::MissingField("event-data.message.headers.message-id"))?;

    let mut d = EventDraft::new(Channel::Email, message_id, name, event_type);
    d.bounce_class = bounce_class;
    if let Some(id) = str_at(ed, "/id") {
        d.id_source = IdSource::ProviderEventId(id.to_string());
        d.provider_event_id = Some(id.to_string());
    }
    d.occurred_at = timestamp_ms(ed)?;
    d.user_agent = str_at(ed, "/client-info/user-agent").map(str::to_string);
    d.ip = str_at(ed, "/ip").map(str::to_string);
    if event_type == EventType::Clicked {
        d.click_url = str_at(ed, "/url").map(str::to_string);
    }
    match name {
        "failed" => {
            let non_empty = |p: &str| str_at(ed, p).filter(|s| !s.trim().is_empty()).map(str::to_string);
            d.error_reason = non_empty("/delivery-status/message").or_else(|| non_empty("/delivery-status/description"));
            d.error_code = ed.pointer("/delivery-status/code").and_then(scalar);
        }
        "rejected" => d.error_reason = str_at(ed, "/reject/reason").map(str::to_string),
        _ => {}
    }
    d.attribution = attribution(ed, opts);
    if let Some(reason) = str_at(ed, "/reason") {
        d.attribution.metadata.insert("reason".into(), reason.to_string());
    }
    Ok(Some((d, recipients)))
}

/// `recipient`; a `rejected` event has none and names the message's recipients instead.
fn recipients(name: &str, ed: &Value) -> Vec<String> {
    let non_empty = |r: &&str| !r.trim().is_empty();
    if let Some(r) = str_at(ed, "/recipient").filter(non_empty) {
        return vec![r.to_string()];
    }
    if name != "rejected" {
        return Vec::new();
    }
    if let Some(list) = ed.pointer("/message/recipients").and_then(Value::as_array) {
        return list.iter().filter_map(Value::as_str).filter(non_empty).map(str::to_string).collect();
    }
    // `To` header: `a@x, Name <b@y>` → the addresses.
    let to = str_at(ed, "/envelope/targets").or_else(|| str_at(ed, "/message/headers/to")).unwrap_or_default();
    to.split(',')
        .map(|part| part.rsplit_once('<').map_or(part, |(_, addr)| addr.trim_end().trim_end_matches('>')).trim())
        .filter(non_empty)
        .map(str::to_string)
        .collect()
}

fn classify(name: &str, ed: &Value) -> (EventType, Option<BounceClass>) {
    let t = match name {
        "accepted" => EventType::Sent,
        "rejected" => EventType::Failed,
        "delivered" => EventType::Delivered,
        "failed" => {
            let class = match str_at(ed, "/severity") {
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
fn message_id(ed: &Value) -> Option<String> {
    let id = str_at(ed, "/message/headers/message-id")?.trim();
    let id = id.strip_prefix('<').and_then(|i| i.strip_suffix('>')).unwrap_or(id);
    (!id.is_empty()).then(|| id.to_string())
}

/// `timestamp` in (fractional) unix seconds → milliseconds; `None` when absent.
fn timestamp_ms(ed: &Value) -> Result<Option<i64>, NormalizeError> {
    let Some(v) = ed.get("timestamp") else { return Ok(None) };
    let secs = v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()));
    // Bounded so the conversion to i64 cannot saturate: years 0..=9999.
    match secs.map(|s| (s * 1000.0).round()) {
        Some(ms) if (0.0..=253_402_300_799_000.0).contains(&ms) => Ok(Some(ms as i64)),
        _ => Err(NormalizeError::InvalidField { field: "event-data.timestamp", reason: format!("not unix seconds: {v}") }),
    }
}

/// `user-variables` (configured names → attribution, the rest → metadata) and `tags` → labels.
fn attribution(ed: &Value, opts: &NormalizeOptions) -> Attribution {
    let vars = ed.get("user-variables").and_then(Value::as_object).into_iter().flatten();
    let mut a = attribution_from_custom(vars.map(|(k, v)| (k.as_str(), v)), opts);
    a.labels = ed
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    a.labels.sort();
    a.labels.dedup();
    a
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}
