//! SES events through Amazon EventBridge: an API destination POSTs the EventBridge event
//! (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html>) to
//! `/webhooks/ses/{tenant}/eventbridge`. Its `detail` is the same SES event that SNS carries
//! as `Message` (<https://docs.aws.amazon.com/ses/latest/dg/monitoring-eventbridge.html>).
//!
//! EventBridge does not sign what it sends; the API destination's connection adds the
//! tenant's API key header, and that is what we check.

use crate::providers::signature::{check_api_key, API_KEY_HEADER};
use crate::providers::{NormalizeError, RawRequest, TenantCredentials, Verified, VerifyError};
use serde::Deserialize;
use serde_json::Value;

/// The route variant EventBridge posts to: `/webhooks/ses/{tenant}/eventbridge`.
pub const VARIANT: &str = "eventbridge";

/// `source` of every SES event.
pub const SOURCE: &str = "aws.ses";

/// The fields of an EventBridge event that we use (unknown fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    /// Unique per event (a UUID): the report id.
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub detail: Value,
}

/// True when `body` has the shape of an SES EventBridge event (`detail-type`, `source` = `aws.ses`).
pub fn looks_like(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "detail-type")]
        detail_type: Option<Value>,
        source: Option<Value>,
    }
    serde_json::from_slice::<Probe>(body)
        .is_ok_and(|p| p.detail_type.is_some() && p.source.as_ref().and_then(Value::as_str) == Some(SOURCE))
}

/// Parses an EventBridge body from SES.
pub fn parse(body: &[u8]) -> Result<Envelope, NormalizeError> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| NormalizeError::InvalidJson(e.to_string()))?;
    if env.source != SOURCE {
        return Err(NormalizeError::InvalidField { field: "source", reason: format!("`{}` is not `{SOURCE}`", env.source) });
    }
    if !env.detail.is_object() {
        return Err(NormalizeError::InvalidField { field: "detail", reason: "not an object".into() });
    }
    Ok(env)
}

/// Checks a request on the EventBridge route: the tenant's API key first, then the body.
/// Every event of one SES message shares `detail.mail.messageId`, so that is the partition key.
pub fn verify(req: &RawRequest<'_>, creds: &TenantCredentials) -> Result<Verified, VerifyError> {
    check_api_key(req.header(API_KEY_HEADER), creds.api_key.as_deref())?;
    let env = parse(req.body).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let key = super::map::message_id_in(&env.detail).unwrap_or(env.id);
    Ok(Verified { partition_key: key, control: None })
}
