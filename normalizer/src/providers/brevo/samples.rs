//! Brevo samples: webhook POSTs with the basic-auth pair of the webhook URL. Brevo's times are
//! epoch numbers under its own keys (`ts`, `ts_event` in seconds, `ts_epoch` in milliseconds):
//! every fixture is moved by the same amount, so the newest fixture time lands two hours ago
//! and the fixtures keep their order.

use crate::providers::samples::{fixture_bodies, header, Context, Sample};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use schemas::{ProviderId, Route};
use serde_json::Value;

/// The newest `ts_event` among the fixtures (seconds).
const NEWEST_FIXTURE_SECS: i64 = 1_604_950_000;

pub fn demo_password(ctx: &Context) -> String {
    format!("{}-brevo-password", ctx.tenant)
}

fn refreshed(body: &[u8], shift_secs: i64) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else { return body.to_vec() };
    for (key, unit) in [("ts", 1), ("ts_event", 1), ("ts_epoch", 1000)] {
        if let Some(t) = v.get(key).and_then(Value::as_i64) {
            v[key] = Value::from(t + shift_secs * unit);
        }
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
}

pub fn samples(ctx: &Context) -> Vec<Sample> {
    let p = ProviderId::Brevo;
    let basic = format!("Basic {}", B64.encode(format!("brevo:{}", demo_password(ctx))));
    let shift = crate::providers::samples::now_secs() - 7200 - NEWEST_FIXTURE_SECS;
    fixture_bodies(p)
        .into_iter()
        .map(|(name, body)| {
            let headers = vec![header("content-type", "application/json"), header("authorization", &basic)];
            Sample { provider: p, fixture: name, route: Route::Webhook, path: Route::Webhook.path(p, &ctx.tenant), headers, body: refreshed(&body, shift) }
        })
        .collect()
}
