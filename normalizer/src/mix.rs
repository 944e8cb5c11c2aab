//! A realistic mix of stored raw records (feature `samples`), for the normalizer-core benchmark
//! (`benches/normalize.rs`), its ClickHouse baseline (`scripts/bench-normalizer.sh`) and the
//! test that keeps the mix's output byte-identical across optimisations.
//!
//! Built from every provider's documented fixtures (those with an `.expected.jsonl`), on the
//! route and with the headers its sample posts them with, as ingest stores them
//! (`schemas::avro::encode_raw`). Six records in ten are SES notifications through SNS (the
//! dominant traffic); the other four cycle over the remaining groups (SES through EventBridge,
//! SendGrid batches, Mailgun, Resend, Postmark, Twilio, Brevo, FCM and APNs push results, the
//! sender's send records and app events). Copy `n` of a fixture has every recipient address and
//! every id-like field made unique (`+n` before the `@`, `-n` after an id), so no two records
//! are the same and nothing a cache could keep repeats. Deterministic: no clock is read, so
//! the same mix always gives the same events.

use crate::providers::{registry, samples};
use schemas::{ProviderId, RawEnvelope, Route};
use serde_json::Value;
use std::collections::BTreeMap;

/// After every fixture's own times (events may not be newer than their receipt, `Limits`).
pub const RECEIVED_AT_MS: i64 = 1_800_000_000_000;

/// One stored raw record of the mix.
#[derive(Debug, Clone)]
pub struct MixRecord {
    /// `ses_sns`, `ses_eventbridge`, or the provider's name.
    pub group: String,
    pub envelope: RawEnvelope,
    /// `envelope` as ingest writes it to the raw topic.
    pub payload: Vec<u8>,
}

/// A fixture as a template: where it is posted and its body.
#[derive(Debug, Clone)]
struct Template {
    group: String,
    provider: ProviderId,
    route: Route,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// Every provider's valid fixtures, grouped (SES through SNS first). Those that expect no
/// events (control messages such as the SNS subscription confirmation) are left out.
fn templates() -> Vec<(String, Vec<Template>)> {
    let ctx = samples::Context::new("acme", "http://127.0.0.1:8080");
    let mut groups: Vec<(String, Vec<Template>)> = Vec::new();
    for p in ProviderId::ALL {
        let provider = registry(p);
        let bodies: BTreeMap<String, Vec<u8>> = samples::fixture_bodies(p).into_iter().collect();
        for s in provider.samples(&ctx) {
            let Some(body) = bodies.get(&s.fixture) else { continue };
            let stem = s.fixture.rsplit_once('.').map_or(s.fixture.as_str(), |(stem, _)| stem);
            let expected = samples::fixtures_dir(p).join(format!("{stem}.expected.jsonl"));
            if std::fs::metadata(expected).map_or(true, |m| m.len() == 0) {
                continue;
            }
            let group = match (p, &s.route) {
                (ProviderId::Ses, Route::Webhook) => "ses_sns".to_string(),
                (ProviderId::Ses, _) => "ses_eventbridge".to_string(),
                _ => p.as_str().to_string(),
            };
            // ingest keeps the content type and the headers the provider asks for
            let headers = s
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .filter(|(k, _)| k == "content-type" || provider.kept_headers().contains(&k.as_str()))
                .collect();
            let t = Template { group: group.clone(), provider: p, route: s.route.clone(), headers, body: body.clone() };
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, ts)) => ts.push(t),
                None => groups.push((group, vec![t])),
            }
        }
    }
    groups.sort_by_key(|(g, _)| g != "ses_sns");
    groups
}

/// `n` records: 60 % SES through SNS, the rest spread evenly over the other groups.
pub fn build(n: usize) -> Vec<MixRecord> {
    let groups = templates();
    let (ses, others) = groups.split_first().expect("SES fixtures exist");
    let mut out = Vec::with_capacity(n);
    let (mut n_ses, mut n_other) = (0usize, 0usize);
    for i in 0..n {
        let t = if i % 10 < 6 {
            n_ses += 1;
            &ses.1[(n_ses - 1) % ses.1.len()]
        } else {
            n_other += 1;
            let k = n_other - 1;
            let (_, ts) = &others[k % others.len()];
            &ts[(k / others.len()) % ts.len()]
        };
        out.push(instance(t, i));
    }
    out
}

/// Copy `n` of a template, with unique recipients and ids.
fn instance(t: &Template, n: usize) -> MixRecord {
    let body = vary_body(&t.body, n);
    // an id header (`svix-id`, ..) of the sample may hold the clock's time: replaced whole
    let headers = t.headers.iter().map(|(k, v)| (k.clone(), if k.ends_with("-id") { format!("msg_mix_{n:08}") } else { v.clone() })).collect();
    let envelope = RawEnvelope {
        request_id: format!("00000000-0000-4000-8000-{n:012}"),
        tenant: "acme".into(),
        provider: t.provider,
        url: t.route.path(t.provider, "acme"),
        route: t.route.clone(),
        content_type: t.headers.get("content-type").cloned().unwrap_or_default(),
        received_at: RECEIVED_AT_MS,
        headers,
        body,
    };
    let payload = schemas::avro::encode_raw(&envelope).expect("a raw envelope encodes");
    MixRecord { group: t.group.clone(), envelope, payload }
}

fn vary_body(body: &[u8], n: usize) -> Vec<u8> {
    if let Ok(mut v) = serde_json::from_slice::<Value>(body) {
        vary(&mut v, None, n);
        return serde_json::to_vec(&v).expect("a JSON value serializes");
    }
    // a form body (Twilio)
    match serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
        Ok(params) => {
            let params: Vec<(String, String)> = params.into_iter().map(|(k, v)| { let v = vary_str(&k, &v, n); (k, v) }).collect();
            serde_urlencoded::to_string(params).expect("form pairs serialize").into_bytes()
        }
        Err(_) => body.to_vec(),
    }
}

/// Makes recipients and ids of copy `n` unique, also inside JSON carried as a string (SNS `Message`).
fn vary(v: &mut Value, key: Option<&str>, n: usize) {
    match v {
        Value::String(s) => {
            if let Ok(mut inner @ Value::Object(_)) = serde_json::from_str::<Value>(s) {
                vary(&mut inner, None, n);
                *s = inner.to_string();
            } else {
                *s = vary_str(key.unwrap_or(""), s, n);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| vary(x, key, n)),
        Value::Object(o) => o.iter_mut().for_each(|(k, x)| vary(x, Some(k.as_str()), n)),
        _ => {}
    }
}

fn vary_str(key: &str, s: &str, n: usize) -> String {
    let lower = key.to_ascii_lowercase();
    let id_like = lower.ends_with("id") || lower.ends_with("_id") || lower.ends_with("sid") || lower == "to";
    match s.split_once('@') {
        Some((local, domain)) if !s.contains([' ', '<', '"']) && !local.is_empty() => format!("{local}+{n}@{domain}"),
        _ if id_like && !s.is_empty() && !s.starts_with('+') => format!("{s}-{n}"),
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{handle, OutputBounds};
    use crate::providers::NormalizeOptions;
    use sha2::{Digest, Sha256};

    /// Every record of the mix becomes events and no dead letter, and the share of SES
    /// through SNS is 60 %.
    #[test]
    fn the_mix_is_all_good_traffic() {
        let mix = build(400);
        assert_eq!(mix.iter().filter(|r| r.group == "ses_sns").count(), 240);
        let groups: std::collections::BTreeSet<&str> = mix.iter().map(|r| r.group.as_str()).collect();
        assert!(groups.len() >= 11, "{groups:?}");
        for (i, r) in mix.iter().enumerate() {
            let at = crate::dead_letter::Coordinates { topic: "raw", partition: 0, offset: i as i64 };
            let out = handle(at, Some(&r.payload), &NormalizeOptions::default(), OutputBounds::default(), 1);
            assert!(!out.is_empty() && out.iter().all(|o| !o.dead_letter), "{} record {i}: {out:?}", r.group);
        }
    }

    /// SHA-256 over every output of the first 2 000 records of the mix (dead-letter flag, key,
    /// payload length, and the decoded record), as computed at the commit before the
    /// normalizer-core optimisations (issue 14 goal 1): the optimised mapping must give the
    /// same events. The decoded record and not the Avro bytes: `apache_avro` writes a map
    /// (`metadata`) in its `HashMap`'s random order, so the bytes differ from run to run.
    const MIX_OUTPUT_DIGEST: &str = "7f18df441d6e9e841ac0e4b5298a0e9558782a247166fe2fdb18a4fb58415979";

    #[test]
    fn the_mix_gives_the_same_bytes_as_before_the_optimisations() {
        let mut h = Sha256::new();
        let mut outputs = 0;
        for (i, r) in build(2_000).iter().enumerate() {
            let at = crate::dead_letter::Coordinates { topic: "sendtrace.raw.v1", partition: 3, offset: i as i64 };
            for o in handle(at, Some(&r.payload), &NormalizeOptions::default(), OutputBounds::default(), RECEIVED_AT_MS) {
                h.update([u8::from(o.dead_letter)]);
                h.update((o.key.len() as u64).to_le_bytes());
                h.update(o.key.as_bytes());
                h.update((o.payload.len() as u64).to_le_bytes());
                let decoded = match o.dead_letter {
                    false => format!("{:?}", schemas::avro::decode_event(&o.payload).expect("an event")),
                    true => format!("{:?}", schemas::avro::decode_dead_letter(&o.payload).expect("a dead letter")),
                };
                h.update(decoded.as_bytes());
                outputs += 1;
            }
        }
        assert!(outputs > 2_000, "{outputs}");
        assert_eq!(hex::encode(h.finalize()), MIX_OUTPUT_DIGEST, "{outputs} outputs");
    }
}
