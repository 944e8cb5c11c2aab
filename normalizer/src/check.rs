//! `normalizer check --provider <name> <file>`: one raw webhook body in, canonical
//! events out as JSON lines, through the same code as the running pipeline.

use crate::normalize::normalize;
use crate::providers::{registry, NormalizeError, NormalizeOptions, Normalized, RawRecord};
use schemas::{Event, ProviderId, RawEnvelope, Route};
use std::collections::BTreeMap;

/// Normalizes `body` as if `provider` had POSTed it for tenant `tenant` on `route` (as stored:
/// `webhook`, `webhook/eventbridge`, `sends`, `events`, `push_results`; by default the
/// provider's first route).
pub fn check(provider: &str, route: Option<&str>, tenant: &str, body: Vec<u8>, opts: &NormalizeOptions, now_ms: i64) -> Result<Normalized, NormalizeError> {
    let id: ProviderId = provider.parse().map_err(|_| NormalizeError::UnknownProvider(provider.to_string()))?;
    let routes = registry(id).routes();
    let route = match route {
        None => routes[0].clone(),
        Some(r) => Route::parse(r, "")
            .filter(|r| routes.contains(r))
            .ok_or_else(|| NormalizeError::Envelope(format!("{id} has no route `{r}`; its routes: {}", routes.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))))?,
    };
    let envelope = RawEnvelope {
        request_id: "check".into(),
        tenant: tenant.into(),
        provider: id,
        url: route.path(id, tenant),
        route,
        content_type: String::new(),
        received_at: now_ms,
        headers: BTreeMap::new(),
        body,
    };
    normalize(&RawRecord::new(&envelope, "check", 0, 0), opts)
}

/// JSON lines, one per event, fields named as in the Avro schema.
pub fn to_json_lines(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default() + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `normalizer check` covers every provider: each sample (one per fixture with an
    /// expectation, on its route) gives exactly as many events as its expected file lists.
    #[test]
    fn check_covers_every_provider_fixture() {
        let ctx = crate::providers::samples::Context::new("t", "http://127.0.0.1:8080");
        let mut checked = 0;
        for sample in crate::providers::samples::all(&ctx) {
            let p = sample.provider;
            let stem = sample.fixture.rsplit_once('.').unwrap().0;
            let expected = crate::providers::samples::fixtures_dir(p).join(format!("{stem}.expected.jsonl"));
            let want = std::fs::read_to_string(expected).unwrap().lines().filter(|l| !l.trim().is_empty()).count();
            let now = chrono::Utc::now().timestamp_millis();
            let got = check(p.as_str(), Some(&sample.route.as_str()), "t", sample.body, &NormalizeOptions::default(), now).unwrap_or_else(|err| panic!("{p} {stem}: {err}"));
            assert!(got.rejected.is_empty(), "{p} {stem}: {:?}", got.rejected);
            assert_eq!(got.events.len(), want, "{p} {stem}");
            checked += 1;
        }
        assert!(checked > 100, "{checked}");
        let err = check("ses", Some("sends"), "t", b"{}".to_vec(), &NormalizeOptions::default(), 0).unwrap_err();
        assert!(err.to_string().contains("webhook, webhook/eventbridge"), "{err}");
    }
}
