//! What ingest writes (the raw envelope) and what the normalizer cannot read (a dead letter).

use crate::ProviderId;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A provider request exactly as ingest received it (`avro/raw_envelope.avsc`).
#[derive(Debug, Clone, PartialEq)]
pub struct RawEnvelope {
    pub request_id: String,
    pub tenant: String,
    pub provider: ProviderId,
    /// The endpoint that accepted the request: the normalizer reads the body as this route's,
    /// never guessing from the URL or the body's shape.
    pub route: Route,
    pub url: String,
    pub content_type: String,
    pub received_at: i64,
    /// Lower-case header names; only those signatures and metadata need.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// The kind of endpoint a request came in on. Each provider declares the routes it accepts
/// (`Provider::routes` in the normalizer); ingest refuses the others.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /webhooks/{provider}/{tenant}`: the provider calls us.
    Webhook,
    /// `POST /webhooks/{provider}/{tenant}/{variant}`: another way the same provider calls us
    /// (SES: `eventbridge`).
    WebhookVariant(Cow<'static, str>),
    /// `POST /v1/sends/{tenant}`: the sender's send records.
    Sends,
    /// `POST /v1/events/{tenant}`: the sender's app-side events.
    Events,
    /// `POST /v1/push-results/{tenant}/{provider}`: what a push service answered the sender.
    PushResults,
}

impl Route {
    /// The value stored in the envelope: `webhook`, `webhook/<variant>`, `sends`, `events`, `push_results`.
    pub fn as_str(&self) -> Cow<'static, str> {
        match self {
            Route::Webhook => "webhook".into(),
            Route::WebhookVariant(v) => format!("webhook/{v}").into(),
            Route::Sends => "sends".into(),
            Route::Events => "events".into(),
            Route::PushResults => "push_results".into(),
        }
    }

    /// Whether the route can be stored and read back: a variant is one non-empty path segment.
    pub fn is_valid(&self) -> bool {
        match self {
            Route::WebhookVariant(v) => !v.is_empty() && !v.contains('/'),
            _ => true,
        }
    }

    /// The HTTP path of this route for `provider` and `tenant`.
    pub fn path(&self, provider: ProviderId, tenant: &str) -> String {
        match self {
            Route::Webhook => format!("/webhooks/{provider}/{tenant}"),
            Route::WebhookVariant(v) => format!("/webhooks/{provider}/{tenant}/{v}"),
            Route::Sends => format!("/v1/sends/{tenant}"),
            Route::Events => format!("/v1/events/{tenant}"),
            Route::PushResults => format!("/v1/push-results/{tenant}/{provider}"),
        }
    }

    /// Reads a stored route. Envelopes written before routes were typed hold the route
    /// template (`/webhooks/{provider}/{tenant}/{variant}`); their variant is the URL's last
    /// path segment. `None` for anything else.
    pub fn parse(stored: &str, url: &str) -> Option<Route> {
        Some(match stored {
            "webhook" | "/webhooks/{provider}/{tenant}" => Route::Webhook,
            "sends" | "/v1/sends/{tenant}" => Route::Sends,
            "events" | "/v1/events/{tenant}" => Route::Events,
            "push_results" | "/v1/push-results/{tenant}/{provider}" => Route::PushResults,
            "/webhooks/{provider}/{tenant}/{variant}" => {
                let path = url.split('?').next().unwrap_or(url);
                let variant = path.rsplit('/').next().filter(|v| !v.is_empty())?;
                Route::WebhookVariant(variant.to_string().into())
            }
            other => Route::WebhookVariant(other.strip_prefix("webhook/").filter(|v| !v.is_empty() && !v.contains('/'))?.to_string().into()),
        })
    }
}

/// A record a stage could not process (`avro/dead_letter.avsc`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeadLetter {
    pub reason_code: String,
    pub reason: String,
    pub stage: String,
    pub raw_topic: String,
    pub raw_partition: i32,
    pub raw_offset: i64,
    pub tenant: Option<String>,
    pub provider: Option<String>,
    pub failed_at: i64,
    /// The record value, or its first bytes when `raw_truncated` (see [`DeadLetter::with_raw`]).
    pub raw: Vec<u8>,
    /// Position of the failed item (or output event) inside the record, when only part of it failed.
    pub item: Option<i32>,
    /// Size of the whole record value.
    pub raw_size: i64,
    pub raw_truncated: bool,
    /// The id ingest gave the request the record came from, when known (logs, raw envelope).
    pub request_id: Option<String>,
}

impl DeadLetter {
    /// Keeps at most `max_bytes` of `raw`: a dead letter must stay far below the broker's
    /// message limit whatever the record was (the record itself stays at its coordinates).
    pub fn with_raw(mut self, raw: &[u8], max_bytes: usize) -> Self {
        let keep = raw.len().min(max_bytes);
        self.raw = raw[..keep].to_vec();
        self.raw_size = raw.len() as i64;
        self.raw_truncated = keep < raw.len();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Route;

    /// Stored routes read back, and so do the route templates envelopes held before routes
    /// were typed (a replay of an old raw topic keeps its meaning).
    #[test]
    fn routes_parse_current_and_legacy_forms() {
        let eb = Route::WebhookVariant("eventbridge".into());
        for r in [Route::Webhook, eb.clone(), Route::Sends, Route::Events, Route::PushResults] {
            assert_eq!(Route::parse(&r.as_str(), "/ignored"), Some(r));
        }
        assert_eq!(Route::parse("/webhooks/{provider}/{tenant}", "/webhooks/ses/acme"), Some(Route::Webhook));
        assert_eq!(Route::parse("/webhooks/{provider}/{tenant}/{variant}", "/webhooks/ses/acme/eventbridge?x=1"), Some(eb));
        assert_eq!(Route::parse("/v1/sends/{tenant}", ""), Some(Route::Sends));
        assert_eq!(Route::parse("/v1/events/{tenant}", ""), Some(Route::Events));
        assert_eq!(Route::parse("/v1/push-results/{tenant}/{provider}", ""), Some(Route::PushResults));
        assert!(!Route::WebhookVariant("".into()).is_valid() && !Route::WebhookVariant("a/b".into()).is_valid());
        for bad in ["", "check", "webhook/", "webhook/a/b", "/other"] {
            assert_eq!(Route::parse(bad, "/x"), None, "{bad}");
        }
    }
}
