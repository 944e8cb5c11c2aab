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
use super::{EventDraft, NormalizeError, NormalizeOptions, Normalized, Provider, RawRecord, RawRequest, TenantCredentials, Verified, VerifyContext, VerifyError};
use items::{parse_batch, parse_batch_within};
use schemas::ids;
use schemas::{ProviderId, Route};

pub struct Sender;

/// The tenant's `api_key` authenticates its own records: `[tenants.<tenant>.sender]` takes no keys.
pub type Credentials = super::credentials::NoCredentials;

/// Send records and app events.
const ROUTES: &[Route] = &[Route::Sends, Route::Events];

/// Without a route (`normalizer check`): app events name an `event`, send records do not.
pub fn route_of_body(body: &[u8]) -> Route {
    let items: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap_or_default();
    match items.first().and_then(|i| i.as_object()).is_some_and(|o| o.contains_key("event")) {
        true => Route::Events,
        false => Route::Sends,
    }
}

impl Provider for Sender {
    fn id(&self) -> ProviderId {
        ProviderId::Sender
    }

    fn routes(&self) -> &'static [Route] {
        ROUTES
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[]
    }

    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials, ctx: &VerifyContext) -> Result<Verified, VerifyError> {
        check_api_key(req.header(API_KEY_HEADER), creds.api_key.as_deref())?;
        let limits = &ctx.limits;
        let first_message = match req.route {
            Route::Sends => parse_batch_within::<records::SendRecord>(req.body, limits)?.first().map(|r| r.provider_message_id.clone()),
            Route::Events => parse_batch_within::<app_events::AppEvent>(req.body, limits)?.first().map(|e| e.provider_message_id.clone()),
            other => return Err(VerifyError::Malformed(format!("not a sender route: {}", other.as_str()))),
        };
        Ok(Verified { partition_key: first_message.unwrap_or_else(|| req.tenant.to_string()), control: None })
    }

    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
        let env = &raw.envelope;
        let mut out = Normalized::default();
        match env.route {
            Route::Sends => {
                for (i, r) in parse_batch::<records::SendRecord>(env.body)?.iter().enumerate() {
                    push_for(&mut out, raw, opts, i, r.draft(i), &r.provider, &r.recipient);
                }
            }
            Route::Events => {
                for (i, e) in parse_batch::<app_events::AppEvent>(env.body)?.iter().enumerate() {
                    push_for(&mut out, raw, opts, i, e.draft(i), &e.provider, &e.recipient);
                }
            }
            ref other => return Err(NormalizeError::Envelope(format!("not a sender route: {}", other.as_str()))),
        }
        Ok(out)
    }

    #[cfg(any(test, feature = "samples"))]
    fn demo_credentials(&self, _ctx: &super::samples::Context, _creds: &mut TenantCredentials) {}

    #[cfg(any(test, feature = "samples"))]
    fn samples(&self, ctx: &super::samples::Context) -> Vec<super::samples::Sample> {
        // `events*.json` are app events, the others send records.
        super::samples::api_key_samples(ctx, self.id(), |name| if name.starts_with("events") { Route::Events } else { Route::Sends })
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
