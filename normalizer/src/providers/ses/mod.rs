//! AWS SES, delivered through Amazon SNS (HTTPS subscription, `/webhooks/ses/{tenant}`)
//! or Amazon EventBridge (API destination, `/webhooks/ses/{tenant}/eventbridge`).
//!
//! * `sns`: the SNS envelope and its checks (headers, topic, then `signature`).
//! * `signature`: SNS message signatures and the signing-certificate cache.
//! * `eventbridge`: the EventBridge envelope and its API-key check.
//! * `map`: SES event JSON (event publishing and notification styles) → drafts.

pub mod credentials;
pub mod eventbridge;
pub mod map;
#[cfg(test)]
mod map_before;
#[cfg(any(test, feature = "samples"))]
pub mod samples;
pub mod signature;
pub mod sns;
mod sns_scan;

use super::{EventDraft, NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyContext, VerifyError};
use schemas::{ProviderId, Route};
use std::borrow::Cow;

pub use credentials::Credentials;

pub struct Ses;

/// SNS posts to the plain webhook route, EventBridge to its variant.
const ROUTES: &[Route] = &[Route::Webhook, Route::WebhookVariant(Cow::Borrowed(eventbridge::VARIANT))];

fn is_eventbridge(route: &Route) -> bool {
    matches!(route, Route::WebhookVariant(v) if v == eventbridge::VARIANT)
}

impl Provider for Ses {
    fn id(&self) -> ProviderId {
        ProviderId::Ses
    }

    fn routes(&self) -> &'static [Route] {
        ROUTES
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[sns::HEADER_MESSAGE_TYPE, sns::HEADER_MESSAGE_ID, sns::HEADER_TOPIC_ARN]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials, ctx: &VerifyContext) -> Result<Verified, VerifyError> {
        // The route decides how the request must authenticate, never the body.
        if is_eventbridge(req.route) {
            return eventbridge::verify(req, creds);
        }
        // An EventBridge event posted here fails as SNS (it has none of SNS's fields); only then
        // is it looked at again, to say where it belongs (a look of its own at every SNS
        // request cost ~3 % of ingest's CPU).
        let envelope = sns::verify(req, creds.ses.as_ref(), ctx).map_err(|e| match eventbridge::looks_like(req.body) {
            true => VerifyError::Malformed(format!("EventBridge event on the SNS route; post it to `…/{}`", eventbridge::VARIANT)),
            false => e,
        })?;
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

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        // The envelope names the route the body came in on (and `verify` held it to it).
        if is_eventbridge(&raw.envelope.route) {
            let event = eventbridge::parse(raw.envelope.body)?;
            let detail = event.detail.get().filter(|d| d.mail.present).ok_or_else(|| {
                // An SES event that is not about a message (e.g. "Sending Status Disabled").
                NormalizeError::Unsupported(event.detail_type.0.to_string())
            })?;
            let drafts = map::drafts_of_event(detail, &event.id.0, opts)?;
            return Ok(expand(raw, opts, drafts));
        }
        let (kind, notification) = sns::parse_notification(raw.envelope.body)?;
        if kind != sns::MessageKind::Notification {
            return Ok(Normalized::default());
        }
        let drafts = map::drafts(&notification.message.0, &notification.message_id.0, opts)?;
        Ok(expand(raw, opts, drafts))
    }

    #[cfg(any(test, feature = "samples"))]
    fn demo_credentials(&self, ctx: &super::samples::Context, creds: &mut TenantCredentials) {
        samples::demo_credentials(ctx, creds)
    }

    #[cfg(any(test, feature = "samples"))]
    fn samples(&self, ctx: &super::samples::Context) -> Vec<super::samples::Sample> {
        samples::samples(ctx)
    }
}

/// Turns (draft, recipients) pairs into events.
/// One SES event names one mail and its recipients: every draft is part of item 0.
pub(crate) fn expand(raw: &RawRecord<'_>, opts: &NormalizeOptions, drafts: Vec<(EventDraft, Vec<String>)>) -> Normalized {
    let mut out = Normalized::default();
    for (draft, recipients) in drafts {
        out.push_owned(raw, opts, 0, draft, recipients.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests;
