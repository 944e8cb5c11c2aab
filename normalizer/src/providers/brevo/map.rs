//! Brevo transactional email events → drafts, keyed on `event`
//! (<https://developers.brevo.com/docs/transactional-webhooks>).
//!
//! Times: `ts_event` (seconds, UTC) is when the event happened; `ts_epoch` (milliseconds,
//! UTC) when the message was sent; `date` is in Brevo's CET/CEST and is not used. Brevo sends
//! no event id (`id` is the webhook's id): events are identified by their body.
//!
//! The event is read into [`BrevoEvent`], borrowed and lenient (`providers/json.rs`), as the
//! earlier `serde_json::Value` lookups read it (kept as `map_before.rs`, the tests' oracle;
//! issue 14: the `Value` trees were most of the other providers' cost).

use crate::providers::build::attribution_from_tags;
use crate::providers::json::{lenient_struct, Array, Obj, Str};
use crate::providers::{EventDraft, NormalizeError, NormalizeOptions};
use schemas::{BounceClass, Channel, EventType};
use serde_json::Value;

lenient_struct! {
    /// What the mapping reads of a Brevo event.
    pub struct BrevoEvent<'a> {
        event: Str<'a> = "event",
        message_id: Str<'a> = "message-id",
        email: Str<'a> = "email",
        /// Times and the template id: small `Value`s (a number or a string of one; null is absent),
        /// for their error texts.
        ts_event: Option<Value> = "ts_event",
        ts: Option<Value> = "ts",
        ts_epoch: Option<Value> = "ts_epoch",
        template_id: Option<Value> = "template_id",
        reason: Str<'a> = "reason",
        link: Str<'a> = "link",
        url: Str<'a> = "URL",
        user_agent: Str<'a> = "user_agent",
        ip: Str<'a> = "ip",
        /// `None` when not an array (then `tag` counts).
        tags: Array<Str<'a>> = "tags",
        tag: Str<'a> = "tag",
        x_mailin_custom: Str<'a> = "X-Mailin-custom",
        sending_ip: Str<'a> = "sending_ip",
    }
}

/// What each documented `event` means. Proxy opens (a privacy proxy such as Apple Mail
/// Privacy Protection fetched the pixel, as Brevo itself reports) are kept under their own
/// name but not counted as opens: no person opened anything.
pub const EVENTS: &[(&str, EventType, Option<BounceClass>)] = &[
    ("request", EventType::Sent, None),
    ("delivered", EventType::Delivered, None),
    ("deferred", EventType::Deferred, None),
    ("soft_bounce", EventType::Bounced, Some(BounceClass::Soft)),
    ("hard_bounce", EventType::Bounced, Some(BounceClass::Hard)),
    // The recipient address is not valid: it will never take mail.
    ("invalid_email", EventType::Bounced, Some(BounceClass::Hard)),
    // Brevo did not send: the recipient is on a block list, or the sender was refused.
    ("blocked", EventType::Failed, None),
    ("error", EventType::Failed, None),
    ("spam", EventType::Complained, None),
    ("opened", EventType::Opened, None),
    ("unique_opened", EventType::Opened, None),
    ("proxy_open", EventType::Unknown, None),
    ("unique_proxy_open", EventType::Unknown, None),
    ("click", EventType::Clicked, None),
    ("unsubscribed", EventType::Unsubscribed, None),
];

/// Parses a webhook body: a JSON object with an `event`.
pub fn parse(body: &[u8]) -> Result<BrevoEvent<'_>, NormalizeError> {
    let event = serde_json::from_slice::<Obj<BrevoEvent<'_>>>(body)
        .map_err(|e| NormalizeError::InvalidJson(e.to_string()))?
        .0
        .ok_or_else(|| NormalizeError::InvalidJson("body is not a JSON object".into()))?;
    if str_of(&event.event).is_none() {
        return Err(NormalizeError::MissingField("event"));
    }
    Ok(event)
}

/// `message-id`: every event of one message shares it.
pub fn message_id<'e>(event: &'e BrevoEvent<'_>) -> Option<&'e str> {
    str_of(&event.message_id)
}

/// A string field, trimmed, if not blank.
fn str_of<'e>(s: &'e Str<'_>) -> Option<&'e str> {
    s.get().map(str::trim).filter(|s| !s.is_empty())
}

/// A whole number (a JSON integer or a string of one); absent or null is `None`.
fn int_of(v: &Option<Value>, key: &'static str) -> Result<Option<i64>, NormalizeError> {
    let invalid = |v: &Value| NormalizeError::InvalidField { field: key, reason: format!("not a whole number: {v}") };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| invalid(&Value::Number(n.clone()))),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid(&Value::String(s.clone()))),
        Some(other) => Err(invalid(other)),
    }
}

/// When the event happened: `ts_event` (seconds), else `ts` (seconds), else `ts_epoch` (ms).
fn occurred_at(event: &BrevoEvent<'_>) -> Result<Option<i64>, NormalizeError> {
    for (v, key) in [(&event.ts_event, "ts_event"), (&event.ts, "ts")] {
        if let Some(secs) = int_of(v, key)? {
            return Ok(Some(secs.saturating_mul(1000)));
        }
    }
    int_of(&event.ts_epoch, "ts_epoch")
}

/// Maps one event to its draft and recipient.
pub fn draft(event: &BrevoEvent<'_>, opts: &NormalizeOptions) -> Result<(EventDraft, String), NormalizeError> {
    let name = str_of(&event.event).ok_or(NormalizeError::MissingField("event"))?;
    let message_id = message_id(event).ok_or(NormalizeError::MissingField("message-id"))?;
    let recipient = str_of(&event.email).ok_or(NormalizeError::NoRecipients)?.to_string();
    let (event_type, bounce_class) = EVENTS.iter().find(|(n, _, _)| *n == name).map(|(_, t, b)| (*t, *b)).unwrap_or((EventType::Unknown, None));

    let mut d = EventDraft::new(Channel::Email, message_id, name, event_type);
    d.bounce_class = bounce_class;
    d.occurred_at = occurred_at(event)?;
    if matches!(event_type, EventType::Bounced | EventType::Failed | EventType::Deferred) {
        d.error_code = Some(name.to_string());
        d.error_reason = str_of(&event.reason).map(str::to_string);
    }
    if event_type == EventType::Clicked {
        d.click_url = str_of(&event.link).or_else(|| str_of(&event.url)).map(str::to_string);
    }
    d.user_agent = str_of(&event.user_agent).map(str::to_string);
    d.ip = str_of(&event.ip).map(str::to_string);

    // Tags of the `name:value` form fill the configured attribution; the others are labels.
    let tags: Vec<&str> = match &event.tags.0 {
        Some(a) => a.iter().filter_map(Str::get).collect(),
        None => str_of(&event.tag).into_iter().collect(),
    };
    d.attribution = attribution_from_tags(tags.iter().map(|t| t.split_once(':').map_or((*t, vec![""]), |(k, v)| (k, vec![v]))), opts);
    if d.attribution.template_key.is_none() {
        d.attribution.template_key = int_of(&event.template_id, "template_id")?.map(|t| t.to_string());
    }
    if let Some(custom) = str_of(&event.x_mailin_custom) {
        d.attribution.metadata.insert("x_mailin_custom".into(), custom.to_string());
    }
    if let Some(ip) = str_of(&event.sending_ip) {
        d.attribution.metadata.insert("sending_ip".into(), ip.to_string());
    }
    Ok((d, recipient))
}
