//! Status callback parameters → draft. Parameters and statuses after "Track the Message
//! Status of Outbound Messages" and "Outbound Message Status in Status Callbacks"
//! (<https://www.twilio.com/docs/messaging/guides/track-outbound-message-status>,
//! <https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks>).
//! Twilio sends no event time: `occurred_at` is left to the receive time.

use crate::providers::build::IdSource;
use crate::providers::{EventDraft, NormalizeError};
use rust_decimal::Decimal;
use schemas::{Channel, EventType, Money};
use std::str::FromStr;

/// Address prefix of WhatsApp senders and recipients.
pub const WHATSAPP_PREFIX: &str = "whatsapp:";

/// `MessageStatus` → canonical type.
pub const STATUSES: &[(&str, EventType)] = &[
    ("queued", EventType::Queued),
    ("accepted", EventType::Queued),
    ("scheduled", EventType::Queued),
    ("sending", EventType::Sent),
    ("sent", EventType::Sent),
    ("delivered", EventType::Delivered),
    ("undelivered", EventType::Failed),
    ("failed", EventType::Failed),
    ("read", EventType::Read),
    ("received", EventType::Replied),
];

/// Short meanings of common delivery error codes (<https://www.twilio.com/docs/api/errors>).
pub const ERROR_CODES: &[(&str, &str)] = &[
    ("30001", "Queue overflow"),
    ("30002", "Account suspended"),
    ("30003", "Unreachable destination handset"),
    ("30004", "Message blocked"),
    ("30005", "Unknown destination handset"),
    ("30006", "Landline or unreachable carrier"),
    ("30007", "Message filtered"),
    ("30008", "Unknown error"),
    ("30034", "Message from an unregistered number (US A2P 10DLC)"),
    ("63016", "WhatsApp: outside the allowed window, use a template"),
];

/// Parses a form body into its parameters, in order.
pub fn parse(body: &[u8]) -> Result<Vec<(String, String)>, NormalizeError> {
    serde_urlencoded::from_bytes(body).map_err(|e| NormalizeError::InvalidForm(e.to_string()))
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// `MessageSid`, or the older `SmsSid`.
pub fn message_sid(params: &[(String, String)]) -> Option<&str> {
    param(params, "MessageSid").or_else(|| param(params, "SmsSid"))
}

/// Maps one callback to its draft and recipient (without the `whatsapp:` prefix).
pub fn draft(params: &[(String, String)]) -> Result<(EventDraft, String), NormalizeError> {
    let sid = message_sid(params).ok_or(NormalizeError::MissingField("MessageSid"))?;
    let status = param(params, "MessageStatus")
        .or_else(|| param(params, "SmsStatus"))
        .ok_or(NormalizeError::MissingField("MessageStatus"))?;
    let event_type = STATUSES.iter().find(|(s, _)| *s == status).map_or(EventType::Unknown, |(_, t)| *t);
    let (from, to) = (param(params, "From"), param(params, "To"));
    let whatsapp = [from, to].into_iter().flatten().any(|a| a.starts_with(WHATSAPP_PREFIX));
    let channel = if whatsapp { Channel::Whatsapp } else { Channel::Sms };
    // An inbound message (`received`) is the recipient answering: they are its sender.
    let address = if status == "received" { from } else { to };
    let recipient = address.ok_or(NormalizeError::NoRecipients)?;
    let recipient = recipient.strip_prefix(WHATSAPP_PREFIX).unwrap_or(recipient).to_string();

    let mut d = EventDraft::new(channel, sid, status, event_type);
    d.id_source = IdSource::BodyItem(0);
    if let Some(code) = param(params, "ErrorCode") {
        d.error_code = Some(code.to_string());
        d.error_reason = param(params, "ErrorMessage")
            .map(str::to_string)
            .or_else(|| ERROR_CODES.iter().find(|(c, _)| *c == code).map(|(_, m)| m.to_string()));
    }
    d.cost = cost(param(params, "Price"), param(params, "PriceUnit"));
    Ok((d, recipient))
}

/// `Price` (negative for a charge) and `PriceUnit` → a positive cost. An unreadable price is
/// left out rather than failing the status it came with.
fn cost(price: Option<&str>, unit: Option<&str>) -> Option<Money> {
    let amount = Decimal::from_str(price?.trim()).ok()?;
    Some(Money::new(amount.abs().normalize(), unit?.trim()))
}
