//! SendGrid event objects → drafts
//! (<https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event>).
//!
//! Unique args / custom args arrive as top-level keys of each event: every key SendGrid does
//! not define itself is one. Those named by [`NormalizeOptions`] become attribution, the rest
//! metadata; `category` (a string or an array) becomes labels.
//!
//! Each event is read into [`SgEvent`], borrowed and lenient (`providers/json.rs`), as the
//! earlier `serde_json::Value` lookups read it (kept as `map_before.rs`, the tests' oracle;
//! issue 14: the `Value` trees were most of the other providers' cost).

use crate::providers::build::{attribution_from_scalars, IdSource};
use crate::providers::json::{lenient_struct, Array, Key, Obj, OneOrMany, Scalar, Scalars, Skip, Str};
use crate::providers::{EventDraft, NormalizeError, NormalizeOptions};
use schemas::event::Attribution;
use schemas::{BounceClass, Channel, EventType};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Keys SendGrid itself sets on events; anything else is a custom arg.
const SENDGRID_KEYS: &[&str] = &[
    "email", "timestamp", "smtp-id", "event", "category", "sg_event_id", "sg_message_id", "sg_template_id",
    "sg_template_name", "sg_content_type", "sg_machine_open", "sg_user_id", "useragent", "ip", "url", "url_offset",
    "reason", "status", "response", "attempt", "type", "bounce_classification", "tls", "cert_err", "asm_group_id",
    "unique_args", "marketing_campaign_id", "marketing_campaign_name", "marketing_campaign_version",
    "marketing_campaign_split_id", "pool", "send_at", "mc_stats", "mc_pod_id", "mc_auto_id", "phase_id",
    "singlesend_id", "singlesend_name", "template_id", "template_version_id", "template_hash", "automation_id",
];

/// What the mapping reads of one event: SendGrid's own fields, and every other key (a custom
/// arg) as a [`Scalar`], by key.
#[derive(Debug, Default)]
pub struct SgEvent<'a> {
    event: Str<'a>,
    email: Str<'a>,
    sg_message_id: Str<'a>,
    smtp_id: Str<'a>,
    sg_event_id: Str<'a>,
    /// Kept as the `Value` it is (a number, or a string of one), for its error text.
    timestamp: Option<Value>,
    useragent: Str<'a>,
    ip: Str<'a>,
    url: Str<'a>,
    status: Str<'a>,
    reason: Str<'a>,
    response: Str<'a>,
    kind: Str<'a>,
    bounce_classification: Str<'a>,
    category: OneOrMany<'a>,
    unique_args: Scalars<'a>,
    custom: BTreeMap<Cow<'a, str>, Scalar<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for SgEvent<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = SgEvent<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut e = SgEvent::default();
                // a repeated key keeps its last value, as a `Value` map did
                while let Some(Key(k)) = m.next_key::<Key<'de>>()? {
                    match &*k {
                        "event" => e.event = m.next_value()?,
                        "email" => e.email = m.next_value()?,
                        "sg_message_id" => e.sg_message_id = m.next_value()?,
                        "smtp-id" => e.smtp_id = m.next_value()?,
                        "sg_event_id" => e.sg_event_id = m.next_value()?,
                        "timestamp" => e.timestamp = Some(m.next_value()?),
                        "useragent" => e.useragent = m.next_value()?,
                        "ip" => e.ip = m.next_value()?,
                        "url" => e.url = m.next_value()?,
                        "status" => e.status = m.next_value()?,
                        "reason" => e.reason = m.next_value()?,
                        "response" => e.response = m.next_value()?,
                        "type" => e.kind = m.next_value()?,
                        "bounce_classification" => e.bounce_classification = m.next_value()?,
                        "category" => e.category = m.next_value()?,
                        "unique_args" => e.unique_args = m.next_value()?,
                        other if SENDGRID_KEYS.contains(&other) => {
                            m.next_value::<Skip>()?;
                        }
                        _ => {
                            let v = m.next_value()?;
                            e.custom.insert(k, v);
                        }
                    }
                }
                Ok(e)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The body: an array of events (`None` at a position that is not an object), or `None`.
fn parse(body: &[u8]) -> Result<Option<Vec<Obj<SgEvent<'_>>>>, serde_json::Error> {
    serde_json::from_slice::<Array<Obj<SgEvent<'_>>>>(body).map(|a| a.0)
}

lenient_struct! {
    /// What the edge reads of an event: its message ids, the partition key (every other field
    /// skipped, not built: the whole batch read as `SgEvent`s was ~50 µs of a 50-event POST's
    /// check; BENCHMARKS.md §7, `webhook_verify`).
    struct IdProbe<'a> {
        sg_message_id: Str<'a> = "sg_message_id",
        smtp_id: Str<'a> = "smtp-id",
    }
}

/// The stripped `sg_message_id` of the first event, if the body is an event array.
pub fn first_message_id(body: &[u8]) -> Option<String> {
    let items = serde_json::from_slice::<Array<Obj<IdProbe<'_>>>>(body).ok()?.0?;
    items.iter().filter_map(Obj::get).find_map(|e| message_id_from(&e.sg_message_id, &e.smtp_id))
}

/// One event of a batch: its draft and recipient, or why it cannot be read.
pub type ItemDraft = Result<(EventDraft, String), NormalizeError>;

/// One draft and its recipient per event of the batch, in order; an event that cannot be
/// read is its own error and does not spoil the others. `Err` when the body is not a batch.
pub fn drafts(body: &[u8], opts: &NormalizeOptions) -> Result<Vec<ItemDraft>, NormalizeError> {
    let items = parse(body)
        .map_err(|e| NormalizeError::InvalidJson(e.to_string()))?
        .ok_or_else(|| NormalizeError::InvalidJson("Event Webhook body is not a JSON array".into()))?;
    if items.is_empty() {
        return Err(NormalizeError::NoRecipients);
    }
    Ok(items.iter().enumerate().map(|(i, item)| draft(i, item, opts)).collect())
}

fn draft(i: usize, item: &Obj<SgEvent<'_>>, opts: &NormalizeOptions) -> Result<(EventDraft, String), NormalizeError> {
    let e = item.get().ok_or_else(|| NormalizeError::InvalidField {
        field: "event",
        reason: format!("item {i} is not an object"),
    })?;
    let name = e.event.get().ok_or(NormalizeError::MissingField("event"))?;
    let recipient = e.email.get().ok_or(NormalizeError::MissingField("email"))?;
    let message_id = message_id(e).ok_or(NormalizeError::MissingField("sg_message_id"))?;
    let (event_type, bounce_class) = classify(name, e);

    let mut d = EventDraft::new(Channel::Email, message_id, name, event_type);
    d.bounce_class = bounce_class;
    match e.sg_event_id.get() {
        Some(id) => {
            d.id_source = IdSource::ProviderEventId(id.to_string());
            d.provider_event_id = Some(id.to_string());
        }
        // Some events (e.g. older drops) have no sg_event_id: the position in the batch identifies them.
        None => d.id_source = IdSource::BodyItem(i),
    }
    d.occurred_at = timestamp_ms(e)?;
    d.user_agent = e.useragent.get().map(str::to_string);
    d.ip = e.ip.get().map(str::to_string);
    if event_type == EventType::Clicked {
        d.click_url = e.url.get().map(str::to_string);
    }
    if matches!(event_type, EventType::Bounced | EventType::Failed | EventType::Deferred) {
        d.error_code = e.status.get().map(str::to_string);
        d.error_reason = e.reason.get().or_else(|| e.response.get()).map(str::to_string);
    }
    d.attribution = attribution(e, opts);
    if let Some(class) = e.bounce_classification.get() {
        d.attribution.metadata.insert("bounce_classification".into(), class.to_string());
    }
    Ok((d, recipient.to_string()))
}

fn classify(name: &str, e: &SgEvent<'_>) -> (EventType, Option<BounceClass>) {
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
fn bounce_class(e: &SgEvent<'_>) -> BounceClass {
    match (e.kind.get(), e.bounce_classification.get()) {
        (Some("bounce"), _) => BounceClass::Hard,
        (Some("blocked"), _) => BounceClass::Soft,
        (_, Some("Invalid Address")) => BounceClass::Hard,
        _ => BounceClass::Undetermined,
    }
}

/// `sg_message_id` up to its first `.` (the rest names the filter that handled it).
/// Asynchronous bounces may lack it; `smtp-id` starts with the same id.
fn message_id(e: &SgEvent<'_>) -> Option<String> {
    message_id_from(&e.sg_message_id, &e.smtp_id)
}

/// `sg_message_id` up to its first `.`, else the local part of `smtp-id`.
fn message_id_from(sg_message_id: &Str<'_>, smtp_id: &Str<'_>) -> Option<String> {
    let prefix = |s: &str, stops: &[char]| s.split(stops).next().map(str::trim).filter(|p| !p.is_empty()).map(str::to_string);
    sg_message_id.get().and_then(|id| prefix(id, &['.'])).or_else(|| {
        smtp_id.get().and_then(|id| prefix(id.trim().trim_start_matches('<'), &['.', '@', '>']))
    })
}

/// `timestamp` in unix seconds → milliseconds; `None` when absent.
fn timestamp_ms(e: &SgEvent<'_>) -> Result<Option<i64>, NormalizeError> {
    let Some(v) = &e.timestamp else { return Ok(None) };
    let secs = v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
    secs.and_then(|s| s.checked_mul(1000)).map(Some).ok_or_else(|| NormalizeError::InvalidField {
        field: "timestamp",
        reason: format!("not unix seconds: {v}"),
    })
}

/// Custom args (top-level unknown keys, then a legacy `unique_args` object) and categories.
fn attribution(e: &SgEvent<'_>, opts: &NormalizeOptions) -> Attribution {
    let legacy = e.unique_args.0.iter().flatten();
    let custom = e.custom.iter().chain(legacy).filter_map(|(k, v)| Some((k.as_ref(), v.0.as_deref()?)));
    let mut a = attribution_from_scalars(custom, opts);
    a.labels = e.category.0.iter().filter(|l| !l.is_empty()).map(|l| l.to_string()).collect();
    a.labels.sort();
    a.labels.dedup();
    a
}
