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
    /// Address for `/metrics`, `/healthz` and `/readyz`.
    pub admin_addr: String,
    /// Most raw records handled per batch.
    pub batch_max_records: usize,
    /// How long to wait to fill a batch.
    pub batch_linger_ms: u64,
    /// Most bytes of raw record values handled per batch (a batch stops filling at this size).
    pub batch_max_raw_bytes: usize,
    /// Outputs of a batch are produced whenever this many bytes are pending, which bounds a
    /// batch's memory (offsets are still stored only once the whole batch is acknowledged).
    pub batch_max_output_bytes: usize,
    /// Largest encoded event sent to the events topic; a larger one becomes a dead letter.
    /// Must stay below the producer's `message.max.bytes` (checked at start).
    pub max_event_bytes: usize,
    /// Most bytes of the raw record copied into a dead letter (the record itself stays on the
    /// raw topic at the coordinates the dead letter names). Checked at start against `message.max.bytes`.
    pub dead_letter_raw_max_bytes: usize,
    /// Most dead letters for the items of one record; the rest are counted in one more dead letter.
    pub max_dead_letters_per_record: usize,
    /// How tags and custom fields become attribution, and the bounds on one record (`[mapping.limits]`).
    pub mapping: NormalizeOptions,
    /// How often the broker is probed for `/readyz` and consumer lag measured, and how long a probe may take.
    pub readiness: runtime::readiness::ReadinessConfig,
}

/// A configuration the normalizer cannot run with.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("`{name}` ({value} bytes) leaves no room under the producer's message.max.bytes ({max} bytes, with {overhead} bytes of record overhead)")]
    AboveMessageMax { name: &'static str, value: usize, max: usize, overhead: usize },
    #[error("`{0}` must be at least 1")]
    Zero(&'static str),
}

impl Config {
    /// Every output must fit the broker's message limit whatever the input: otherwise one
    /// record would be refused forever and stop its partition.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let max = runtime::kafka::producer_max_message_bytes(&self.kafka);
        for (name, value) in [("max_event_bytes", self.max_event_bytes), ("dead_letter_raw_max_bytes", self.dead_letter_raw_max_bytes)] {
            let overhead = crate::dead_letter::MAX_OVERHEAD_BYTES;
            if value.saturating_add(overhead) > max {
                return Err(ConfigError::AboveMessageMax { name, value, max, overhead });
            }
        }
        for (name, value) in [("batch_max_records", self.batch_max_records), ("max_event_bytes", self.max_event_bytes)] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        Ok(())
    }
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
            batch_max_raw_bytes: 16 * 1024 * 1024,
            batch_max_output_bytes: 16 * 1024 * 1024,
            max_event_bytes: 256 * 1024,
            dead_letter_raw_max_bytes: 64 * 1024,
            max_dead_letters_per_record: 100,
            mapping: NormalizeOptions::default(),
            readiness: runtime::readiness::ReadinessConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_must_fit_the_producers_message_limit() {
        assert_eq!(Config::default().validate(), Ok(()));
        let mut c = Config { dead_letter_raw_max_bytes: 1_000_000, ..Config::default() };
        assert!(matches!(c.validate(), Err(ConfigError::AboveMessageMax { name: "dead_letter_raw_max_bytes", .. })));
        c.kafka.extra.insert("message.max.bytes".into(), "2000000".into());
        assert_eq!(c.validate(), Ok(()));
        let c = Config { max_event_bytes: 999_000, ..Config::default() };
        assert!(matches!(c.validate(), Err(ConfigError::AboveMessageMax { name: "max_event_bytes", .. })));
    }
}
