//! Postmark webhook records → drafts, keyed on `RecordType`
//! (Delivery, Bounce, SpamComplaint, Open, Click, SubscriptionChange; examples at
//! <https://postmarkapp.com/developer/webhooks/webhooks-overview> and the per-type pages).
//!
//! The record is read into [`Record`], borrowed and lenient (`providers/json.rs`), as the
//! earlier `serde_json::Value` lookups read it (kept as `map_before.rs`, the tests' oracle;
//! issue 14: the `Value` trees were most of the other providers' cost).

use crate::providers::build::{attribution_from_scalars, parse_time, IdSource};
use crate::providers::json::{lenient_struct, Bool, Obj, Scalars, Skip, Str};
use crate::providers::{EventDraft, NormalizeError, NormalizeOptions};
use schemas::event::Attribution;
use schemas::{BounceClass, Channel, EventType};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

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

lenient_struct! {
    /// What the mapping reads of a webhook record (every record type's fields).
    pub struct Record<'a> {
        record_type: Str<'a> = "RecordType",
        message_id: Str<'a> = "MessageID",
        recipient: Str<'a> = "Recipient",
        email: Str<'a> = "Email",
        id: Id = "ID",
        delivered_at: Str<'a> = "DeliveredAt",
        bounced_at: Str<'a> = "BouncedAt",
        received_at: Str<'a> = "ReceivedAt",
        changed_at: Str<'a> = "ChangedAt",
        kind: Str<'a> = "Type",
        inactive: Bool = "Inactive",
        details: Str<'a> = "Details",
        description: Str<'a> = "Description",
        original_link: Str<'a> = "OriginalLink",
        suppress_sending: Bool = "SuppressSending",
        suppression_reason: Str<'a> = "SuppressionReason",
        user_agent: Str<'a> = "UserAgent",
        geo: Obj<Named<'a>> = "Geo",
        client: Obj<Named<'a>> = "Client",
        os: Obj<Named<'a>> = "OS",
        platform: Str<'a> = "Platform",
        metadata: Scalars<'a> = "Metadata",
        tag: Str<'a> = "Tag",
        message_stream: Str<'a> = "MessageStream",
    }
}

lenient_struct! {
    /// `Geo`, `Client`, `OS`: the one field read of each.
    pub struct Named<'a> {
        name: Str<'a> = "Name",
        ip: Str<'a> = "IP",
    }
}

/// A Postmark id (a JSON integer, sometimes a string) as text, without going through a float;
/// `None` for a float, an empty string or any other type.
#[derive(Debug, Default)]
pub struct Id(Option<String>);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Id, E> {
                Ok(Id(Some(n.to_string())))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Id, E> {
                Ok(Id(Some(n.to_string())))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Id, E> {
                Ok(Id((!s.is_empty()).then(|| s.to_string())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Id, A::Error> {
                while m.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Id(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Id, A::Error> {
                while s.next_element::<Skip>()?.is_some() {}
                Ok(Id(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a webhook body: a JSON object with a `RecordType`.
pub fn parse(body: &[u8]) -> Result<Record<'_>, NormalizeError> {
    let record = serde_json::from_slice::<Obj<Record<'_>>>(body)
        .map_err(|e| NormalizeError::InvalidJson(e.to_string()))?
        .0
        .ok_or_else(|| NormalizeError::InvalidJson("body is not a JSON object".into()))?;
    if non_empty(&record.record_type).is_none() {
        return Err(NormalizeError::MissingField("RecordType"));
    }
    Ok(record)
}

pub fn message_id<'r>(record: &'r Record<'_>) -> Option<&'r str> {
    non_empty(&record.message_id)
}

/// A string field, if a non-empty string.
fn non_empty<'r>(s: &'r Str<'_>) -> Option<&'r str> {
    s.get().filter(|s| !s.is_empty())
}

/// `Name` (or `IP`) of an object field, if a non-empty string.
fn inner<'r, 'a>(o: &'r Obj<Named<'a>>, field: impl Fn(&'r Named<'a>) -> &'r Str<'a>) -> Option<&'r str> {
    o.get().and_then(|n| non_empty(field(n)))
}

fn time_of(s: &Str<'_>, key: &'static str) -> Result<Option<i64>, NormalizeError> {
    non_empty(s).map(|s| parse_time(key, s)).transpose()
}

pub fn draft(record: &Record<'_>, opts: &NormalizeOptions) -> Result<(EventDraft, String), NormalizeError> {
    let name = non_empty(&record.record_type).ok_or(NormalizeError::MissingField("RecordType"))?;
    let message_id = message_id(record).ok_or(NormalizeError::MissingField("MessageID"))?;
    let recipient = non_empty(&record.recipient)
        .or_else(|| non_empty(&record.email))
        .ok_or(NormalizeError::NoRecipients)?
        .to_string();

    let mut d = EventDraft::new(Channel::Email, message_id, name, EventType::Unknown);
    d.attribution = attribution(record, opts);
    // Bounce and SpamComplaint records carry Postmark's own id; the others are keyed by the body.
    if let Some(id) = record.id.0.clone() {
        d.id_source = IdSource::ProviderEventId(id.clone());
        d.provider_event_id = Some(id);
    }

    match name {
        "Delivery" => {
            d.event_type = EventType::Delivered;
            d.occurred_at = time_of(&record.delivered_at, "DeliveredAt")?;
        }
        "Bounce" => {
            d.occurred_at = time_of(&record.bounced_at, "BouncedAt")?;
            let bounce_type = non_empty(&record.kind);
            let inactive = record.inactive.0 == Some(true);
            match bounce_meaning(bounce_type, inactive) {
                BounceMeaning::Bounce(class) => {
                    d.event_type = EventType::Bounced;
                    d.bounce_class = Some(class);
                }
                BounceMeaning::SendFailure => d.event_type = EventType::Failed,
            }
            d.error_code = bounce_type.map(str::to_string);
            d.error_reason = non_empty(&record.details).or_else(|| non_empty(&record.description)).map(str::to_string);
        }
        "SpamComplaint" => {
            d.event_type = EventType::Complained;
            d.occurred_at = time_of(&record.bounced_at, "BouncedAt")?;
        }
        "Open" => {
            d.event_type = EventType::Opened;
            d.occurred_at = time_of(&record.received_at, "ReceivedAt")?;
            client_details(record, &mut d);
        }
        "Click" => {
            d.event_type = EventType::Clicked;
            d.occurred_at = time_of(&record.received_at, "ReceivedAt")?;
            d.click_url = non_empty(&record.original_link).map(str::to_string);
            client_details(record, &mut d);
        }
        "SubscriptionChange" => {
            let suppressed = record.suppress_sending.0 == Some(true);
            d.event_type = if suppressed { EventType::Unsubscribed } else { EventType::Unknown };
            d.occurred_at = time_of(&record.changed_at, "ChangedAt")?;
            d.error_code = non_empty(&record.suppression_reason).map(str::to_string);
        }
        // Kept, never dropped: a record type we have no canonical name for.
        _ => {}
    }
    Ok((d, recipient))
}

/// Open and Click: user agent, IP, and the client / OS / platform Postmark recognised.
fn client_details(record: &Record<'_>, d: &mut EventDraft) {
    d.user_agent = non_empty(&record.user_agent).map(str::to_string);
    d.ip = inner(&record.geo, |n| &n.ip).map(str::to_string);
    for (key, value) in [
        ("client", inner(&record.client, |n| &n.name)),
        ("os", inner(&record.os, |n| &n.name)),
        ("platform", non_empty(&record.platform)),
    ] {
        if let Some(v) = value {
            d.attribution.metadata.insert(key.to_string(), v.to_string());
        }
    }
}

/// `Metadata` keys named in [`NormalizeOptions`] become attribution, the other keys metadata;
/// the message `Tag` becomes a label and `MessageStream` metadata.
fn attribution(record: &Record<'_>, opts: &NormalizeOptions) -> Attribution {
    let meta = record.metadata.0.iter().flatten().filter_map(|(k, v)| Some((k.as_ref(), v.0.as_deref()?)));
    let mut a = attribution_from_scalars(meta, opts);
    if let Some(tag) = non_empty(&record.tag) {
        a.labels = vec![tag.to_string()];
    }
    if let Some(stream) = non_empty(&record.message_stream) {
        a.metadata.insert("message_stream".into(), stream.to_string());
    }
    a
}
