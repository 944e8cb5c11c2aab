//! Postmark samples: webhook POSTs with the basic-auth pair of the webhook URL.

use crate::providers::samples::{fixture_bodies, header, json_refreshed, Context, Sample};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use schemas::{ProviderId, Route};

pub fn demo_password(ctx: &Context) -> String {
    format!("{}-postmark-password", ctx.tenant)
}

pub fn samples(ctx: &Context) -> Vec<Sample> {
    let p = ProviderId::Postmark;
    let basic = format!("Basic {}", B64.encode(format!("postmark:{}", demo_password(ctx))));
    fixture_bodies(p)
        .into_iter()
        .map(|(name, body)| {
            let headers = vec![header("content-type", "application/json"), header("authorization", &basic)];
            Sample { provider: p, fixture: name, route: Route::Webhook, path: Route::Webhook.path(p, &ctx.tenant), headers, body: json_refreshed(&body) }
        })
        .collect()
}
