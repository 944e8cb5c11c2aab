//! SES events through Amazon EventBridge: an API destination POSTs the EventBridge event
//! (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html>) to
//! `/webhooks/ses/{tenant}/eventbridge`. Its `detail` is the same SES event that SNS carries
//! as `Message` (<https://docs.aws.amazon.com/ses/latest/dg/monitoring-eventbridge.html>).
//!
//! EventBridge does not sign what it sends; the API destination's connection adds the
//! tenant's API key header, and that is what we check.

use crate::providers::signature::{check_api_key, API_KEY_HEADER};
use crate::providers::{NormalizeError, RawRequest, TenantCredentials, Verified, VerifyError};
use super::map::SesEvent;
use crate::providers::json::{Obj, Text};
use serde::Deserialize;
use serde_json::Value;

/// The route variant EventBridge posts to: `/webhooks/ses/{tenant}/eventbridge`.
pub const VARIANT: &str = "eventbridge";

/// `source` of every SES event.
pub const SOURCE: &str = "aws.ses";

/// The fields of an EventBridge event that we use (unknown fields are ignored), read in place:
/// `detail` straight into the SES event (issue 14: it was a `serde_json::Value` tree first).
/// The same errors as the owned struct it replaced: a missing or non-string `id`,
/// `detail-type` or `source`, a missing `detail`, a repeated one of these.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// Unique per event (a UUID): the report id.
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(rename = "detail-type", borrow)]
    pub detail_type: Text<'a>,
    #[serde(borrow)]
    pub source: Text<'a>,
    /// `None` when `detail` is not an object.
    #[serde(borrow)]
    pub detail: Obj<SesEvent<'a>>,
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
pub fn parse(body: &[u8]) -> Result<Envelope<'_>, NormalizeError> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| NormalizeError::InvalidJson(e.to_string()))?;
    if env.source.0 != SOURCE {
        return Err(NormalizeError::InvalidField { field: "source", reason: format!("`{}` is not `{SOURCE}`", env.source.0) });
    }
    if env.detail.get().is_none() {
        return Err(NormalizeError::InvalidField { field: "detail", reason: "not an object".into() });
    }
    Ok(env)
}

/// Checks a request on the EventBridge route: the tenant's API key first, then the body.
/// Every event of one SES message shares `detail.mail.messageId`, so that is the partition key.
pub fn verify(req: &RawRequest<'_>, creds: &TenantCredentials) -> Result<Verified, VerifyError> {
    check_api_key(req.header(API_KEY_HEADER), creds.api_key.as_deref())?;
    let env = parse(req.body).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let key = env.detail.get().and_then(|d| d.message_id()).map_or_else(|| env.id.0.into_owned(), str::to_string);
    Ok(Verified { partition_key: key, control: None })
}
