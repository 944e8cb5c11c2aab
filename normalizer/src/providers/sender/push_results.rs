//! `POST /v1/push-results/{tenant}/{fcm|apns}`: what FCM or APNs answered the sender,
//! one item per device token. Shared by the `fcm` and `apns` providers, which differ
//! only in how they read `response` ([`Outcome`]).

use super::items::{self, parse_batch, Attrs, Item};
use crate::providers::build::IdSource;
use crate::providers::signature::{check_api_key, API_KEY_HEADER};
use crate::providers::{EventDraft, NormalizeError, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError};
use schemas::{BounceClass, Channel, Event, EventType};
use serde::Deserialize;
use serde_json::Value;

/// One push send result.
#[derive(Debug, Clone, Deserialize)]
pub struct PushResult {
    /// Device token (the recipient).
    pub token: String,
    /// The sender's id for the message (`provider_message_id`).
    pub message_id: String,
    pub http_status: u16,
    /// The provider's response body, verbatim; `null` when it had none.
    #[serde(default)]
    pub response: Option<Value>,
    pub sent_at: Option<String>,
    #[serde(flatten)]
    pub attrs: Attrs,
}

impl Item for PushResult {
    const FIELDS: &'static [&'static str] = &[
        "token", "message_id", "http_status", "response", "sent_at",
        "broadcast", "sequence", "contact", "template", "message_class", "labels",
    ];

    fn validate(&self) -> Result<(), String> {
        items::required("token", &self.token)?;
        items::required("message_id", &self.message_id)?;
        if !(100..=599).contains(&self.http_status) {
            return Err(format!("`http_status` is not an HTTP status: {}", self.http_status));
        }
        items::time("sent_at", self.sent_at.as_deref())?;
        Ok(())
    }
}

/// What one result means, as the provider's mapping reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `provider_event_name`: `success`, or the provider's error code.
    pub name: String,
    pub event_type: EventType,
    pub bounce_class: Option<BounceClass>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
}

impl Outcome {
    pub fn sent() -> Self {
        Outcome { name: "success".into(), event_type: EventType::Sent, bounce_class: None, error_code: None, error_reason: None }
    }

    /// The device token is gone for good: stop sending to it.
    pub fn hard_bounce(code: &str, reason: Option<String>) -> Self {
        Outcome {
            name: code.to_string(),
            event_type: EventType::Bounced,
            bounce_class: Some(BounceClass::Hard),
            error_code: Some(code.to_string()),
            error_reason: reason,
        }
    }

    pub fn failed(code: &str, reason: Option<String>) -> Self {
        Outcome { name: code.to_string(), event_type: EventType::Failed, bounce_class: None, error_code: Some(code.to_string()), error_reason: reason }
    }

    /// A non-2xx answer without a body we can read.
    pub fn http_failure(status: u16) -> Self {
        Outcome::failed(&format!("http_{status}"), None)
    }
}

/// API key, then the shape of every item.
pub fn verify(req: &RawRequest<'_>, creds: &TenantCredentials) -> Result<Verified, VerifyError> {
    check_api_key(req.header(API_KEY_HEADER), creds.api_key.as_deref())?;
    let results = parse_batch::<PushResult>(req.body)?;
    let partition_key = results.first().map_or_else(|| req.tenant.to_string(), |r| r.message_id.clone());
    Ok(Verified { partition_key, control: None })
}

/// One push event per item, classified by `classify`.
pub fn normalize(raw: &RawRecord<'_>, classify: impl Fn(&PushResult) -> Outcome) -> Result<Vec<Event>, NormalizeError> {
    let results = parse_batch::<PushResult>(&raw.envelope.body)?;
    results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let outcome = classify(r);
            let mut d = EventDraft::new(Channel::Push, r.message_id.as_str(), outcome.name, outcome.event_type);
            d.id_source = IdSource::BodyItem(i);
            d.bounce_class = outcome.bounce_class;
            d.error_code = outcome.error_code;
            d.error_reason = outcome.error_reason;
            d.occurred_at = items::time("sent_at", r.sent_at.as_deref())
                .map_err(|reason| NormalizeError::InvalidField { field: "sent_at", reason })?;
            d.attribution = r.attrs.attribution();
            Ok(d.for_recipient(raw, &r.token))
        })
        .collect()
}
