//! The SES mapping as it was before issue 14 (over `serde_json::Value`), kept for tests only:
//! the borrowed mapping in `map.rs` must agree with it on any input, odd types included.

use crate::providers::build::{attribution_from_tags, metadata_from_headers, parse_time, IdSource};
use crate::providers::{EventDraft, NormalizeError, NormalizeOptions};
use schemas::{BounceClass, Channel, EventType};
use serde_json::Value;

/// `mail.messageId` of an SES event, if the message parses.
pub fn message_id_of(message: &str) -> Option<String> {
    let v: Value = serde_json::from_str(message).ok()?;
    message_id_in(&v)
}

/// `mail.messageId` of a parsed SES event.
pub fn message_id_in(v: &Value) -> Option<String> {
    str_at(v, "/mail/messageId").map(str::to_string)
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn strings_at<'a>(v: &'a Value, ptr: &str) -> Vec<&'a str> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Time at `ptr`, or `None` when absent.
fn time_at(v: &Value, ptr: &'static str) -> Result<Option<i64>, NormalizeError> {
    str_at(v, ptr).map(|s| parse_time(ptr, s)).transpose()
}

/// Recipient addresses of an object list such as `bounce.bouncedRecipients`, with a per-recipient field.
fn recipients_with<'a>(v: &'a Value, list: &str, field: &str) -> Vec<(&'a str, Option<&'a str>)> {
    v.pointer(list)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| Some((r.get("emailAddress")?.as_str()?, r.get(field).and_then(Value::as_str))))
                .collect()
        })
        .unwrap_or_default()
}

/// Maps one SES event (the SNS `Message`) into drafts with their recipients.
/// `report_id` identifies the report (the SNS MessageId, stable across SNS retries).
pub fn drafts(message: &str, report_id: &str, opts: &NormalizeOptions) -> Result<Vec<(EventDraft, Vec<String>)>, NormalizeError> {
    let v: Value = serde_json::from_str(message).map_err(|e| NormalizeError::InvalidJson(format!("SNS Message: {e}")))?;
    drafts_of(&v, report_id, opts)
}

/// Maps one parsed SES event (an SNS `Message`, or an EventBridge `detail`) into drafts.
/// `report_id` identifies the report: the SNS MessageId or the EventBridge event id.
pub fn drafts_of(v: &Value, report_id: &str, opts: &NormalizeOptions) -> Result<Vec<(EventDraft, Vec<String>)>, NormalizeError> {
    let name = str_at(v, "/eventType")
        .or_else(|| str_at(v, "/notificationType"))
        .ok_or(NormalizeError::MissingField("eventType"))?
        .to_string();
    let message_id = str_at(v, "/mail/messageId").ok_or(NormalizeError::MissingField("mail.messageId"))?;
    let mail_time = time_at(v, "/mail/timestamp")?;
    let destination: Vec<String> = strings_at(v, "/mail/destination").into_iter().map(str::to_string).collect();

    let mut base = EventDraft::new(Channel::Email, message_id, name.clone(), EventType::Unknown);
    base.id_source = IdSource::ProviderEventId(report_id.to_string());
    base.provider_event_id = Some(report_id.to_string());
    base.occurred_at = mail_time;
    base.attribution = attribution(v, opts);

    let with = |event_type: EventType, ptr: &'static str| -> Result<EventDraft, NormalizeError> {
        let mut d = base.clone();
        d.event_type = event_type;
        if let Some(t) = time_at(v, ptr)? {
            d.occurred_at = Some(t);
        }
        Ok(d)
    };

    let out = match name.as_str() {
        "Send" => vec![(with(EventType::Sent, "/send/timestamp")?, destination)],
        "Delivery" => {
            let mut d = with(EventType::Delivered, "/delivery/timestamp")?;
            d.error_reason = None;
            let rcpts: Vec<String> = strings_at(v, "/delivery/recipients").into_iter().map(str::to_string).collect();
            vec![(d, if rcpts.is_empty() { destination } else { rcpts })]
        }
        "Bounce" => {
            let mut d = with(EventType::Bounced, "/bounce/timestamp")?;
            d.bounce_class = Some(match str_at(v, "/bounce/bounceType") {
                Some("Permanent") => BounceClass::Hard,
                Some("Transient") => BounceClass::Soft,
                _ => BounceClass::Undetermined,
            });
            d.error_code = str_at(v, "/bounce/bounceSubType").map(str::to_string);
            per_recipient(&d, recipients_with(v, "/bounce/bouncedRecipients", "diagnosticCode"))
        }
        "Complaint" => {
            let mut d = with(EventType::Complained, "/complaint/timestamp")?;
            d.user_agent = str_at(v, "/complaint/userAgent").map(str::to_string);
            d.error_code = str_at(v, "/complaint/complaintFeedbackType").map(str::to_string);
            let rcpts = recipients_with(v, "/complaint/complainedRecipients", "-");
            per_recipient(&d, rcpts)
        }
        "Reject" => {
            let mut d = with(EventType::Failed, "/reject/timestamp")?;
            d.error_reason = str_at(v, "/reject/reason").map(str::to_string);
            vec![(d, destination)]
        }
        "Rendering Failure" => {
            let mut d = with(EventType::Failed, "/failure/timestamp")?;
            d.error_reason = str_at(v, "/failure/errorMessage").map(str::to_string);
            d.error_code = Some("rendering_failure".into());
            vec![(d, destination)]
        }
        "Open" => {
            let mut d = with(EventType::Opened, "/open/timestamp")?;
            d.user_agent = str_at(v, "/open/userAgent").map(str::to_string);
            d.ip = str_at(v, "/open/ipAddress").map(str::to_string);
            vec![(d, destination)]
        }
        "Click" => {
            let mut d = with(EventType::Clicked, "/click/timestamp")?;
            d.user_agent = str_at(v, "/click/userAgent").map(str::to_string);
            d.ip = str_at(v, "/click/ipAddress").map(str::to_string);
            d.click_url = str_at(v, "/click/link").map(str::to_string);
            vec![(d, destination)]
        }
        "DeliveryDelay" => {
            let mut d = with(EventType::Deferred, "/deliveryDelay/timestamp")?;
            let delay_type = str_at(v, "/deliveryDelay/delayType").unwrap_or("Undetermined");
            d.error_code = Some(delay_type.to_string());
            let rcpts = recipients_with(v, "/deliveryDelay/delayedRecipients", "diagnosticCode");
            let rcpts = rcpts
                .into_iter()
                .map(|(r, diag)| (r, Some(diag.map_or(delay_type.to_string(), |x| format!("{delay_type}: {x}")))))
                .collect::<Vec<_>>();
            rcpts
                .into_iter()
                .map(|(r, reason)| {
                    let mut d = d.clone();
                    d.error_reason = reason;
                    (d, vec![r.to_string()])
                })
                .collect()
        }
        "Subscription" => {
            let unsubscribed = v.pointer("/subscription/newTopicPreferences/unsubscribeAll").and_then(Value::as_bool) == Some(true)
                || v.pointer("/subscription/newTopicPreferences/topicSubscriptionStatus")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|t| t.get("subscriptionStatus").and_then(Value::as_str) == Some("OptOut")));
            let event_type = if unsubscribed { EventType::Unsubscribed } else { EventType::Unknown };
            vec![(with(event_type, "/subscription/timestamp")?, destination)]
        }
        // Kept, never dropped: an SES event type we have no canonical name for.
        _ => vec![(base.clone(), destination)],
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
fn attribution(v: &Value, opts: &NormalizeOptions) -> schemas::event::Attribution {
    let tags = v
        .pointer("/mail/tags")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with("ses:"))
                .map(|(k, vals)| {
                    let vals = vals.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                    (k.as_str(), vals)
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut a = attribution_from_tags(tags, opts);
    let headers = v
        .pointer("/mail/headers")
        .and_then(Value::as_array)
        .map(|hs| {
            hs.iter()
                .filter_map(|h| Some((h.get("name")?.as_str()?, h.get("value")?.as_str()?)))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    a.metadata = metadata_from_headers(headers, opts);
    // SES system tags worth keeping as metadata
    for (tag, key) in [("ses:configuration-set", "configuration_set"), ("ses:from-domain", "from_domain"), ("ses:source-ip", "source_ip")] {
        if let Some(val) = v.pointer(&format!("/mail/tags/{}", tag.replace('/', "~1"))).and_then(|x| x.get(0)).and_then(Value::as_str) {
            a.metadata.insert(key.to_string(), val.to_string());
        }
    }
    if let Some(acct) = str_at(v, "/mail/sendingAccountId") {
        a.metadata.insert("sending_account".into(), acct.to_string());
    }
    a
}
