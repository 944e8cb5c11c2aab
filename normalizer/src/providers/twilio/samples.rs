//! Twilio samples: status callbacks signed (`X-Twilio-Signature`) for the public URL ingest is
//! configured with.

use crate::providers::samples::{fixture_bodies, header, Context, Sample};
use schemas::{ProviderId, Route};

pub fn demo_auth_token(ctx: &Context) -> String {
    format!("{}-twilio-auth-token", ctx.tenant)
}

/// The URL Twilio is told to call.
pub fn public_url(ctx: &Context) -> String {
    format!("{}{}", ctx.public_base, Route::Webhook.path(ProviderId::Twilio, &ctx.tenant))
}

pub fn samples(ctx: &Context) -> Vec<Sample> {
    let p = ProviderId::Twilio;
    fixture_bodies(p)
        .into_iter()
        .map(|(name, body)| {
            let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
            let sig = super::signature(&demo_auth_token(ctx), &public_url(ctx), &params);
            let headers = vec![header("content-type", "application/x-www-form-urlencoded"), header(super::HEADER_SIGNATURE, &sig)];
            Sample { provider: p, fixture: name, route: Route::Webhook, path: Route::Webhook.path(p, &ctx.tenant), headers, body }
        })
        .collect()
}
