//! Sample traffic (feature `samples`): requests as each provider sends them, signed the way it
//! signs, with deterministic demo credentials. Bodies are the documented fixtures in each
//! provider's `fixtures/` folder (those with an `.expected.jsonl`), with their times moved into
//! the last two hours, a minute apart in building order (so rows are within retention), and,
//! for signed schemes, a fresh timestamp.
//!
//! Each provider implements `Provider::demo_credentials` and `Provider::samples`; [`all`] and
//! [`demo_credentials`] loop over the registry, so `sample-traffic`, the all-providers test and
//! the demo cover a new provider without a line of their own.

use super::{registry, TenantCredentials};
use schemas::ProviderId;
use serde_json::Value;
use std::path::PathBuf;

/// For whom samples are made.
#[derive(Debug, Clone)]
pub struct Context {
    pub tenant: String,
    /// Base URL the provider is told to call (ingest's public URL, e.g. `http://127.0.0.1:8080`):
    /// schemes that sign the URL (Twilio) sign this one.
    pub public_base: String,
}

impl Context {
    pub fn new(tenant: &str, public_base: &str) -> Self {
        Context { tenant: tenant.into(), public_base: public_base.trim_end_matches('/').into() }
    }

    /// The tenant's demo API key.
    pub fn api_key(&self) -> String {
        format!("{}-api-key", self.tenant)
    }
}

/// One request to make.
#[derive(Debug, Clone)]
pub struct Sample {
    pub provider: ProviderId,
    pub fixture: String,
    pub route: schemas::Route,
    /// Path (and query) to POST to.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Every provider's demo credentials for `ctx.tenant`, with the tenant's API key.
pub fn demo_credentials(ctx: &Context) -> TenantCredentials {
    let mut creds = TenantCredentials { api_key: Some(ctx.api_key()), ..Default::default() };
    for p in ProviderId::ALL {
        registry(p).demo_credentials(ctx, &mut creds);
    }
    creds
}

/// Every sample of every provider, in registry order.
pub fn all(ctx: &Context) -> Vec<Sample> {
    ProviderId::ALL.into_iter().flat_map(|p| registry(p).samples(ctx)).collect()
}

/// A header pair.
pub fn header(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// The `fixtures/` folder of `provider`.
pub fn fixtures_dir(provider: ProviderId) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/providers").join(provider.as_str()).join("fixtures")
}

/// Fixture bodies of `provider` that have an expected-events file (valid samples), sorted.
pub fn fixture_bodies(provider: ProviderId) -> Vec<(String, Vec<u8>)> {
    let dir = fixtures_dir(provider);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|n| n.strip_suffix(".expected.jsonl"))
        .filter_map(|stem| {
            ["json", "txt"].iter().find_map(|ext| {
                let f = format!("{stem}.{ext}");
                std::fs::read(dir.join(&f)).ok().map(|b| (f, b))
            })
        })
        .collect()
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The time the next sample's newest timestamp is moved to: samples get ascending times
/// (a minute apart, starting two hours ago) in the order they are built, so a documented
/// open posted after a documented delivery also happens after it.
fn next_sample_time() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static N: AtomicI64 = AtomicI64::new(0);
    chrono::Utc::now().timestamp_millis() - 7_200_000 + N.fetch_add(1, Ordering::Relaxed) * 60_000
}

/// Moves every RFC 3339 string and every `timestamp`-like epoch number so that the
/// newest lands at the next sample time (see `next_sample_time`); relative order is kept.
pub fn refresh_times(v: &mut Value) {
    fn collect(v: &Value, key: Option<&str>, out: &mut Vec<i64>) {
        match v {
            Value::String(s) => {
                if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                    out.push(t.timestamp_millis());
                }
            }
            Value::Number(n) if key.is_some_and(is_epoch_key) => {
                if let Some(f) = n.as_f64() {
                    if f > 1e9 && f < 1e10 {
                        out.push((f * 1000.0) as i64);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| collect(x, None, out)),
            Value::Object(o) => o.iter().for_each(|(k, x)| collect(x, Some(k), out)),
            _ => {}
        }
    }
    fn apply(v: &mut Value, key: Option<&str>, shift_ms: i64) {
        match v {
            Value::String(s) => {
                if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                    let moved = t.with_timezone(&chrono::Utc) + chrono::Duration::milliseconds(shift_ms);
                    *s = moved.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                }
            }
            Value::Number(n) if key.is_some_and(is_epoch_key) => {
                if let Some(f) = n.as_f64() {
                    if f > 1e9 && f < 1e10 {
                        let moved = f + shift_ms as f64 / 1000.0;
                        *v = if n.is_f64() { Value::from(moved) } else { Value::from(moved.round() as i64) };
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| apply(x, None, shift_ms)),
            Value::Object(o) => o.iter_mut().for_each(|(k, x)| apply(x, Some(k.as_str()), shift_ms)),
            _ => {}
        }
    }
    fn is_epoch_key(k: &str) -> bool {
        k == "timestamp" || k.ends_with("_at") || k == "time"
    }
    let mut times = Vec::new();
    collect(v, None, &mut times);
    if let Some(max) = times.iter().max() {
        apply(v, None, next_sample_time() - max);
    }
}

pub fn json_refreshed(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            refresh_times(&mut v);
            serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
        }
        Err(_) => body.to_vec(),
    }
}


/// Samples of a provider whose requests the tenant's API key authenticates: each fixture POSTed
/// as JSON with the key, to the route `route_of(fixture name)`.
pub fn api_key_samples(ctx: &Context, provider: ProviderId, route_of: impl Fn(&str) -> schemas::Route) -> Vec<Sample> {
    fixture_bodies(provider)
        .into_iter()
        .map(|(name, body)| {
            let headers = vec![header("content-type", "application/json"), header(super::signature::API_KEY_HEADER, &ctx.api_key())];
            let route = route_of(&name);
            let path = route.path(provider, &ctx.tenant);
            Sample { provider, fixture: name, route, path, headers, body: json_refreshed(&body) }
        })
        .collect()
}
