//! Resend events → a draft and its recipients
//! (<https://resend.com/docs/webhooks/event-types>, one page per type under `/docs/webhooks/emails/`).
//!
//! `data.tags` (an object, or a list of `{name, value}` as sent) become attribution by the
//! configured names and `name:value` labels otherwise.
//!
//! The event is read into [`ResendEvent`], borrowed and lenient (`providers/json.rs`), as the
//! earlier `serde_json::Value` pointer lookups read it (kept as `map_before.rs`, the tests'
//! oracle; issue 14: the `Value` trees were most of the other providers' cost).

use crate::providers::build::{attribution_from_tags, parse_time, IdSource};
use crate::providers::json::{lenient_struct, Key, Obj, OneOrMany, Str, Strs};
use crate::providers::{EventDraft, NormalizeError, NormalizeOptions};
use schemas::event::Attribution;
use schemas::{BounceClass, Channel, EventType};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::collections::BTreeMap;

lenient_struct! {
    /// What the mapping reads of a Resend event.
    pub struct ResendEvent<'a> {
        kind: Str<'a> = "type",
        created_at: Str<'a> = "created_at",
        data: Obj<Data<'a>> = "data",
    }
}

lenient_struct! {
    pub struct Data<'a> {
        email_id: Str<'a> = "email_id",
        to: OneOrMany<'a> = "to",
        bounce: Obj<Detail<'a>> = "bounce",
        click: Obj<Detail<'a>> = "click",
        failed: Obj<Detail<'a>> = "failed",
        suppressed: Obj<Detail<'a>> = "suppressed",
        tags: Tags<'a> = "tags",
        message_id: Str<'a> = "message_id",
        broadcast_id: Str<'a> = "broadcast_id",
        template_id: Str<'a> = "template_id",
    }
}

lenient_struct! {
    /// `bounce`, `click`, `failed`, `suppressed`: the union of the fields read of any.
    pub struct Detail<'a> {
        kind: Str<'a> = "type",
        sub_type: Str<'a> = "subType",
        message: Str<'a> = "message",
        diagnostic_code: Strs<'a> = "diagnosticCode",
        link: Str<'a> = "link",
        ip_address: Str<'a> = "ipAddress",
        user_agent: Str<'a> = "userAgent",
        reason: Str<'a> = "reason",
    }
}

lenient_struct! {
    pub struct Tag<'a> {
        name: Str<'a> = "name",
        value: Str<'a> = "value",
    }
}

/// `data.tags` as (name, value) pairs: an object's entries in key order (the last of a
/// repeated key; a value that is not a string gives no value), or a list's `{name, value}`
/// objects in order (those without a string name skipped); empty for any other type.
#[derive(Debug, Default)]
pub struct Tags<'a>(Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Tags<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Tags<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Tags<'a>, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((Key(k), Str(v))) = m.next_entry::<Key<'a>, Str<'a>>()? {
                    out.insert(k, v);
                }
                Ok(Tags(out.into_iter().collect()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Tags<'a>, A::Error> {
                let mut out = Vec::new();
                while let Some(Obj(t)) = s.next_element::<Obj<Tag<'a>>>()? {
                    if let Some(Tag { name: Str(Some(name)), value: Str(value), .. }) = t {
                        out.push((name, value));
                    }
                }
                Ok(Tags(out))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Tags<'a>, E> {
                Ok(Tags::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Tags<'a>, E> {
                Ok(Tags::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Tags<'a>, E> {
                Ok(Tags::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Tags<'a>, E> {
                Ok(Tags::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Tags<'a>, E> {
                Ok(Tags::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Tags<'a>, E> {
                Ok(Tags::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Reads a Resend event; `None` when the JSON is well formed but not an object.
fn parse(body: &[u8]) -> Result<Option<ResendEvent<'_>>, serde_json::Error> {
    serde_json::from_slice::<Obj<ResendEvent<'_>>>(body).map(|o| o.0)
}

/// `data.email_id`, if the body parses.
pub fn email_id_of(body: &[u8]) -> Option<String> {
    parse(body).ok()??.data.get()?.email_id.get().map(str::to_string)
}

/// Maps one event. `svix_id` is the `svix-id` header when ingest kept it: the event's identity.
/// Without it (a bare body, as in `normalizer check`) the body itself identifies the event.
pub fn draft(body: &[u8], svix_id: Option<&str>, opts: &NormalizeOptions) -> Result<(EventDraft, Vec<String>), NormalizeError> {
    let v = parse(body).map_err(|e| NormalizeError::InvalidJson(e.to_string()))?.unwrap_or_default();
    let name = v.kind.get().ok_or(NormalizeError::MissingField("type"))?;
    let empty = Data::default();
    let data = v.data.get().unwrap_or(&empty);
    let email_id = data.email_id.get().ok_or(NormalizeError::MissingField("data.email_id"))?;
    let recipients: Vec<String> = data.to.0.iter().map(|r| r.to_string()).collect();
    if recipients.iter().all(|r| r.trim().is_empty()) {
        return Err(NormalizeError::NoRecipients);
    }

    let mut d = EventDraft::new(Channel::Email, email_id, name, EventType::Unknown);
    if let Some(id) = svix_id.filter(|id| !id.is_empty()) {
        d.id_source = IdSource::ProviderEventId(id.to_string());
        d.provider_event_id = Some(id.to_string());
    }
    d.occurred_at = v.created_at.get().map(|t| parse_time("created_at", t)).transpose()?;
    d.attribution = attribution(data, opts);
    d.event_type = match name {
        "email.sent" => EventType::Sent,
        "email.delivered" => EventType::Delivered,
        "email.delivery_delayed" => EventType::Deferred,
        "email.bounced" => {
            d.bounce_class = Some(bounce_class(data.bounce.get().and_then(|b| b.kind.get())));
            d.error_code = text_of(&data.bounce, |b| &b.sub_type);
            d.error_reason = text_of(&data.bounce, |b| &b.message).or_else(|| diagnostic(data));
            EventType::Bounced
        }
        "email.complained" => EventType::Complained,
        "email.opened" => EventType::Opened,
        "email.clicked" => {
            d.click_url = text_of(&data.click, |c| &c.link);
            d.ip = text_of(&data.click, |c| &c.ip_address);
            d.user_agent = text_of(&data.click, |c| &c.user_agent);
            EventType::Clicked
        }
        "email.failed" => {
            d.error_code = text_of(&data.failed, |f| &f.reason);
            d.error_reason = text_of(&data.failed, |f| &f.reason);
            EventType::Failed
        }
        _ => {
            d.error_code = text_of(&data.suppressed, |x| &x.kind);
            d.error_reason = text_of(&data.suppressed, |x| &x.message);
            EventType::Unknown
        }
    };
    Ok((d, recipients))
}
fn bounce_class(kind: Option<&str>) -> BounceClass {
    match kind.map(str::to_ascii_lowercase).as_deref() {
        Some("transient" | "temporary" | "soft") => BounceClass::Soft,
        Some("undetermined") => BounceClass::Undetermined,
        _ => BounceClass::Hard,
    }
}

/// A string field of a detail object (`data.bounce`, ..) as text, if both are there.
fn text_of<'a>(o: &Obj<Detail<'a>>, field: impl for<'x> Fn(&'x Detail<'a>) -> &'x Str<'a>) -> Option<String> {
    o.get().and_then(|d| field(d).get()).map(str::to_string)
}

/// `bounce.diagnosticCode`: a list of SMTP responses.
fn diagnostic(data: &Data<'_>) -> Option<String> {
    let codes: Vec<&str> = data.bounce.get()?.diagnostic_code.all.iter().map(|c| c.as_ref()).collect();
    (!codes.is_empty()).then(|| codes.join("; "))
}

fn attribution(data: &Data<'_>, opts: &NormalizeOptions) -> Attribution {
    let tags = data.tags.0.iter().map(|(name, value)| (name.as_ref(), value.as_deref().into_iter().collect()));
    let mut a = attribution_from_tags(tags, opts);
    for (val, key) in [(&data.message_id, "message_id"), (&data.broadcast_id, "resend_broadcast_id"), (&data.template_id, "resend_template_id")] {
        if let Some(val) = val.get() {
            a.metadata.insert(key.to_string(), val.to_string());
        }
    }
    a
}
