//! The `serde_json::Value` mapping that `map.rs` replaced (issue 14), kept for tests only: the
//! oracle `tests.rs` holds the borrowed mapping to on odd inputs.
//!
//! SendGrid event objects → drafts
//! (<https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event>).
//!
//! Unique args / custom args arrive as top-level keys of each event: every key SendGrid does
//! not define itself is one. Those named by [`NormalizeOptions`] become attribution, the rest
//! metadata; `category` (a string or an array) becomes labels.

use crate::providers::build::{attribution_from_custom, IdSource};
use crate::providers::{EventDraft, NormalizeError, NormalizeOptions};
use schemas::event::Attribution;
use schemas::{BounceClass, Channel, EventType};
use serde_json::{Map, Value};

/// Keys SendGrid itself sets on events; anything else is a custom arg.
const SENDGRID_KEYS: &[&str] = &[
    "email", "timestamp", "smtp-id", "event", "category", "sg_event_id", "sg_message_id", "sg_template_id",
    "sg_template_name", "sg_content_type", "sg_machine_open", "sg_user_id", "useragent", "ip", "url", "url_offset",
    "reason", "status", "response", "attempt", "type", "bounce_classification", "tls", "cert_err", "asm_group_id",
    "unique_args", "marketing_campaign_id", "marketing_campaign_name", "marketing_campaign_version",
    "marketing_campaign_split_id", "pool", "send_at", "mc_stats", "mc_pod_id", "mc_auto_id", "phase_id",
    "singlesend_id", "singlesend_name", "template_id", "template_version_id", "template_hash", "automation_id",
];

/// The stripped `sg_message_id` of the first event, if the body is an event array.
pub fn first_message_id(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.as_array()?.iter().filter_map(Value::as_object).find_map(message_id)
}

/// One event of a batch: its draft and recipient, or why it cannot be read.
pub type ItemDraft = Result<(EventDraft, String), NormalizeError>;

/// One draft and its recipient per event of the batch, in order; an event that cannot be
/// read is its own error and does not spoil the others. `Err` when the body is not a batch.
pub fn drafts(body: &[u8], opts: &NormalizeOptions) -> Result<Vec<ItemDraft>, NormalizeError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| NormalizeError::InvalidJson(e.to_string()))?;
    let items = v
        .as_array()
        .ok_or_else(|| NormalizeError::InvalidJson("Event Webhook body is not a JSON array".into()))?;
    if items.is_empty() {
        return Err(NormalizeError::NoRecipients);
    }
    Ok(items.iter().enumerate().map(|(i, item)| draft(i, item, opts)).collect())
}

fn draft(i: usize, item: &Value, opts: &NormalizeOptions) -> Result<(EventDraft, String), NormalizeError> {
    let e = item.as_object().ok_or_else(|| NormalizeError::InvalidField {
        field: "event",
        reason: format!("item {i} is not an object"),
    })?;
    let name = str_of(e, "event").ok_or(NormalizeError::MissingField("event"))?;
    let recipient = str_of(e, "email").ok_or(NormalizeError::MissingField("email"))?;
    let message_id = message_id(e).ok_or(NormalizeError::MissingField("sg_message_id"))?;
    let (event_type, bounce_class) = classify(name, e);

    let mut d = EventDraft::new(Channel::Email, message_id, name, event_type);
    d.bounce_class = bounce_class;
    match str_of(e, "sg_event_id") {
        Some(id) => {
            d.id_source = IdSource::ProviderEventId(id.to_string());
            d.provider_event_id = Some(id.to_string());
        }
        // Some events (e.g. older drops) have no sg_event_id: the position in the batch identifies them.
        None => d.id_source = IdSource::BodyItem(i),
    }
    d.occurred_at = timestamp_ms(e)?;
    d.user_agent = str_of(e, "useragent").map(str::to_string);
    d.ip = str_of(e, "ip").map(str::to_string);
    if event_type == EventType::Clicked {
        d.click_url = str_of(e, "url").map(str::to_string);
    }
    if matches!(event_type, EventType::Bounced | EventType::Failed | EventType::Deferred) {
        d.error_code = str_of(e, "status").map(str::to_string);
        d.error_reason = str_of(e, "reason").or_else(|| str_of(e, "response")).map(str::to_string);
    }
    d.attribution = attribution(e, opts);
    if let Some(class) = str_of(e, "bounce_classification") {
        d.attribution.metadata.insert("bounce_classification".into(), class.to_string());
    }
    Ok((d, recipient.to_string()))
}

fn classify(name: &str, e: &Map<String, Value>) -> (EventType, Option<BounceClass>) {
    let t = match name {
        "processed" => EventType::Sent,
        "dropped" => EventType::Failed,
        "delivered" => EventType::Delivered,
        "deferred" => EventType::Deferred,
        "bounce" => return (EventType::Bounced, Some(bounce_class(e))),
        "open" => EventType::Opened,
        "click" => EventType::Clicked,
        "spamreport" => EventType::Complained,
        "unsubscribe" | "group_unsubscribe" => EventType::Unsubscribed,
        // group_resubscribe and anything new: kept under its own name.
        _ => EventType::Unknown,
    };
    (t, None)
}

/// `type` says bounce (permanent) or blocked (temporary); without it, only an invalid address is surely hard.
fn bounce_class(e: &Map<String, Value>) -> BounceClass {
    match (str_of(e, "type"), str_of(e, "bounce_classification")) {
        (Some("bounce"), _) => BounceClass::Hard,
        (Some("blocked"), _) => BounceClass::Soft,
        (_, Some("Invalid Address")) => BounceClass::Hard,
        _ => BounceClass::Undetermined,
    }
}

/// `sg_message_id` up to its first `.` (the rest names the filter that handled it).
/// Asynchronous bounces may lack it; `smtp-id` starts with the same id.
fn message_id(e: &Map<String, Value>) -> Option<String> {
    let prefix = |s: &str, stops: &[char]| s.split(stops).next().map(str::trim).filter(|p| !p.is_empty()).map(str::to_string);
    str_of(e, "sg_message_id").and_then(|id| prefix(id, &['.'])).or_else(|| {
        str_of(e, "smtp-id").and_then(|id| prefix(id.trim().trim_start_matches('<'), &['.', '@', '>']))
    })
}

/// `timestamp` in unix seconds → milliseconds; `None` when absent.
fn timestamp_ms(e: &Map<String, Value>) -> Result<Option<i64>, NormalizeError> {
    let Some(v) = e.get("timestamp") else { return Ok(None) };
    let secs = v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
    secs.and_then(|s| s.checked_mul(1000)).map(Some).ok_or_else(|| NormalizeError::InvalidField {
        field: "timestamp",
        reason: format!("not unix seconds: {v}"),
    })
}

/// Custom args (top-level unknown keys and a legacy `unique_args` object) and categories.
fn attribution(e: &Map<String, Value>, opts: &NormalizeOptions) -> Attribution {
    let legacy = e.get("unique_args").and_then(Value::as_object).into_iter().flatten();
    let custom = e.iter().filter(|(k, _)| !SENDGRID_KEYS.contains(&k.as_str())).chain(legacy);
    let mut a = attribution_from_custom(custom.map(|(k, v)| (k.as_str(), v)), opts);
    a.labels = match e.get("category") {
        Some(Value::String(c)) => vec![c.clone()],
        Some(Value::Array(cs)) => cs.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    a.labels.retain(|l| !l.is_empty());
    a.labels.sort();
    a.labels.dedup();
    a
}

fn str_of<'a>(e: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    e.get(key).and_then(Value::as_str)
}
