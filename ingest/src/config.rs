//! ingest configuration: defaults that run against the local stack.

use normalizer::providers::TenantCredentials;
use runtime::kafka::KafkaConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub kafka: KafkaConfig,
    /// Address the HTTP edge listens on (also serves `/healthz` and `/metrics`).
    pub listen_addr: String,
    /// Topic raw envelopes are written to.
    pub raw_topic: String,
    /// Create the raw topic at start if missing.
    pub create_topics: bool,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest wait for Kafka's acknowledgement before answering 503.
    pub store_timeout_ms: u64,
    /// SNS signing certificates served from local files instead of fetched over HTTPS
    /// (certificate URL → PEM path). For tests and air-gapped setups; empty in production.
    pub sns_certificate_files: BTreeMap<String, String>,
    /// Tenants and their provider secrets, by tenant id.
    pub tenants: BTreeMap<String, TenantCredentials>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            kafka: KafkaConfig::default(),
            listen_addr: "127.0.0.1:8080".into(),
            raw_topic: schemas::topics::RAW.into(),
            create_topics: true,
            max_body_bytes: 5 * 1024 * 1024,
            store_timeout_ms: 6000,
            sns_certificate_files: BTreeMap::new(),
            tenants: BTreeMap::new(),
        }
    }
}
