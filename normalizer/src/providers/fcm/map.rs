//! FCM HTTP v1 send responses → outcomes.
//!
//! * Success: the sent `Message`, of which only `name` is set
//!   (<https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send>).
//! * Error: a `google.rpc.Status` (`code`, `message`, `status`) whose `details` carry an
//!   `FcmError` with an `errorCode`
//!   (<https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode>,
//!   <https://firebase.google.com/docs/cloud-messaging/send/v1-api#error_codes>).
//!   `UNREGISTERED` means the token is gone for good: a hard bounce for that device.

use crate::providers::sender::push_results::{Outcome, PushResult};
use serde_json::Value;

/// `@type` of the detail that carries the FCM error code.
pub const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";

/// The `errorCode` that retires a registration token.
pub const UNREGISTERED: &str = "UNREGISTERED";

/// Reads one send result.
pub fn classify(result: &PushResult) -> Outcome {
    let Some(error) = result.response.as_ref().and_then(|v| v.get("error")) else {
        return if (200..300).contains(&result.http_status) {
            Outcome::sent()
        } else {
            Outcome::http_failure(result.http_status)
        };
    };
    let fcm_code = error
        .get("details")
        .and_then(Value::as_array)
        .and_then(|details| details.iter().find(|d| d.get("@type").and_then(Value::as_str) == Some(FCM_ERROR_TYPE)))
        .and_then(|d| d.get("errorCode"))
        .and_then(Value::as_str);
    let message = error.get("message").and_then(Value::as_str).filter(|m| !m.is_empty()).map(str::to_string);
    match fcm_code.or_else(|| error.get("status").and_then(Value::as_str)) {
        Some(UNREGISTERED) => Outcome::hard_bounce(UNREGISTERED, message),
        Some(code) => Outcome::failed(code, message),
        None => Outcome { error_reason: message, ..Outcome::http_failure(result.http_status) },
    }
}
