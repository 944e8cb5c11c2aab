//! SES event JSON → drafts. Both styles are read: event publishing (`eventType`,
//! <https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html>)
//! and feedback notifications (`notificationType`,
//! <https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html>).
//!
//! The event is read into [`SesEvent`], borrowed and lenient (`providers/json.rs`): only the
//! fields mapped here, a field of an unexpected JSON type read as absent, as the earlier
//! `serde_json::Value` lookups did (issue 14: the `Value` tree was the mapping's largest cost).

use crate::providers::build::{attribution_from_tags, metadata_from_headers, parse_time, IdSource};
use crate::providers::json::{lenient_struct, Bool, Key, List, Obj, Present, Str, Strs};
use crate::providers::{EventDraft, NormalizeError, NormalizeOptions};
use schemas::{BounceClass, Channel, EventType};
use serde::Deserialize;
#[cfg(test)]
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

lenient_struct! {
    /// What the mapping reads of an SES event. `mail` and the event-type objects are boxed:
    /// unboxed, ten absent `Detail`s made the struct ~4.5 KB, copied by every layer that returned it (issue
    /// 14: `memcpy` was 7 % of SES's `handle`); boxed it is small and only the one present
    /// object is allocated.
    pub struct SesEvent<'a> {
        event_type: Str<'a> = "eventType",
        notification_type: Str<'a> = "notificationType",
        /// Present: EventBridge tells an event without `mail` (not about a message) apart.
        mail: Present<Obj<Box<Mail<'a>>>> = "mail",
        send: Obj<Box<Detail<'a>>> = "send",
        delivery: Obj<Box<Detail<'a>>> = "delivery",
        bounce: Obj<Box<Detail<'a>>> = "bounce",
        complaint: Obj<Box<Detail<'a>>> = "complaint",
        reject: Obj<Box<Detail<'a>>> = "reject",
        failure: Obj<Box<Detail<'a>>> = "failure",
        open: Obj<Box<Detail<'a>>> = "open",
        click: Obj<Box<Detail<'a>>> = "click",
        delivery_delay: Obj<Box<Detail<'a>>> = "deliveryDelay",
        subscription: Obj<Box<Detail<'a>>> = "subscription",
    }
}

lenient_struct! {
    /// `mail`: the message the event is about.
    pub struct Mail<'a> {
        message_id: Str<'a> = "messageId",
        timestamp: Str<'a> = "timestamp",
        destination: Strs<'a> = "destination",
        tags: Obj<Tags<'a>> = "tags",
        headers: List<Header<'a>> = "headers",
        sending_account_id: Str<'a> = "sendingAccountId",
    }
}

lenient_struct! {
    pub struct Header<'a> {
        name: Str<'a> = "name",
        value: Str<'a> = "value",
    }
}

lenient_struct! {
    /// The event-type object (`bounce`, `click`, ..): the union of the fields read of any.
    pub struct Detail<'a> {
        timestamp: Str<'a> = "timestamp",
        recipients: Strs<'a> = "recipients",
        bounce_type: Str<'a> = "bounceType",
        bounce_sub_type: Str<'a> = "bounceSubType",
        bounced_recipients: List<Recipient<'a>> = "bouncedRecipients",
        complained_recipients: List<Recipient<'a>> = "complainedRecipients",
        delayed_recipients: List<Recipient<'a>> = "delayedRecipients",
        user_agent: Str<'a> = "userAgent",
        complaint_feedback_type: Str<'a> = "complaintFeedbackType",
        reason: Str<'a> = "reason",
        error_message: Str<'a> = "errorMessage",
        ip_address: Str<'a> = "ipAddress",
        link: Str<'a> = "link",
        delay_type: Str<'a> = "delayType",
        new_topic_preferences: Obj<TopicPreferences<'a>> = "newTopicPreferences",
    }
}

lenient_struct! {
    pub struct Recipient<'a> {
        email_address: Str<'a> = "emailAddress",
        diagnostic_code: Str<'a> = "diagnosticCode",
    }
}

lenient_struct! {
    pub struct TopicPreferences<'a> {
        unsubscribe_all: Bool = "unsubscribeAll",
        topic_subscription_status: List<TopicStatus<'a>> = "topicSubscriptionStatus",
    }
}

lenient_struct! {
    pub struct TopicStatus<'a> {
        subscription_status: Str<'a> = "subscriptionStatus",
    }
}

/// `mail.tags`: tag name → values, in name order, the last of a repeated name kept (as a
/// `Value` map kept them).
#[derive(Debug, Default)]
pub struct Tags<'a>(pub BTreeMap<Cow<'a, str>, Strs<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Tags<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Tags<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((Key(k), v)) = m.next_entry::<Key<'a>, Strs<'a>>()? {
                    out.insert(k, v);
                }
                Ok(Tags(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> SesEvent<'a> {
    /// Reads an SES event; `None` when the JSON is well formed but not an object.
    pub fn parse(json: &'a str) -> Result<Option<SesEvent<'a>>, serde_json::Error> {
        serde_json::from_str::<Obj<SesEvent<'a>>>(json).map(|o| o.0)
    }

    /// Reads an SES event from an already parsed value (the tests' `Value` oracle).
    #[cfg(test)]
    pub fn of_value(v: &'a Value) -> Option<SesEvent<'a>> {
        // A `Value` is well formed and has no repeated keys: reading it cannot fail.
        Obj::<SesEvent<'a>>::deserialize(v).ok().and_then(|o| o.0)
    }

    /// `mail.messageId`, if there.
    pub fn message_id(&self) -> Option<&str> {
        self.mail.get().and_then(|m| m.message_id.get())
    }
}

lenient_struct! {
    /// What the edge reads of an SES event: `mail.messageId` alone, the partition key (every
    /// other field is skipped, not built: the whole `SesEvent` was ~9 % of ingest's CPU per
    /// request; BENCHMARKS.md §10, "the SES edge reads one id").
    struct IdProbe<'a> {
        mail: Obj<MailId<'a>> = "mail",
    }
}

lenient_struct! {
    struct MailId<'a> {
        message_id: Str<'a> = "messageId",
    }
}

/// `mail.messageId` of an SES event, if the message parses (the same leniency as
/// [`SesEvent::parse`]: a field of another type counts as absent).
pub fn message_id_of(message: &str) -> Option<String> {
    let probe = serde_json::from_str::<Obj<IdProbe<'_>>>(message).ok()?.0?;
    probe.mail.get()?.message_id.get().map(str::to_string)
}

/// `mail.messageId` of a parsed SES event.
#[cfg(test)]
pub fn message_id_in(v: &Value) -> Option<String> {
    SesEvent::of_value(v)?.message_id().map(str::to_string)
}

/// Time `s` read from JSON pointer `ptr` (named in the error), or `None` when absent.
fn time_of(s: &Str<'_>, ptr: &'static str) -> Result<Option<i64>, NormalizeError> {
    s.get().map(|s| parse_time(ptr, s)).transpose()
}

/// Recipient addresses of an object list such as `bounce.bouncedRecipients`, with a per-recipient field.
fn recipients_with<'a>(list: &'a List<Recipient<'_>>, field: impl Fn(&'a Recipient<'_>) -> Option<&'a str>) -> Vec<(&'a str, Option<&'a str>)> {
    list.0.iter().filter_map(|r| Some((r.email_address.get()?, field(r)))).collect()
}

fn strings(s: &Strs<'_>) -> Vec<String> {
    s.all.iter().map(|x| x.to_string()).collect()
}

/// Maps one SES event (the SNS `Message`) into drafts with their recipients.
/// `report_id` identifies the report (the SNS MessageId, stable across SNS retries).
pub fn drafts(message: &str, report_id: &str, opts: &NormalizeOptions) -> Result<Vec<(EventDraft, Vec<String>)>, NormalizeError> {
    let event = SesEvent::parse(message).map_err(|e| NormalizeError::InvalidJson(format!("SNS Message: {e}")))?;
    drafts_of_event(&event.unwrap_or_default(), report_id, opts)
}

/// Maps one parsed SES event into drafts (the tests' `Value` oracle).
/// `report_id` identifies the report: the SNS MessageId or the EventBridge event id.
#[cfg(test)]
pub fn drafts_of(v: &Value, report_id: &str, opts: &NormalizeOptions) -> Result<Vec<(EventDraft, Vec<String>)>, NormalizeError> {
    drafts_of_event(&SesEvent::of_value(v).unwrap_or_default(), report_id, opts)
}

/// Maps one SES event into drafts.
pub fn drafts_of_event(v: &SesEvent<'_>, report_id: &str, opts: &NormalizeOptions) -> Result<Vec<(EventDraft, Vec<String>)>, NormalizeError> {
    let name = v.event_type.get().or_else(|| v.notification_type.get()).ok_or(NormalizeError::MissingField("eventType"))?;
    let empty = Mail::default();
    let mail: &Mail<'_> = v.mail.get().map_or(&empty, |m| m);
    let message_id = mail.message_id.get().ok_or(NormalizeError::MissingField("mail.messageId"))?;
    let mail_time = time_of(&mail.timestamp, "/mail/timestamp")?;
    let destination = || strings(&mail.destination);

    let mut base = EventDraft::new(Channel::Email, message_id, name, EventType::Unknown);
    base.id_source = IdSource::ProviderEventId(report_id.to_string());
    base.provider_event_id = Some(report_id.to_string());
    base.occurred_at = mail_time;
    base.attribution = attribution(mail, opts);

    let no_detail = Detail::default();
    // Called once, in the arm of the event's type: the draft is `base` itself, not a copy.
    let with = |event_type: EventType, d: &Detail<'_>, ptr: &'static str| -> Result<EventDraft, NormalizeError> {
        let mut draft = base;
        draft.event_type = event_type;
        if let Some(t) = time_of(&d.timestamp, ptr)? {
            draft.occurred_at = Some(t);
        }
        Ok(draft)
    };
    fn or<'s, 'a>(o: &'s Obj<Box<Detail<'a>>>, none: &'s Detail<'a>) -> &'s Detail<'a> {
        o.get().map_or(none, |d| d)
    }
    let of = |o| or(o, &no_detail);

    let out = match name {
        "Send" => vec![(with(EventType::Sent, of(&v.send), "/send/timestamp")?, destination())],
        "Delivery" => {
            let dv = of(&v.delivery);
            let mut d = with(EventType::Delivered, dv, "/delivery/timestamp")?;
            d.error_reason = None;
            let rcpts = strings(&dv.recipients);
            vec![(d, if rcpts.is_empty() { destination() } else { rcpts })]
        }
        "Bounce" => {
            let b = of(&v.bounce);
            let mut d = with(EventType::Bounced, b, "/bounce/timestamp")?;
            d.bounce_class = Some(match b.bounce_type.get() {
                Some("Permanent") => BounceClass::Hard,
                Some("Transient") => BounceClass::Soft,
                _ => BounceClass::Undetermined,
            });
            d.error_code = b.bounce_sub_type.get().map(str::to_string);
            per_recipient(&d, recipients_with(&b.bounced_recipients, |r| r.diagnostic_code.get()))
        }
        "Complaint" => {
            let c = of(&v.complaint);
            let mut d = with(EventType::Complained, c, "/complaint/timestamp")?;
            d.user_agent = c.user_agent.get().map(str::to_string);
            d.error_code = c.complaint_feedback_type.get().map(str::to_string);
            per_recipient(&d, recipients_with(&c.complained_recipients, |_| None))
        }
        "Reject" => {
            let r = of(&v.reject);
            let mut d = with(EventType::Failed, r, "/reject/timestamp")?;
            d.error_reason = r.reason.get().map(str::to_string);
            vec![(d, destination())]
        }
        "Rendering Failure" => {
            let f = of(&v.failure);
            let mut d = with(EventType::Failed, f, "/failure/timestamp")?;
            d.error_reason = f.error_message.get().map(str::to_string);
            d.error_code = Some("rendering_failure".into());
            vec![(d, destination())]
        }
        "Open" => {
            let o = of(&v.open);
            let mut d = with(EventType::Opened, o, "/open/timestamp")?;
            d.user_agent = o.user_agent.get().map(str::to_string);
            d.ip = o.ip_address.get().map(str::to_string);
            vec![(d, destination())]
        }
        "Click" => {
            let c = of(&v.click);
            let mut d = with(EventType::Clicked, c, "/click/timestamp")?;
            d.user_agent = c.user_agent.get().map(str::to_string);
            d.ip = c.ip_address.get().map(str::to_string);
            d.click_url = c.link.get().map(str::to_string);
            vec![(d, destination())]
        }
        "DeliveryDelay" => {
            let dd = of(&v.delivery_delay);
            let mut d = with(EventType::Deferred, dd, "/deliveryDelay/timestamp")?;
            let delay_type = dd.delay_type.get().unwrap_or("Undetermined");
            d.error_code = Some(delay_type.to_string());
            recipients_with(&dd.delayed_recipients, |r| r.diagnostic_code.get())
                .into_iter()
                .map(|(r, diag)| {
                    let mut d = d.clone();
                    d.error_reason = Some(diag.map_or(delay_type.to_string(), |x| format!("{delay_type}: {x}")));
                    (d, vec![r.to_string()])
                })
                .collect()
        }
        "Subscription" => {
            let s = of(&v.subscription);
            let prefs = s.new_topic_preferences.get();
            let unsubscribed = prefs.is_some_and(|p| {
                p.unsubscribe_all.0 == Some(true)
                    || p.topic_subscription_status.0.iter().any(|t| t.subscription_status.get() == Some("OptOut"))
            });
            let event_type = if unsubscribed { EventType::Unsubscribed } else { EventType::Unknown };
            vec![(with(event_type, s, "/subscription/timestamp")?, destination())]
        }
        // Kept, never dropped: an SES event type we have no canonical name for.
        _ => vec![(with(EventType::Unknown, &no_detail, "/")?, destination())],
    };
    if out.iter().all(|(_, r)| r.is_empty()) {
        return Err(NormalizeError::NoRecipients);
    }
    Ok(out)
}

fn per_recipient(d: &EventDraft, rcpts: Vec<(&str, Option<&str>)>) -> Vec<(EventDraft, Vec<String>)> {
    rcpts
        .into_iter()
        .map(|(r, reason)| {
            let mut d = d.clone();
            d.error_reason = reason.map(str::to_string);
            (d, vec![r.to_string()])
        })
        .collect()
}

/// `mail.tags` (name → [values]) and `mail.headers` ([{name, value}]).
fn attribution(mail: &Mail<'_>, opts: &NormalizeOptions) -> schemas::event::Attribution {
    let tags = mail.tags.get();
    let user_tags = tags
        .into_iter()
        .flat_map(|t| t.0.iter())
        .filter(|(k, _)| !k.starts_with("ses:"))
        .map(|(k, vals)| (k.as_ref(), vals.all.iter().map(Cow::as_ref).collect::<Vec<&str>>()));
    let mut a = attribution_from_tags(user_tags, opts);
    let headers = mail.headers.0.iter().filter_map(|h| Some((h.name.get()?, h.value.get()?)));
    a.metadata = metadata_from_headers(headers, opts);
    // SES system tags worth keeping as metadata
    for (tag, key) in [("ses:configuration-set", "configuration_set"), ("ses:from-domain", "from_domain"), ("ses:source-ip", "source_ip")] {
        if let Some(val) = tags.and_then(|t| t.0.get(tag)).and_then(|vals| vals.first.as_deref()) {
            a.metadata.insert(key.to_string(), val.to_string());
        }
    }
    if let Some(acct) = mail.sending_account_id.get() {
        a.metadata.insert("sending_account".into(), acct.to_string());
    }
    a
}
