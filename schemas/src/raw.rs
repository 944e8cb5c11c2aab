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

/// A raw record that could not be normalized (`avro/dead_letter.avsc`).
#[derive(Debug, Clone, PartialEq)]
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
    pub raw: Vec<u8>,
}
