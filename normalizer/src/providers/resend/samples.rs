//! Resend samples: Svix-signed POSTs (HMAC-SHA256 over `id.timestamp.body`, `v1,<base64>`).

use crate::providers::samples::{fixture_bodies, header, json_refreshed, now_secs, Context, Sample};
use crate::providers::signature::hmac_sha256;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use schemas::{ProviderId, Route};

pub fn demo_secret(ctx: &Context) -> String {
    format!("whsec_{}", B64.encode(format!("{}-resend-secret-0123456789", ctx.tenant)))
}

pub fn samples(ctx: &Context) -> Vec<Sample> {
    let p = ProviderId::Resend;
    let key = super::svix::secret_key(&demo_secret(ctx)).unwrap_or_default();
    fixture_bodies(p)
        .into_iter()
        .enumerate()
        .map(|(i, (name, body))| {
            let body = json_refreshed(&body);
            let id = format!("msg_demo{}_{i}", now_secs());
            let ts = now_secs().to_string();
            let sig = B64.encode(hmac_sha256(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", &body]));
            let headers = vec![header("content-type", "application/json"), header("svix-id", &id), header("svix-timestamp", &ts), header("svix-signature", &format!("v1,{sig}"))];
            Sample { provider: p, fixture: name, route: Route::Webhook, path: Route::Webhook.path(p, &ctx.tenant), headers, body }
        })
        .collect()
}
