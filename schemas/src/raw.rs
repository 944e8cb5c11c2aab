//! What ingest writes (the raw envelope) and what the normalizer cannot read (a dead letter).

use std::collections::BTreeMap;

/// A provider request exactly as ingest received it (`avro/raw_envelope.avsc`).
#[derive(Debug, Clone, PartialEq)]
pub struct RawEnvelope {
    pub request_id: String,
    pub tenant: String,
    pub provider: String,
    pub route: String,
    pub url: String,
    pub content_type: String,
    pub received_at: i64,
    /// Lower-case header names; only those signatures and metadata need.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// A record a stage could not process (`avro/dead_letter.avsc`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeadLetter {
    pub reason_code: String,
    pub reason: String,
    pub stage: String,
    pub raw_topic: String,
    pub raw_partition: i32,
    pub raw_offset: i64,
    pub tenant: Option<String>,
    pub provider: Option<String>,
    pub failed_at: i64,
    /// The record value, or its first bytes when `raw_truncated` (see [`DeadLetter::with_raw`]).
    pub raw: Vec<u8>,
    /// Position of the failed item (or output event) inside the record, when only part of it failed.
    pub item: Option<i32>,
    /// Size of the whole record value.
    pub raw_size: i64,
    pub raw_truncated: bool,
}

impl DeadLetter {
    /// Keeps at most `max_bytes` of `raw`: a dead letter must stay far below the broker's
    /// message limit whatever the record was (the record itself stays at its coordinates).
    pub fn with_raw(mut self, raw: &[u8], max_bytes: usize) -> Self {
        let keep = raw.len().min(max_bytes);
        self.raw = raw[..keep].to_vec();
        self.raw_size = raw.len() as i64;
        self.raw_truncated = keep < raw.len();
        self
    }
}
