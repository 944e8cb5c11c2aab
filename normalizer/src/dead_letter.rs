//! Dead-letter records: what could not be normalized, why, and where it came from.
//!
//! A dead letter is bounded whatever the record was: the reason, tenant and provider are
//! cut to fixed lengths and the raw value to `dead_letter_raw_max_bytes`
//! ([`schemas::DeadLetter::with_raw`]), so it always fits the broker's message limit (the
//! record itself stays on the raw topic at the coordinates the dead letter names).

use schemas::DeadLetter;

/// Longest reason kept, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// Longest tenant or provider name kept, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Upper bound of everything in an encoded dead letter but its raw bytes (reason, names,
/// the raw topic name (≤ 249 bytes in Kafka), numbers, Avro framing).
pub const MAX_OVERHEAD_BYTES: usize = 4096;

/// Where a failed record was read.
#[derive(Debug, Clone, Copy)]
pub struct Coordinates<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Why and what: the parts of a dead letter that depend on the failure.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub reason_code: &'a str,
    pub reason: &'a str,
    /// Position of the failed item (or output event), when only part of the record failed.
    pub item: Option<usize>,
}

/// Builds the bounded dead-letter record for a raw Kafka record (or one of its items) that failed.
pub fn record(
    failure: Failure<'_>,
    at: Coordinates<'_>,
    tenant: Option<&str>,
    provider: Option<&str>,
    raw: &[u8],
    raw_max_bytes: usize,
    now_ms: i64,
) -> DeadLetter {
    DeadLetter {
        reason_code: truncate(failure.reason_code, 64).to_string(),
        reason: truncate(failure.reason, MAX_REASON_BYTES).to_string(),
        stage: "normalizer".into(),
        raw_topic: at.topic.to_string(),
        raw_partition: at.partition,
        raw_offset: at.offset,
        tenant: tenant.map(|t| truncate(t, MAX_NAME_BYTES).to_string()),
        provider: provider.map(|p| truncate(p, MAX_NAME_BYTES).to_string()),
        failed_at: now_ms,
        item: failure.item.map(|i| i32::try_from(i).unwrap_or(i32::MAX)),
        ..Default::default()
    }
    .with_raw(raw, raw_max_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_is_bounded_whatever_the_record() {
        let huge = "é".repeat(1_000_000);
        let raw = vec![7u8; 5_000_000];
        let at = Coordinates { topic: &"t".repeat(249), partition: 1, offset: 2 };
        let failure = Failure { reason_code: "invalid_json", reason: &huge, item: Some(usize::MAX) };
        let dl = record(failure, at, Some(&huge), Some(&huge), &raw, 65_536, 3);
        let bytes = schemas::avro::encode_dead_letter(&dl).unwrap();
        assert!(bytes.len() <= 65_536 + MAX_OVERHEAD_BYTES, "{}", bytes.len());
        assert_eq!((dl.raw.len(), dl.raw_size, dl.raw_truncated), (65_536, 5_000_000, true));
        assert!(dl.reason.len() <= MAX_REASON_BYTES && dl.reason.chars().all(|c| c == 'é'));
        assert_eq!(dl.item, Some(i32::MAX));
        let small = record(Failure { item: None, ..failure }, at, None, None, b"ab", 65_536, 3);
        assert_eq!((small.raw.as_slice(), small.raw_truncated, small.item), (&b"ab"[..], false, None));
    }
}
