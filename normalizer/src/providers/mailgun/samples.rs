//! Mailgun samples: the `signature` object (HMAC-SHA256 of timestamp ‖ token) in the body,
//! a fresh token per sample.

use crate::providers::samples::{fixture_bodies, header, now_secs, refresh_times, Context, Sample};
use crate::providers::signature::hmac_sha256;
use schemas::{ProviderId, Route};
use serde_json::Value;

pub fn demo_signing_key(ctx: &Context) -> String {
    format!("{}-mailgun-signing-key", ctx.tenant)
}

pub fn samples(ctx: &Context) -> Vec<Sample> {
    let p = ProviderId::Mailgun;
    let key = demo_signing_key(ctx);
    let mut out = Vec::new();
    for (name, body) in fixture_bodies(p) {
        let Ok(mut v) = serde_json::from_slice::<Value>(&body) else { continue };
        if let Some(ed) = v.get_mut("event-data") {
            refresh_times(ed);
        }
        let ts = now_secs().to_string();
        let token = hex::encode(hmac_sha256(b"token", &[ctx.tenant.as_bytes(), name.as_bytes(), ts.as_bytes()]));
        let sig = hex::encode(hmac_sha256(key.as_bytes(), &[ts.as_bytes(), token.as_bytes()]));
        v["signature"] = serde_json::json!({ "timestamp": ts, "token": token, "signature": sig });
        let body = serde_json::to_vec(&v).unwrap_or_default();
        out.push(Sample { provider: p, fixture: name, route: Route::Webhook, path: Route::Webhook.path(p, &ctx.tenant), headers: vec![header("content-type", "application/json")], body });
    }
    out
}
