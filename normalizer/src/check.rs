//! `normalizer check --provider <name> <file>`: one raw webhook body in, canonical
//! events out as JSON lines, through the same code as the running pipeline.

use crate::normalize::normalize;
use crate::providers::{NormalizeError, NormalizeOptions, RawRecord};
use schemas::{Event, RawEnvelope};
use std::collections::BTreeMap;

/// Normalizes `body` as if `provider` had POSTed it for tenant `tenant`.
pub fn check(provider: &str, tenant: &str, body: Vec<u8>, opts: &NormalizeOptions, now_ms: i64) -> Result<Vec<Event>, NormalizeError> {
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
    normalize(&RawRecord { envelope: &envelope, topic: "check", partition: 0, offset: 0 }, opts)
}

/// JSON lines, one per event, fields named as in the Avro schema.
pub fn to_json_lines(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default() + "\n")
        .collect()
}
