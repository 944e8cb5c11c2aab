//! The `serde_json::Value` mapping that `map.rs` replaced (issue 14), kept for tests only: the
//! oracle `tests.rs` holds the borrowed mapping to on odd inputs.
//!
//! Resend events → a draft and its recipients
//! (<https://resend.com/docs/webhooks/event-types>, one page per type under `/docs/webhooks/emails/`).
//!
//! `data.tags` (an object, or a list of `{name, value}` as sent) become attribution by the
//! configured names and `name:value` labels otherwise.

use crate::providers::build::{attribution_from_tags, parse_time, IdSource};
use crate::providers::{EventDraft, NormalizeError, NormalizeOptions};
use schemas::event::Attribution;
use schemas::{BounceClass, Channel, EventType};
use serde_json::Value;

/// `data.email_id`, if the body parses.
pub fn email_id_of(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    str_at(&v, "/data/email_id").map(str::to_string)
}

/// Maps one event. `svix_id` is the `svix-id` header when ingest kept it: the event's identity.
/// Without it (a bare body, as in `normalizer check`) the body itself identifies the event.
pub fn draft(body: &[u8], svix_id: Option<&str>, opts: &NormalizeOptions) -> Result<(EventDraft, Vec<String>), NormalizeError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| NormalizeError::InvalidJson(e.to_string()))?;
    let name = str_at(&v, "/type").ok_or(NormalizeError::MissingField("type"))?;
    let email_id = str_at(&v, "/data/email_id").ok_or(NormalizeError::MissingField("data.email_id"))?;
    let recipients: Vec<String> = match v.pointer("/data/to") {
        Some(Value::Array(to)) => to.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::String(to)) => vec![to.clone()],
        _ => Vec::new(),
    };
    if recipients.iter().all(|r| r.trim().is_empty()) {
        return Err(NormalizeError::NoRecipients);
    }

    let mut d = EventDraft::new(Channel::Email, email_id, name, EventType::Unknown);
    if let Some(id) = svix_id.filter(|id| !id.is_empty()) {
        d.id_source = IdSource::ProviderEventId(id.to_string());
        d.provider_event_id = Some(id.to_string());
    }
    d.occurred_at = str_at(&v, "/created_at").map(|t| parse_time("created_at", t)).transpose()?;
    d.attribution = attribution(&v, opts);
    let text = |ptr: &str| str_at(&v, ptr).map(str::to_string);
    d.event_type = match name {
        "email.sent" => EventType::Sent,
        "email.delivered" => EventType::Delivered,
        "email.delivery_delayed" => EventType::Deferred,
        "email.bounced" => {
            d.bounce_class = Some(bounce_class(str_at(&v, "/data/bounce/type")));
            d.error_code = text("/data/bounce/subType");
            d.error_reason = text("/data/bounce/message").or_else(|| diagnostic(&v));
            EventType::Bounced
        }
        "email.complained" => EventType::Complained,
        "email.opened" => EventType::Opened,
        "email.clicked" => {
            d.click_url = text("/data/click/link");
            d.ip = text("/data/click/ipAddress");
            d.user_agent = text("/data/click/userAgent");
            EventType::Clicked
        }
        "email.failed" => {
            d.error_code = text("/data/failed/reason");
            d.error_reason = text("/data/failed/reason");
            EventType::Failed
        }
        // Kept under its own name (email.scheduled, email.received, ...); a suppression says why.
        _ => {
            d.error_code = text("/data/suppressed/type");
            d.error_reason = text("/data/suppressed/message");
            EventType::Unknown
        }
    };
    Ok((d, recipients))
}

/// Resend documents `Permanent` and `Temporary`; SES-style `Transient` and plain `soft` are soft too.
fn bounce_class(kind: Option<&str>) -> BounceClass {
    match kind.map(str::to_ascii_lowercase).as_deref() {
        Some("transient" | "temporary" | "soft") => BounceClass::Soft,
        Some("undetermined") => BounceClass::Undetermined,
        _ => BounceClass::Hard,
    }
}

/// `bounce.diagnosticCode`: a list of SMTP responses.
fn diagnostic(v: &Value) -> Option<String> {
    let codes: Vec<&str> = v.pointer("/data/bounce/diagnosticCode")?.as_array()?.iter().filter_map(Value::as_str).collect();
    (!codes.is_empty()).then(|| codes.join("; "))
}

fn attribution(v: &Value, opts: &NormalizeOptions) -> Attribution {
    let tags: Vec<(&str, Vec<&str>)> = match v.pointer("/data/tags") {
        Some(Value::Object(m)) => m.iter().map(|(k, val)| (k.as_str(), val.as_str().into_iter().collect())).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|t| Some((t.get("name")?.as_str()?, t.get("value").and_then(Value::as_str).into_iter().collect())))
            .collect(),
        _ => Vec::new(),
    };
    let mut a = attribution_from_tags(tags, opts);
    for (ptr, key) in [("/data/message_id", "message_id"), ("/data/broadcast_id", "resend_broadcast_id"), ("/data/template_id", "resend_template_id")] {
        if let Some(val) = str_at(v, ptr) {
            a.metadata.insert(key.to_string(), val.to_string());
        }
    }
    a
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}
