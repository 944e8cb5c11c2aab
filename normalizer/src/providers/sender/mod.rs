//! The sender's own records, authenticated with the tenant's API key:
//! send records (`POST /v1/sends/{tenant}`) and app-side events (`POST /v1/events/{tenant}`).
//! Each event carries the provider the record names, not `sender`, so it joins that
//! provider's own reports on the same delivery.
//!
//! * `items`: batch parsing and field checks shared by every sender-posted body.
//! * `records`: send records → `queued`.
//! * `app_events`: app events → their canonical type.
//! * `push_results`: FCM / APNs send results (used by the `fcm` and `apns` providers).

pub mod app_events;
pub mod items;
pub mod push_results;
pub mod records;

use super::signature::{check_api_key, API_KEY_HEADER};
use super::{EventDraft, NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyError};
use items::parse_batch;
use schemas::ids;
use schemas::ProviderId;

pub struct Sender;

/// Which of the sender's endpoints a body was posted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Sends,
    Events,
}

impl Route {
    /// Without a route (`normalizer check`): app events name an `event`, send records do not.
    pub fn of_body(body: &[u8]) -> Option<Route> {
        let items: Vec<serde_json::Value> = serde_json::from_slice(body).ok()?;
        let first = items.first()?.as_object()?;
        Some(if first.contains_key("event") { Route::Events } else { Route::Sends })
    }

    /// From a route template (`/v1/sends/{tenant}`) or a received path (`/v1/sends/acme?x=1`).
    pub fn of_path(path: &str) -> Option<Route> {
        let path = path.split('?').next().unwrap_or(path);
        if path.starts_with("/v1/sends/") {
            Some(Route::Sends)
        } else if path.starts_with("/v1/events/") {
            Some(Route::Events)
        } else {
            None
        }
    }
}

impl Provider for Sender {
    fn id(&self) -> ProviderId {
        ProviderId::Sender
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials) -> Result<Verified, VerifyError> {
        check_api_key(req.header(API_KEY_HEADER), creds.api_key.as_deref())?;
        let route = Route::of_path(req.url).ok_or_else(|| VerifyError::Malformed(format!("not a sender route: {}", req.url)))?;
        let first_message = match route {
            Route::Sends => parse_batch::<records::SendRecord>(req.body)?.first().map(|r| r.provider_message_id.clone()),
            Route::Events => parse_batch::<app_events::AppEvent>(req.body)?.first().map(|e| e.provider_message_id.clone()),
        };
        Ok(Verified { partition_key: first_message.unwrap_or_else(|| req.tenant.to_string()), control: None })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        let env = raw.envelope;
        let route = Route::of_path(&env.route)
            .or_else(|| Route::of_path(&env.url))
            .or_else(|| Route::of_body(&env.body))
            .ok_or_else(|| NormalizeError::Envelope(format!("not a sender route: {}", env.route)))?;
        let mut out = Normalized::default();
        match route {
            Route::Sends => {
                for (i, r) in parse_batch::<records::SendRecord>(&env.body)?.iter().enumerate() {
                    push_for(&mut out, raw, opts, i, r.draft(i), &r.provider, &r.recipient);
                }
            }
            Route::Events => {
                for (i, e) in parse_batch::<app_events::AppEvent>(&env.body)?.iter().enumerate() {
                    push_for(&mut out, raw, opts, i, e.draft(i), &e.provider, &e.recipient);
                }
            }
        }
        Ok(out)
    }
}

/// The event for item `item`, attributed to the delivery provider the item names:
/// `provider` and `delivery_key` are those of that provider's own events.
fn push_for(
    out: &mut Normalized,
    raw: &RawRecord<'_>,
    opts: &NormalizeOptions,
    item: usize,
    draft: Result<EventDraft, String>,
    provider: &str,
    recipient: &str,
) {
    let invalid = |reason: String| NormalizeError::InvalidField { field: "body", reason };
    let (provider, draft) = match (items::provider(provider), draft) {
        (Ok(p), Ok(d)) => (p, d),
        (Err(reason), _) | (_, Err(reason)) => return out.reject(item, invalid(reason)),
    };
    let start = out.events.len();
    out.push(raw, opts, item, &draft, [recipient]);
    for event in &mut out.events[start..] {
        event.provider = provider.as_str().to_string();
        event.delivery_key = ids::delivery_key(&event.tenant, &event.provider, &event.provider_message_id, &event.recipient);
    }
}

#[cfg(test)]
mod tests;
