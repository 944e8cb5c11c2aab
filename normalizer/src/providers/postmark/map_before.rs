//! The `serde_json::Value` mapping that `map.rs` replaced (issue 14), kept for tests only: the
//! oracle `tests.rs` holds the borrowed mapping to on odd inputs.
//!
//! Postmark webhook records → drafts, keyed on `RecordType`
//! (Delivery, Bounce, SpamComplaint, Open, Click, SubscriptionChange; examples at
//! <https://postmarkapp.com/developer/webhooks/webhooks-overview> and the per-type pages).

use crate::providers::build::{attribution_from_tags, parse_time, IdSource};
use crate::providers::{EventDraft, NormalizeError, NormalizeOptions};
use schemas::event::Attribution;
use schemas::{BounceClass, Channel, EventType};
use serde_json::{Map, Value};

/// What a bounce `Type` means, after Postmark's "Bounce types" table
/// (<https://postmarkapp.com/developer/api/bounce-api#bounce-types>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceMeaning {
    /// A bounce of this class.
    Bounce(BounceClass),
    /// Not about the recipient: the message never left (rendering, API errors).
    SendFailure,
}

/// `Type` (with its documented `TypeCode`) → meaning. Hard: the address is permanently
/// unusable or deactivated. Soft: temporary, or the message reached the mailbox
/// (auto-replies, spam filtering, challenges). Undetermined: Postmark itself cannot tell.
pub const BOUNCE_TYPES: &[(&str, u32, BounceMeaning)] = {
    use BounceClass::{Hard, Soft, Undetermined};
    use BounceMeaning::{Bounce, SendFailure};
    &[
        ("HardBounce", 1, Bounce(Hard)),                  // unknown user, mailbox not found
        ("Transient", 2, Bounce(Soft)),                   // delayed, temporary network trouble
        ("Unsubscribe", 16, Bounce(Hard)),                // recipient asked to be removed
        ("Subscribe", 32, Bounce(Undetermined)),          // subscribe request, not a failure
        ("AutoResponder", 64, Bounce(Soft)),              // out of office and the like
        ("AddressChange", 128, Bounce(Soft)),             // recipient announced a new address
        ("DnsError", 256, Bounce(Soft)),                  // temporary DNS error
        ("SpamNotification", 512, Bounce(Soft)),          // filtered as spam: content, not address
        ("OpenRelayTest", 1024, Bounce(Undetermined)),
        ("Unknown", 2048, Bounce(Undetermined)),
        ("SoftBounce", 4096, Bounce(Soft)),               // mailbox full, over quota
        ("VirusNotification", 8192, Bounce(Soft)),
        ("ChallengeVerification", 16384, Bounce(Soft)),   // challenge-response filter
        ("BadEmailAddress", 100000, Bounce(Hard)),        // invalid address
        ("SpamComplaint", 100001, Bounce(Hard)),          // address deactivated after a complaint
        ("ManuallyDeactivated", 100002, Bounce(Hard)),
        ("Unconfirmed", 100003, Bounce(Soft)),            // registration not confirmed
        ("Blocked", 100006, Bounce(Soft)),                // ISP block; may lift
        ("SMTPApiError", 100007, SendFailure),
        ("InboundError", 100008, SendFailure),
        ("DMARCPolicy", 100009, Bounce(Soft)),            // rejected under the sender's DMARC policy
        ("TemplateRenderingFailed", 100010, SendFailure),
    ]
};

/// The meaning of a bounce `Type`; an undocumented type is hard only if Postmark deactivated the address.
pub fn bounce_meaning(bounce_type: Option<&str>, inactive: bool) -> BounceMeaning {
    BOUNCE_TYPES
        .iter()
        .find(|(name, _, _)| Some(*name) == bounce_type)
        .map(|(_, _, m)| *m)
        .unwrap_or(BounceMeaning::Bounce(if inactive { BounceClass::Hard } else { BounceClass::Undetermined }))
}

/// Parses a webhook body: a JSON object with a `RecordType`.
pub fn parse(body: &[u8]) -> Result<Map<String, Value>, NormalizeError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| NormalizeError::InvalidJson(e.to_string()))?;
    let Value::Object(record) = v else {
        return Err(NormalizeError::InvalidJson("body is not a JSON object".into()));
    };
    if str_of(&record, "RecordType").is_none() {
        return Err(NormalizeError::MissingField("RecordType"));
    }
    Ok(record)
}

pub fn message_id(record: &Map<String, Value>) -> Option<&str> {
    str_of(record, "MessageID")
}

fn str_of<'a>(record: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    record.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn str_at<'a>(record: &'a Map<String, Value>, key: &str, inner: &str) -> Option<&'a str> {
    record.get(key).and_then(|v| v.get(inner)).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn time_of(record: &Map<String, Value>, key: &'static str) -> Result<Option<i64>, NormalizeError> {
    str_of(record, key).map(|s| parse_time(key, s)).transpose()
}

/// Maps one record to its draft and recipient.
pub fn draft(record: &Map<String, Value>, opts: &NormalizeOptions) -> Result<(EventDraft, String), NormalizeError> {
    let name = str_of(record, "RecordType").ok_or(NormalizeError::MissingField("RecordType"))?;
    let message_id = message_id(record).ok_or(NormalizeError::MissingField("MessageID"))?;
    let recipient = str_of(record, "Recipient")
        .or_else(|| str_of(record, "Email"))
        .ok_or(NormalizeError::NoRecipients)?
        .to_string();

    let mut d = EventDraft::new(Channel::Email, message_id, name, EventType::Unknown);
    d.attribution = attribution(record, opts);
    // Bounce and SpamComplaint records carry Postmark's own id; the others are keyed by the body.
    if let Some(id) = record.get("ID").and_then(id_string) {
        d.id_source = IdSource::ProviderEventId(id.clone());
        d.provider_event_id = Some(id);
    }

    match name {
        "Delivery" => {
            d.event_type = EventType::Delivered;
            d.occurred_at = time_of(record, "DeliveredAt")?;
        }
        "Bounce" => {
            d.occurred_at = time_of(record, "BouncedAt")?;
            let bounce_type = str_of(record, "Type");
            let inactive = record.get("Inactive").and_then(Value::as_bool) == Some(true);
            match bounce_meaning(bounce_type, inactive) {
                BounceMeaning::Bounce(class) => {
                    d.event_type = EventType::Bounced;
                    d.bounce_class = Some(class);
                }
                BounceMeaning::SendFailure => d.event_type = EventType::Failed,
            }
            d.error_code = bounce_type.map(str::to_string);
            d.error_reason = str_of(record, "Details").or_else(|| str_of(record, "Description")).map(str::to_string);
        }
        "SpamComplaint" => {
            d.event_type = EventType::Complained;
            d.occurred_at = time_of(record, "BouncedAt")?;
        }
        "Open" => {
            d.event_type = EventType::Opened;
            d.occurred_at = time_of(record, "ReceivedAt")?;
            client_details(record, &mut d);
        }
        "Click" => {
            d.event_type = EventType::Clicked;
            d.occurred_at = time_of(record, "ReceivedAt")?;
            d.click_url = str_of(record, "OriginalLink").map(str::to_string);
            client_details(record, &mut d);
        }
        "SubscriptionChange" => {
            let suppressed = record.get("SuppressSending").and_then(Value::as_bool) == Some(true);
            d.event_type = if suppressed { EventType::Unsubscribed } else { EventType::Unknown };
            d.occurred_at = time_of(record, "ChangedAt")?;
            d.error_code = str_of(record, "SuppressionReason").map(str::to_string);
        }
        // Kept, never dropped: a record type we have no canonical name for.
        _ => {}
    }
    Ok((d, recipient))
}

/// Open and Click: user agent, IP, and the client / OS / platform Postmark recognised.
fn client_details(record: &Map<String, Value>, d: &mut EventDraft) {
    d.user_agent = str_of(record, "UserAgent").map(str::to_string);
    d.ip = str_at(record, "Geo", "IP").map(str::to_string);
    for (key, value) in [
        ("client", str_at(record, "Client", "Name")),
        ("os", str_at(record, "OS", "Name")),
        ("platform", str_of(record, "Platform")),
    ] {
        if let Some(v) = value {
            d.attribution.metadata.insert(key.to_string(), v.to_string());
        }
    }
}

/// A Postmark id (a JSON integer, sometimes a string) as text, without going through a float.
fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// `Metadata` keys named in [`NormalizeOptions`] become attribution, the other keys metadata;
/// the message `Tag` becomes a label and `MessageStream` metadata.
fn attribution(record: &Map<String, Value>, opts: &NormalizeOptions) -> Attribution {
    let names = [&opts.broadcast_tag, &opts.sequence_tag, &opts.contact_tag, &opts.template_tag, &opts.message_class_tag];
    let meta: Vec<(&str, String)> = record
        .get("Metadata")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k.as_str(), s.clone())),
                    Value::Number(n) => Some((k.as_str(), n.to_string())),
                    Value::Bool(b) => Some((k.as_str(), b.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let (named, rest): (Vec<_>, Vec<_>) = meta.iter().partition(|(k, _)| names.iter().any(|n| n.as_str() == *k));
    let mut a = attribution_from_tags(named.iter().map(|(k, v)| (*k, vec![v.as_str()])), opts);
    a.metadata = rest.into_iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    if let Some(tag) = str_of(record, "Tag") {
        a.labels = vec![tag.to_string()];
    }
    if let Some(stream) = str_of(record, "MessageStream") {
        a.metadata.insert("message_stream".into(), stream.to_string());
    }
    a
}
