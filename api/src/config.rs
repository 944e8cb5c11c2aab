//! api configuration: defaults that run against the local stack.
//!
//! ```toml
//! listen_addr = "127.0.0.1:8090"
//! reporting_time_zones = ["Europe/Berlin"]
//!
//! [clickhouse]
//! url = "http://127.0.0.1:8123"
//! database = "sendtrace"
//!
//! [tenants.demo.keys.dashboard]
//! key = "demo-read-key"
//! scopes = ["stats", "messages"]
//! ```

use runtime::kafka::KafkaConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the API listens on (also serves `/healthz`, `/readyz`, `/metrics`, `/openapi.json`).
    pub listen_addr: String,
    pub clickhouse: ClickHouseConfig,
    /// Kafka: suppression changes are published on `suppressions_topic`; `/v1/stream` tails `events_topic`.
    pub kafka: KafkaConfig,
    /// The compacted topic senders read before they send (the aggregator publishes there too).
    pub suppressions_topic: String,
    /// The canonical events topic (`/v1/stream`).
    pub events_topic: String,
    /// How long a suppression change waits for Kafka's acknowledgement before answering 503.
    pub publish_timeout_ms: u64,
    /// Most addresses one `POST /v1/suppressions` may carry.
    pub max_suppression_addresses: usize,
    /// Largest request body (`POST /v1/suppressions`), in bytes.
    pub max_body_bytes: usize,
    /// Most `/v1/stream` subscriptions open at once; more answer 503.
    pub max_streams: usize,
    /// Events buffered for the live tail; a subscriber further behind is told how many it missed.
    pub stream_buffer_events: usize,
    /// Zones `tz=` may name besides `UTC` (IANA names). They must be the aggregator's
    /// `reporting_time_zone`: counters only hold buckets for UTC and that zone.
    pub reporting_time_zones: Vec<String>,
    /// Rows per page of a list when `page_size` is not given.
    pub default_page_size: u32,
    /// Largest `page_size` a request may ask for.
    pub max_page_size: u32,
    /// Most buckets one series may hold (`from`..`to` at the granularity).
    pub max_buckets: u32,
    /// Largest `days` of `/v1/stats/summary`.
    pub max_summary_days: u32,
    /// Read keys by tenant.
    pub tenants: BTreeMap<String, TenantKeys>,
    /// How often ClickHouse is probed for `/readyz`, and how long a probe may take.
    pub readiness: runtime::readiness::ReadinessConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP interface URL.
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: String,
    /// `max_execution_time` sent with every query; a query that runs out answers 503.
    pub max_execution_time_secs: u32,
}

/// The keys of one tenant, by key name (the name is what the suppression history records as "who").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantKeys {
    pub keys: BTreeMap<String, KeyConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfig {
    /// The secret sent as `Authorization: Bearer <key>`. Empty keys are refused at start.
    pub key: String,
    /// What the key may read: `stats` (aggregates only), `messages` (rows with recipients:
    /// personal data), `suppressions:write` (changes to the suppression list).
    pub scopes: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen_addr: "127.0.0.1:8090".into(),
            clickhouse: ClickHouseConfig::default(),
            kafka: KafkaConfig::default(),
            suppressions_topic: "sendtrace.suppressions.v1".into(),
            events_topic: "sendtrace.events.v1".into(),
            publish_timeout_ms: 5_000,
            max_suppression_addresses: 1_000,
            max_body_bytes: 1 << 20,
            max_streams: 64,
            stream_buffer_events: 4_096,
            reporting_time_zones: Vec::new(),
            default_page_size: 50,
            max_page_size: 1000,
            max_buckets: 400,
            max_summary_days: 400,
            tenants: BTreeMap::new(),
            readiness: runtime::readiness::ReadinessConfig::default(),
        }
    }
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            database: "sendtrace".into(),
            user: "default".into(),
            password: String::new(),
            max_execution_time_secs: 10,
        }
    }
}

impl Config {
    /// Refuses what would make the service unsafe or unusable: empty keys, a key used twice,
    /// unknown scopes, unknown zones, page sizes out of order.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for (tenant, keys) in &self.tenants {
            for (name, k) in &keys.keys {
                if k.key.trim().is_empty() {
                    return Err(format!("tenants.{tenant}.keys.{name}.key is empty"));
                }
                if !seen.insert(k.key.as_str()) {
                    return Err(format!("tenants.{tenant}.keys.{name}.key is used by another key"));
                }
                for s in &k.scopes {
                    if crate::auth::Scope::parse(s).is_none() {
                        return Err(format!("tenants.{tenant}.keys.{name}.scopes: unknown scope `{s}` (stats, messages, suppressions:write)"));
                    }
                }
            }
        }
        for z in &self.reporting_time_zones {
            if z.parse::<chrono_tz::Tz>().is_err() {
                return Err(format!("reporting_time_zones: `{z}` is not an IANA zone"));
            }
        }
        if self.default_page_size == 0 || self.default_page_size > self.max_page_size {
            return Err("default_page_size must be between 1 and max_page_size".into());
        }
        if self.max_suppression_addresses == 0 || self.max_body_bytes < 1024 || self.max_streams == 0 || self.stream_buffer_events == 0 || self.publish_timeout_ms == 0 {
            return Err("max_suppression_addresses, max_streams, stream_buffer_events, publish_timeout_ms must be positive, max_body_bytes at least 1024".into());
        }
        if self.max_buckets == 0 || self.clickhouse.max_execution_time_secs == 0 {
            return Err("max_buckets and clickhouse.max_execution_time_secs must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key(key: &str, scopes: &[&str]) -> Config {
        let mut c = Config::default();
        let mut keys = TenantKeys::default();
        keys.keys.insert("k".into(), KeyConfig { key: key.into(), scopes: scopes.iter().map(|s| s.to_string()).collect() });
        c.tenants.insert("acme".into(), keys);
        c
    }

    #[test]
    fn empty_and_bad_keys_are_refused() {
        assert!(with_key("secret", &["stats"]).validate().is_ok());
        assert!(with_key("", &["stats"]).validate().unwrap_err().contains("empty"));
        assert!(with_key("  ", &["stats"]).validate().is_err());
        assert!(with_key("secret", &["admin"]).validate().unwrap_err().contains("unknown scope"));
        let mut c = with_key("secret", &["stats"]);
        c.tenants.insert("other".into(), c.tenants["acme"].clone());
        assert!(c.validate().unwrap_err().contains("used by another key"));
        let c = Config { reporting_time_zones: vec!["Mars/Olympus".into()], ..Default::default() };
        assert!(c.validate().is_err());
    }

    #[test]
    fn toml_shape_and_unknown_keys() {
        let c: Config = toml_like("[tenants.demo.keys.dash]\nkey = \"x\"\nscopes = [\"stats\"]\n").unwrap();
        assert_eq!(c.tenants["demo"].keys["dash"].scopes, vec!["stats"]);
        assert!(toml_like("[tenants.demo.keys.dash]\nkey = \"x\"\nscope = [\"stats\"]\n").is_err());
    }

    /// The file format alone (runtime::config::load would also read the SENDTRACE_* environment
    /// the test scripts set for the harness).
    fn toml_like(s: &str) -> Result<Config, String> {
        toml::from_str::<Config>(s).map_err(|e| e.to_string())
    }
}
