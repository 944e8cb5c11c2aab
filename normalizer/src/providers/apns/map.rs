//! APNs responses → outcomes, after Apple's "Handling notification responses from APNs"
//! (<https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns>):
//! 200 with no body is success; otherwise the body is `{"reason": ".."}`, and a 410 adds
//! `"timestamp"` (ms since the epoch) when the token stopped being valid.

use crate::providers::sender::push_results::{Outcome, PushResult};
use serde_json::Value;

/// Reasons that retire the device token: a hard bounce for that device.
pub const TOKEN_GONE: &[&str] = &["BadDeviceToken", "Unregistered", "ExpiredToken"];

/// Every reason the document lists, with its status and meaning (used as `error_reason`).
pub const REASONS: &[(u16, &str, &str)] = &[
    (400, "BadCollapseId", "The collapse identifier exceeds the maximum allowed size."),
    (400, "BadDeviceToken", "The specified device token is invalid."),
    (400, "BadExpirationDate", "The apns-expiration value is invalid."),
    (400, "BadMessageId", "The apns-id value is invalid."),
    (400, "BadPriority", "The apns-priority value is invalid."),
    (400, "BadTopic", "The apns-topic value is invalid."),
    (400, "DeviceTokenNotForTopic", "The device token doesn't match the specified topic."),
    (400, "DuplicateHeaders", "One or more headers are repeated."),
    (400, "IdleTimeout", "Idle timeout."),
    (400, "InvalidPushType", "The apns-push-type value is invalid."),
    (400, "MissingDeviceToken", "The device token isn't specified in the request :path."),
    (400, "MissingTopic", "The apns-topic header of the request isn't specified and is required."),
    (400, "PayloadEmpty", "The message payload is empty."),
    (400, "TopicDisallowed", "Pushing to this topic is not allowed."),
    (403, "BadCertificate", "The certificate is invalid."),
    (403, "BadCertificateEnvironment", "The client certificate is for the wrong environment."),
    (403, "ExpiredProviderToken", "The provider token is stale and a new token should be generated."),
    (403, "Forbidden", "The specified action is not allowed."),
    (403, "InvalidProviderToken", "The provider token is not valid, or the token signature can't be verified."),
    (403, "MissingProviderToken", "No provider certificate or provider token was used."),
    (403, "UnrelatedKeyIdInToken", "The key ID in the provider token isn't related to the key ID of the first push of this connection."),
    (404, "BadPath", "The request contained an invalid :path value."),
    (405, "MethodNotAllowed", "The specified :method value isn't POST."),
    (410, "ExpiredToken", "The device token has expired."),
    (410, "Unregistered", "The device token is inactive for the specified topic."),
    (413, "PayloadTooLarge", "The message payload is too large."),
    (429, "TooManyProviderTokenUpdates", "The provider's authentication token is being updated too often."),
    (429, "TooManyRequests", "Too many requests were made consecutively to the same device token."),
    (500, "InternalServerError", "An internal server error occurred."),
    (503, "ServiceUnavailable", "The service is unavailable."),
    (503, "Shutdown", "The APNs server is shutting down."),
];

fn meaning(reason: &str) -> Option<String> {
    REASONS.iter().find(|(_, r, _)| *r == reason).map(|(_, _, m)| m.to_string())
}

/// Reads one send result.
pub fn classify(result: &PushResult) -> Outcome {
    if result.http_status == 200 {
        return Outcome::sent();
    }
    let reason = result.response.as_ref().and_then(|v| v.get("reason")).and_then(Value::as_str).filter(|r| !r.is_empty());
    match reason {
        Some(r) if TOKEN_GONE.contains(&r) || result.http_status == 410 => Outcome::hard_bounce(r, meaning(r)),
        Some(r) => Outcome::failed(r, meaning(r)),
        // A 410 means the token is no longer active for the topic, whatever the body says.
        None if result.http_status == 410 => Outcome::hard_bounce("http_410", None),
        None => Outcome::http_failure(result.http_status),
    }
}
