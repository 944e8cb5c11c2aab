//! Fixture checks shared by every provider's tests: each `<name>.json` (or `.txt`
//! for form bodies) beside an `<name>.expected.jsonl` must map to exactly those events.

use super::{NormalizeOptions, RawRecord};
use schemas::RawEnvelope;
use std::collections::BTreeMap;
use std::path::Path;

/// The old all-or-nothing view of a record, for tests of one-item bodies: the events, or
/// the first item's error.
pub fn all_events(r: Result<super::Normalized, super::NormalizeError>) -> Result<Vec<schemas::Event>, super::NormalizeError> {
    let mut out = r?;
    match out.rejected.is_empty() {
        true => Ok(out.events),
        false => Err(out.rejected.swap_remove(0).error),
    }
}

/// A stored raw record for `body`, as ingest would have written it.
pub fn envelope(provider: &str, body: Vec<u8>, headers: BTreeMap<String, String>) -> RawEnvelope {
    let id: schemas::ProviderId = provider.parse().expect("a known provider");
    let route = super::registry(id).routes()[0].clone();
    RawEnvelope {
        request_id: "test".into(),
        tenant: "acme".into(),
        provider: id,
        url: route.path(id, "acme"),
        route,
        content_type: "application/json".into(),
        // After every fixture's own times (events may not be newer than their receipt, `Limits`).
        received_at: 1_800_000_000_000,
        headers,
        body,
    }
}

/// The stored record of fixture `name` of `provider`: on the route its sample posts it to
/// (`Provider::samples`), else the provider's first route.
pub fn fixture_envelope(provider: &str, name: &str, body: Vec<u8>) -> RawEnvelope {
    let mut env = envelope(provider, body, BTreeMap::new());
    let ctx = super::samples::Context::new("acme", "http://127.0.0.1");
    if let Some(sample) = super::registry(env.provider).samples(&ctx).into_iter().find(|s| s.fixture == name) {
        env.url = sample.route.path(env.provider, "acme");
        env.route = sample.route;
    }
    env
}

/// Runs every fixture in `dir` through `crate::normalize::normalize` and compares
/// each expected field (only the fields the expectation names). Returns how many were checked.
pub fn check_fixtures(provider: &str, dir: &Path) -> usize {
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("fixture dir").flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".expected.jsonl") else { continue };
        let body_path = ["json", "txt", "form"]
            .iter()
            .map(|ext| dir.join(format!("{stem}.{ext}")))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no body for {name}"));
        let body = std::fs::read(&body_path).unwrap();
        let file = body_path.file_name().unwrap().to_string_lossy().to_string();
        let env = fixture_envelope(provider, &file, body);
        let raw = RawRecord::new(&env, "raw", 0, 7);
        let out = crate::normalize::normalize(&raw, &NormalizeOptions::default()).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert!(out.rejected.is_empty(), "{stem}: rejected items {:?}", out.rejected);
        let events = out.events;
        let expected: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}")))
            .collect();
        assert_eq!(events.len(), expected.len(), "{stem}: number of events");
        for (i, (event, want)) in events.iter().zip(&expected).enumerate() {
            let got = serde_json::to_value(event).unwrap();
            for (field, value) in want.as_object().unwrap() {
                assert_eq!(&got[field], value, "{stem}: event {i}, field `{field}`");
            }
            assert_eq!(event.provider, provider);
        }
        checked += 1;
    }
    checked
}

/// The route a test request's `url` names (tests build requests by URL); leaked, tests only.
pub fn route_of(url: &str) -> &'static schemas::Route {
    Box::leak(Box::new(route_of_url(url)))
}

fn route_of_url(url: &str) -> schemas::Route {
    use schemas::Route;
    let path = url.split('?').next().unwrap_or(url);
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v1", "sends", ..] => Route::Sends,
        ["v1", "events", ..] => Route::Events,
        ["v1", "push-results", ..] => Route::PushResults,
        ["webhooks", _, _, variant] => Route::WebhookVariant(variant.to_string().into()),
        _ => Route::Webhook,
    }
}

/// A verification context for tests: default limits, and SNS certificates from the committed
/// test certificate (any allowed URL serves it).
pub fn ctx() -> &'static super::VerifyContext {
    static CTX: std::sync::OnceLock<super::VerifyContext> = std::sync::OnceLock::new();
    CTX.get_or_init(|| {
        let cert = include_bytes!("ses/fixtures/test_signing_cert.pem").to_vec();
        super::VerifyContext::new(Default::default(), std::sync::Arc::new(move |_url: &str| -> Result<Vec<u8>, String> { Ok(cert.clone()) }))
    })
}

/// The JSON fixtures (`*.json`) of a provider's fixtures folder, in name order.
pub fn fixture_docs(dir: &Path) -> Vec<serde_json::Value> {
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
    names.sort();
    names
        .iter()
        .filter(|n| n.ends_with(".json"))
        .map(|n| serde_json::from_slice(&std::fs::read(dir.join(n)).unwrap()).unwrap_or_else(|e| panic!("{n}: {e}")))
        .collect()
}

/// A mapping's answer as comparable text: its drafts' `Debug` form, or its error's message.
pub fn shown<T: std::fmt::Debug, E: std::fmt::Display>(r: Result<T, E>) -> Result<String, String> {
    r.map(|d| format!("{d:?}")).map_err(|e| e.to_string())
}

/// Issue 14's differential check of a provider's borrowed mapping against the `Value` mapping
/// it replaced (`map_before.rs`, the oracle): on every odd variant (`odd_variants`) of every
/// document, `new` and `old` answer the same (drafts or errors, partition key, as each provider
/// puts them in `T`). Returns how many bodies were checked.
pub fn differential<T: PartialEq + std::fmt::Debug>(docs: &[serde_json::Value], new: impl Fn(&[u8]) -> T, old: impl Fn(&[u8]) -> T) -> usize {
    let mut checked = 0;
    for doc in docs {
        for body in odd_variants(doc) {
            assert_eq!(new(body.as_bytes()), old(body.as_bytes()), "{body}");
            checked += 1;
        }
    }
    checked
}

/// The path (keys and array indices) of every value in `v`, at any depth, appended to `out`.
pub fn json_paths(v: &serde_json::Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    use serde_json::Value;
    match v {
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            at.push(k.clone());
            out.push(at.clone());
            json_paths(x, at, out);
            at.pop();
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| {
            at.push(i.to_string());
            out.push(at.clone());
            json_paths(x, at, out);
            at.pop();
        }),
        _ => {}
    }
}

/// The value at `path` (from [`json_paths`]) in `v`.
pub fn json_at_mut<'v>(v: &'v mut serde_json::Value, path: &[String]) -> Option<&'v mut serde_json::Value> {
    use serde_json::Value;
    path.iter().try_fold(v, |v, k| match v {
        Value::Object(o) => o.get_mut(k),
        Value::Array(a) => a.get_mut(k.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Variants of a JSON document for differential tests of a borrowed mapping against the
/// `Value` mapping it replaced (issue 14): the document itself, every value in it (at any
/// depth) replaced by each of a set of odd values of every JSON type, each key of every object
/// repeated before and after with another value, and malformed texts.
pub fn odd_variants(doc: &serde_json::Value) -> Vec<String> {
    use serde_json::{json, Value};
    let odd = [json!(null), json!(7), json!(-1.5), json!(1e300), json!(18446744073709551615u64), json!(true), json!(""), json!("x@y.io"),
        json!(" 1386636115 "), json!("not a time"), json!([]), json!({}), json!(["a@x.io", 3, null, "b@x.io"]),
        json!([{"name": "n", "value": "v", "emailAddress": "z@x.io"}, 1, {"name": 2}]), json!({"k": "v", "n": 1, "o": {}})];
    let text = doc.to_string();
    let mut out = vec![text.clone()];
    let mut all = Vec::new();
    json_paths(doc, &mut Vec::new(), &mut all);
    for path in &all {
        for value in &odd {
            let mut d = doc.clone();
            if let Some(slot) = json_at_mut(&mut d, path) {
                *slot = value.clone();
                out.push(d.to_string());
            }
        }
    }
    // A repeated key of any object: the last one counts, as in a `Value` map.
    let slot = Value::from("__odd_variant_slot__");
    for path in std::iter::once(&Vec::new()).chain(&all) {
        let mut d = doc.clone();
        let Some(Value::Object(o)) = json_at_mut(&mut d, path).map(|v| std::mem::replace(v, slot.clone())) else { continue };
        let (object, with_slot) = (Value::Object(o.clone()).to_string(), d.to_string());
        for key in o.keys() {
            let key = Value::from(key.as_str()).to_string();
            let early = format!("{{{key}:\"early\",{}", &object[1..]);
            let late = format!("{},{key}:{{\"late\":1}}}}", &object[..object.len() - 1]);
            out.push(with_slot.replacen(&slot.to_string(), &early, 1));
            out.push(with_slot.replacen(&slot.to_string(), &late, 1));
        }
    }
    let half = (0..=text.len() / 2).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    for bad in [&text[..half], "[1,2]", "3", "\"s\"", "null", "{}", "[]", "[{}]", "{\"a\":\"\\ud800\"}", "[{\"email\":\"\\ud800\"}]"] {
        out.push(bad.to_string());
    }
    out
}
