//! `normalizer check --provider <name> <file>`: one raw webhook body in, canonical
//! events out as JSON lines, through the same code as the running pipeline.

use crate::normalize::normalize;
use crate::providers::{NormalizeError, NormalizeOptions, Normalized, RawRecord};
use schemas::{Event, RawEnvelope};
use std::collections::BTreeMap;

/// Normalizes `body` as if `provider` had POSTed it for tenant `tenant`.
pub fn check(provider: &str, tenant: &str, body: Vec<u8>, opts: &NormalizeOptions, now_ms: i64) -> Result<Normalized, NormalizeError> {
    let envelope = RawEnvelope {
        request_id: "check".into(),
        tenant: tenant.into(),
        provider: provider.to_ascii_lowercase(),
        route: "check".into(),
        url: format!("/check/{provider}"),
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
    use std::path::Path;

    /// `normalizer check` covers every provider: each fixture with an expectation
    /// gives exactly as many events through `check` as its expected file lists.
    #[test]
    fn check_covers_every_provider_fixture() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers");
        let mut checked = 0;
        for provider in schemas::ProviderId::ALL {
            let dir = root.join(provider.as_str()).join("fixtures");
            let Ok(entries) = std::fs::read_dir(&dir) else { panic!("no fixtures for {provider}") };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let Some(stem) = name.strip_suffix(".expected.jsonl") else { continue };
                let Some(body) = ["json", "txt"].iter().find_map(|x| std::fs::read(dir.join(format!("{stem}.{x}"))).ok()) else { continue };
                let want = std::fs::read_to_string(e.path()).unwrap().lines().filter(|l| !l.trim().is_empty()).count();
                let now = chrono::Utc::now().timestamp_millis();
                let got = check(provider.as_str(), "t", body, &NormalizeOptions::default(), now).unwrap_or_else(|err| panic!("{provider} {stem}: {err}"));
                assert!(got.rejected.is_empty(), "{provider} {stem}: {:?}", got.rejected);
                assert_eq!(got.events.len(), want, "{provider} {stem}");
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked}");
    }
}
