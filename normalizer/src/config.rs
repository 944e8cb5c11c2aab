//! Normalizer configuration: defaults that run against the local stack.

use crate::providers::NormalizeOptions;
use runtime::kafka::KafkaConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub kafka: KafkaConfig,
    /// Consumer group of the normalizer.
    pub group_id: String,
    /// Topic ingest writes raw envelopes to.
    pub raw_topic: String,
    /// Topic canonical events are written to (Avro, keyed by delivery key).
    pub events_topic: String,
    /// Topic for records that cannot be normalized.
    pub dead_letter_topic: String,
    /// Create the topics at start if missing.
    pub create_topics: bool,
    /// Address for `/metrics` and `/healthz`.
    pub admin_addr: String,
    /// Most raw records handled per batch.
    pub batch_max_records: usize,
    /// How long to wait to fill a batch.
    pub batch_linger_ms: u64,
    /// How tags and custom fields become attribution.
    pub mapping: NormalizeOptions,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            kafka: KafkaConfig::default(),
            group_id: "sendtrace-normalizer".into(),
            raw_topic: schemas::topics::RAW.into(),
            events_topic: schemas::topics::EVENTS.into(),
            dead_letter_topic: schemas::topics::DEAD_LETTER.into(),
            create_topics: true,
            admin_addr: "127.0.0.1:9101".into(),
            batch_max_records: 500,
            batch_linger_ms: 20,
            mapping: NormalizeOptions::default(),
        }
    }
}
