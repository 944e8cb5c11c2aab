//! Dead-letter records: what could not be normalized, why, and where it came from.

use schemas::DeadLetter;

/// Builds the dead-letter record for a raw Kafka record that failed.
pub fn record(
    reason_code: &str,
    reason: &str,
    (topic, partition, offset): (&str, i32, i64),
    tenant: Option<&str>,
    provider: Option<&str>,
    raw: &[u8],
    now_ms: i64,
) -> DeadLetter {
    DeadLetter {
        reason_code: reason_code.to_string(),
        reason: reason.to_string(),
        stage: "normalizer".into(),
        raw_topic: topic.to_string(),
        raw_partition: partition,
        raw_offset: offset,
        tenant: tenant.map(str::to_string),
        provider: provider.map(str::to_string),
        failed_at: now_ms,
        raw: raw.to_vec(),
    }
}
