//! AWS SES, delivered through Amazon SNS (HTTPS subscription).
//!
//! * `sns`: the SNS envelope and its checks (headers, topic, signature).
//! * `map`: SES event JSON (event publishing and notification styles) → drafts.

pub mod map;
pub mod sns;

use super::{EventDraft, NormalizeError, NormalizeOptions, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError};
use schemas::{Event, ProviderId};

pub struct Ses;

impl Provider for Ses {
    fn id(&self) -> ProviderId {
        ProviderId::Ses
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[sns::HEADER_MESSAGE_TYPE, sns::HEADER_MESSAGE_ID, sns::HEADER_TOPIC_ARN]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials) -> Result<Verified, VerifyError> {
        let envelope = sns::verify(req, creds)?;
        let control = match envelope.kind {
            sns::MessageKind::Notification => None,
            _ => Some(format!(
                "SNS {} for topic {}; confirm with SubscribeURL {}",
                envelope.kind_name,
                envelope.topic_arn,
                envelope.subscribe_url.as_deref().unwrap_or("-")
            )),
        };
        // Every event of one SES message shares mail.messageId: key by it so they land together.
        let key = map::message_id_of(&envelope.message).unwrap_or(envelope.message_id.clone());
        Ok(Verified { partition_key: key, control })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Vec<Event>, NormalizeError> {
        let envelope = sns::parse(&raw.envelope.body)?;
        if envelope.kind != sns::MessageKind::Notification {
            return Ok(Vec::new());
        }
        let drafts = map::drafts(&envelope.message, &envelope.message_id, opts)?;
        Ok(expand(raw, drafts))
    }
}

/// Turns (draft, recipients) pairs into events.
pub(crate) fn expand(raw: &RawRecord<'_>, drafts: Vec<(EventDraft, Vec<String>)>) -> Vec<Event> {
    drafts
        .iter()
        .flat_map(|(draft, recipients)| draft.for_recipients(raw, recipients.iter().map(String::as_str)))
        .collect()
}

#[cfg(test)]
mod tests;
