//! The Amazon SNS HTTP(S) envelope: `Notification`, `SubscriptionConfirmation`,
//! `UnsubscribeConfirmation` (<https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html>).

use crate::providers::{NormalizeError, RawRequest, VerifyContext, VerifyError};
use serde::Deserialize;

pub const HEADER_MESSAGE_TYPE: &str = "x-amz-sns-message-type";
pub const HEADER_MESSAGE_ID: &str = "x-amz-sns-message-id";
pub const HEADER_TOPIC_ARN: &str = "x-amz-sns-topic-arn";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

/// The fields of an SNS message that we use (unknown fields are ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    #[serde(rename = "Type")]
    pub kind_name: String,
    #[serde(skip, default = "default_kind")]
    pub kind: MessageKind,
    pub message_id: String,
    pub topic_arn: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
    pub timestamp: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(rename = "SubscribeURL", default)]
    pub subscribe_url: Option<String>,
    #[serde(default)]
    pub signature_version: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(rename = "SigningCertURL", default)]
    pub signing_cert_url: Option<String>,
}

fn default_kind() -> MessageKind {
    MessageKind::Notification
}

fn kind_of(name: &str) -> Option<MessageKind> {
    match name {
        "Notification" => Some(MessageKind::Notification),
        "SubscriptionConfirmation" => Some(MessageKind::SubscriptionConfirmation),
        "UnsubscribeConfirmation" => Some(MessageKind::UnsubscribeConfirmation),
        _ => None,
    }
}

/// The fields of an SNS message that normalizing uses, borrowed from the body; every field
/// of [`Envelope`] is read with the same type, so a body fails here exactly as it fails
/// [`parse`] (same error), without copying the signature and URLs.
pub type Notification<'a> = borrowed::Envelope<'a>;

mod borrowed {
    use crate::providers::json::Text;
    use serde::Deserialize;

    /// Named `Envelope` like the owned one: the name shows in parse errors.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)] // read only for their type checks, as `parse` reads them
    pub struct Envelope<'a> {
        #[serde(rename = "Type", borrow)]
        pub kind_name: Text<'a>,
        #[serde(borrow)]
        pub message_id: Text<'a>,
        #[serde(borrow)]
        pub(crate) topic_arn: Text<'a>,
        #[serde(default, borrow)]
        pub(crate) subject: Option<Text<'a>>,
        #[serde(borrow)]
        pub message: Text<'a>,
        #[serde(borrow)]
        pub(crate) timestamp: Text<'a>,
        #[serde(default, borrow)]
        pub(crate) token: Option<Text<'a>>,
        #[serde(rename = "SubscribeURL", default, borrow)]
        pub(crate) subscribe_url: Option<Text<'a>>,
        #[serde(default, borrow)]
        pub(crate) signature_version: Option<Text<'a>>,
        #[serde(default, borrow)]
        pub(crate) signature: Option<Text<'a>>,
        #[serde(rename = "SigningCertURL", default, borrow)]
        pub(crate) signing_cert_url: Option<Text<'a>>,
    }
}

/// Parses an SNS body for normalizing: its kind, `MessageId` and `Message`, with [`parse`]'s errors.
///
/// A body as SNS writes it is read by [`sns_scan::scan`] (issue 14: serde_json's unescaping of
/// `Message` was ~45 % of SES's `handle`); any other, and every malformed one, by serde_json.
pub fn parse_notification(body: &[u8]) -> Result<(MessageKind, Notification<'_>), NormalizeError> {
    match super::sns_scan::scan(body) {
        Some(n) => with_kind(n),
        None => parse_notification_with_serde(body),
    }
}

/// [`parse_notification`] by serde_json alone (the scan's oracle in tests).
pub(crate) fn parse_notification_with_serde(body: &[u8]) -> Result<(MessageKind, Notification<'_>), NormalizeError> {
    let n: Notification = serde_json::from_slice(body).map_err(|e| NormalizeError::InvalidJson(e.to_string()))?;
    with_kind(n)
}

fn with_kind(n: Notification<'_>) -> Result<(MessageKind, Notification<'_>), NormalizeError> {
    let kind = kind_of(&n.kind_name.0).ok_or_else(|| NormalizeError::Unsupported(n.kind_name.0.to_string()))?;
    Ok((kind, n))
}

/// Parses an SNS body.
///
/// Read as [`parse_notification`] reads it (the fast scan for a body as SNS writes it, else
/// serde_json, with the same errors), then owned: serde_json's unescaping of `Message` was
/// most of the edge's SNS parse (BENCHMARKS.md §10, "the SES edge reads one id").
pub fn parse(body: &[u8]) -> Result<Envelope, NormalizeError> {
    let (kind, n) = parse_notification(body)?;
    let owned = |t: Option<crate::providers::json::Text<'_>>| t.map(|t| t.0.into_owned());
    Ok(Envelope {
        kind_name: n.kind_name.0.into_owned(),
        kind,
        message_id: n.message_id.0.into_owned(),
        topic_arn: n.topic_arn.0.into_owned(),
        subject: owned(n.subject),
        message: n.message.0.into_owned(),
        timestamp: n.timestamp.0.into_owned(),
        token: owned(n.token),
        subscribe_url: owned(n.subscribe_url),
        signature_version: owned(n.signature_version),
        signature: owned(n.signature),
        signing_cert_url: owned(n.signing_cert_url),
    })
}

/// [`parse`] by serde_json alone, into the owned [`Envelope`] (its oracle in tests).
#[cfg(test)]
pub(crate) fn parse_with_serde(body: &[u8]) -> Result<Envelope, NormalizeError> {
    let mut env: Envelope = serde_json::from_slice(body).map_err(|e| NormalizeError::InvalidJson(e.to_string()))?;
    env.kind = kind_of(&env.kind_name).ok_or_else(|| NormalizeError::Unsupported(env.kind_name.clone()))?;
    Ok(env)
}

/// Checks an incoming SNS request: headers agree with the body, the topic is one the tenant
/// named (any message, confirmations included, from another topic is refused), and (unless the
/// tenant turned it off) the SNS signature holds. A tenant without SNS settings has no SNS route.
pub fn verify(req: &RawRequest<'_>, creds: Option<&super::Credentials>, ctx: &VerifyContext) -> Result<Envelope, VerifyError> {
    let env = parse(req.body).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let header_type = req.header(HEADER_MESSAGE_TYPE).ok_or(VerifyError::MissingHeader(HEADER_MESSAGE_TYPE))?;
    if header_type != env.kind_name {
        return Err(VerifyError::HeaderMismatch(HEADER_MESSAGE_TYPE));
    }
    let header_id = req.header(HEADER_MESSAGE_ID).ok_or(VerifyError::MissingHeader(HEADER_MESSAGE_ID))?;
    if header_id != env.message_id {
        return Err(VerifyError::HeaderMismatch(HEADER_MESSAGE_ID));
    }
    if let Some(arn) = req.header(HEADER_TOPIC_ARN) {
        if arn != env.topic_arn {
            return Err(VerifyError::HeaderMismatch(HEADER_TOPIC_ARN));
        }
    }
    let Some(creds) = creds else { return Err(VerifyError::NotConfigured) };
    match creds.accepts_topic(&env.topic_arn) {
        None => return Err(VerifyError::NotConfigured),
        Some(false) => return Err(VerifyError::WrongTopic(env.topic_arn.clone())),
        Some(true) => {}
    }
    // Last: the checks above are free, this one may fetch a certificate.
    if creds.verify_signature != Some(false) {
        ctx.certificates.verify_with(&env, req.now_ms, ctx.fetch())?;
    }
    Ok(env)
}
