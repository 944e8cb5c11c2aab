//! Dead letters of the aggregator: events-topic records it will not apply, with the reason.
//!
//! The record is the project's `DeadLetter` (`schemas::DeadLetter`) with `stage = "aggregator"`;
//! `raw_topic/raw_partition/raw_offset` are the record's coordinates on the events topic and
//! `raw` is the record unchanged, unless it is larger than `dead_letter_max_raw_bytes` (then
//! empty, and the coordinates point to it): a dead letter must always fit the broker's
//! message size, or publishing it would stall the partition in its turn.

use schemas::DeadLetter;

/// Why a record is dead-lettered: a bounded code and a reason (never payload text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: &'static str,
    pub reason: String,
}

/// Longest tenant or provider name a dead letter copies from a refused event (a longer one,
/// itself a reason for refusal, is left out: the dead letter must stay small).
pub const MAX_NAME_BYTES: usize = 256;

/// The dead letter of the record at `(topic, partition, offset)`.
pub fn record(
    reason: &Reason,
    (topic, partition, offset): (&str, i32, i64),
    tenant: Option<&str>,
    provider: Option<&str>,
    raw: &[u8],
    max_raw_bytes: usize,
    now_ms: i64,
) -> DeadLetter {
    let raw_size = raw.len() as i64;
    let (raw, note) = if raw.len() <= max_raw_bytes {
        (raw.to_vec(), String::new())
    } else {
        (Vec::new(), format!(" (record of {} bytes not copied: read it at {topic}/{partition}/{offset})", raw.len()))
    };
    DeadLetter {
        reason_code: reason.code.to_string(),
        reason: format!("{}{note}", reason.reason),
        stage: "aggregator".into(),
        raw_topic: topic.to_string(),
        raw_partition: partition,
        raw_offset: offset,
        tenant: tenant.filter(|t| t.len() <= MAX_NAME_BYTES).map(str::to_string),
        provider: provider.filter(|p| p.len() <= MAX_NAME_BYTES).map(str::to_string),
        failed_at: now_ms,
        raw_truncated: raw.len() as i64 != raw_size,
        raw,
        raw_size,
        item: None,
        // canonical events carry no request id
        request_id: None,
    }
}

/// The record key on the dead-letter topic (the normalizer's form: `topic/partition/offset`).
pub fn key(d: &DeadLetter) -> String {
    format!("{}/{}/{}", d.raw_topic, d.raw_partition, d.raw_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_reason_and_bounded_raw() {
        let r = Reason { code: "recipient_too_long", reason: "recipient is 400 bytes".into() };
        let d = record(&r, ("events", 3, 42), Some("acme"), Some("ses"), b"abc", 10, 7);
        assert_eq!((d.stage.as_str(), d.reason_code.as_str(), d.raw_partition, d.raw_offset, d.raw.as_slice()), ("aggregator", "recipient_too_long", 3, 42, &b"abc"[..]));
        assert_eq!(key(&d), "events/3/42");
        let big = record(&r, ("events", 3, 43), None, None, &[0u8; 11], 10, 7);
        assert!(big.raw.is_empty() && big.reason.contains("11 bytes not copied") && big.reason.contains("events/3/43"));
        assert!(big.raw_truncated && big.raw_size == 11);
        let long = "t".repeat(MAX_NAME_BYTES + 1);
        assert_eq!(record(&r, ("events", 3, 44), Some(long.as_str()), Some("ses"), b"", 10, 7).tenant, None, "a dead letter stays small");
        let bytes = schemas::avro::encode_dead_letter(&big).unwrap();
        assert_eq!(schemas::avro::decode_dead_letter(&bytes).unwrap(), big);
    }
}
