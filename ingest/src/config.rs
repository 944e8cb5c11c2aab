//! ingest configuration: defaults that run against the local stack.

use normalizer::providers::edge_limits::EdgeLimits;
use normalizer::providers::TenantCredentials;
use runtime::kafka::KafkaConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Kafka settings. The producer's `message.max.bytes` (librdkafka's default 1000000, or
    /// `kafka.extra."message.max.bytes"`) bounds every stored request (see `max_body_bytes`).
    pub kafka: KafkaConfig,
    /// Address the public HTTP edge listens on (provider routes and `/healthz`).
    pub listen_addr: String,
    /// Address of the admin listener: `/metrics` and `/healthz`. Keep it off the public network.
    pub admin_addr: String,
    /// Topic raw envelopes are written to.
    pub raw_topic: String,
    /// Create the raw topic at start if missing.
    pub create_topics: bool,
    /// Largest accepted request body. Must leave `envelope_reserve_bytes` room under the
    /// producer's `message.max.bytes` (checked at startup): a body the broker could not store is
    /// refused with 413 at once, never retried.
    pub max_body_bytes: usize,
    /// Room kept under the producer's `message.max.bytes` for what the raw envelope adds to the body
    /// (URL, kept headers, ids, Kafka key and record framing). A request whose envelope still
    /// does not fit is refused with 413.
    pub envelope_reserve_bytes: usize,
    /// A body declared (`Content-Length`) over `max_body_bytes` but at most this large is read
    /// and discarded before the 413 is sent, so that a client still writing its body reads the
    /// 413 instead of a connection reset. Larger declared bodies get the 413 at once and the
    /// connection is closed. Reading stays inside `request_timeout_ms` and the concurrency limit.
    pub max_drain_bytes: usize,
    /// Longest wait for room in the broker client's queue and then Kafka's acknowledgement
    /// before answering 503 `not_stored`.
    pub store_timeout_ms: u64,
    /// Longest time a client may take to send a request's headers; the connection is closed after.
    pub header_read_timeout_ms: u64,
    /// Longest time for a whole request (reading the body, verifying, storing); 408 after.
    pub request_timeout_ms: u64,
    /// Requests being received, verified and handed to the broker client at once (each may
    /// hold a body of up to `max_body_bytes`); more are answered 503 `overloaded` with
    /// `Retry-After` at once. A request whose record is queued leaves this limit for
    /// `max_awaiting_broker` while it waits for the acknowledgement.
    pub max_concurrent_requests: usize,
    /// Requests whose record is in the broker client's queue, waiting for the broker's
    /// acknowledgement; a request that would go beyond it is answered 503 `overloaded` before its
    /// record is queued. Such a request holds no body: the record's bytes are in the client's
    /// queue, bounded by `queue_max_kbytes`. Counting them apart lets the edge take
    /// `max_concurrent_requests` / (handling time) requests a second whatever the broker's
    /// acknowledgement time (BENCHMARKS.md §10, "the edge's limit on requests waiting for the broker").
    pub max_awaiting_broker: usize,
    /// Bytes of records the broker client may hold, queued or in flight (librdkafka's
    /// `queue.buffering.max.kbytes`, in KiB). When full, a request waits for room (holding its
    /// place in `max_concurrent_requests`) up to `store_timeout_ms`, then is answered 503.
    pub queue_max_kbytes: usize,
    /// Open client connections at most; further connections wait in the listen backlog.
    pub max_connections: usize,
    /// Bounds on what one request may carry (items, form fields, attribution sizes).
    pub limits: EdgeLimits,
    /// Tenants and their provider secrets, by tenant id.
    pub tenants: BTreeMap<String, TenantCredentials>,
    /// How often the broker is probed for `/readyz` (on the admin listener), and how long a probe may take.
    pub readiness: runtime::readiness::ReadinessConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            kafka: KafkaConfig::default(),
            listen_addr: "127.0.0.1:8080".into(),
            admin_addr: "127.0.0.1:9100".into(),
            raw_topic: schemas::topics::RAW.into(),
            create_topics: true,
            max_body_bytes: 960 * 1024,
            envelope_reserve_bytes: 16 * 1024,
            max_drain_bytes: 8 * 1024 * 1024,
            store_timeout_ms: 6000,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_concurrent_requests: 256,
            max_awaiting_broker: 4096,
            queue_max_kbytes: 128 * 1024,
            max_connections: 4096,
            limits: EdgeLimits::default(),
            tenants: BTreeMap::new(),
            readiness: runtime::readiness::ReadinessConfig::default(),
        }
    }
}

impl Config {
    /// Refuses a configuration that cannot work safely: a body limit the broker could not store,
    /// zero limits, tenants with empty secrets or an SNS route without a topic pin. Warns about
    /// settings that weaken verification.
    pub fn validate(&self) -> Result<(), String> {
        let max = runtime::kafka::producer_max_message_bytes(&self.kafka);
        let room = max.saturating_sub(self.envelope_reserve_bytes);
        if self.max_body_bytes > room {
            return Err(format!(
                "max_body_bytes ({}) + envelope_reserve_bytes ({}) exceed the producer's message.max.bytes ({max}): lower \
                 max_body_bytes or raise kafka.extra.\"message.max.bytes\" (and the broker's limit)",
                self.max_body_bytes, self.envelope_reserve_bytes
            ));
        }
        if self.kafka.extra.contains_key("queue.buffering.max.kbytes") {
            return Err("set the producer's queue bound with queue_max_kbytes, not kafka.extra.\"queue.buffering.max.kbytes\"".into());
        }
        if (self.queue_max_kbytes as u64).saturating_mul(1024) < max as u64 {
            return Err(format!("queue_max_kbytes ({}) must hold one record of the producer's message.max.bytes ({max})", self.queue_max_kbytes));
        }
        for (name, v) in [
            ("max_body_bytes", self.max_body_bytes as u64),
            ("store_timeout_ms", self.store_timeout_ms),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("max_concurrent_requests", self.max_concurrent_requests as u64),
            ("max_awaiting_broker", self.max_awaiting_broker as u64),
            ("queue_max_kbytes", self.queue_max_kbytes as u64),
            ("max_connections", self.max_connections as u64),
        ] {
            if v == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        self.limits.validate()?;
        for (tenant, creds) in &self.tenants {
            if tenant.trim().is_empty() {
                return Err("a tenant id is empty".into());
            }
            creds.validate().map_err(|e| format!("tenants.{tenant}: {e}"))?;
            for warning in creds.warnings() {
                tracing::warn!(message = "INSECURE tenant setting.", tenant = %tenant, warning);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    /// The body limit is checked against the producer's record limit: a configuration whose
    /// largest body could never be stored is refused at startup.
    #[test]
    fn body_limit_must_fit_the_record_limit() {
        let mut c = Config { max_body_bytes: 1_000_000, ..Config::default() };
        assert!(c.validate().unwrap_err().contains("message.max.bytes"));
        c.kafka.extra.insert("message.max.bytes".into(), (10 * 1024 * 1024).to_string());
        c.validate().unwrap();
    }

    /// The producer's queue must hold the largest record, and is set in one place only.
    #[test]
    fn queue_bound_must_hold_a_record_and_is_set_once() {
        let mut c = Config { queue_max_kbytes: 900, ..Config::default() };
        assert!(c.validate().unwrap_err().contains("queue_max_kbytes (900) must hold one record"));
        c.queue_max_kbytes = 1024;
        c.validate().unwrap();
        c.kafka.extra.insert("queue.buffering.max.kbytes".into(), "2048".into());
        assert!(c.validate().unwrap_err().contains("with queue_max_kbytes"));
        let zero = Config { max_awaiting_broker: 0, ..Config::default() };
        assert!(zero.validate().unwrap_err().contains("max_awaiting_broker"));
    }

    #[test]
    fn empty_secrets_and_unpinned_sns_are_refused() {
        let mut c = Config::default();
        c.tenants.insert("acme".into(), TenantCredentials { api_key: Some("  ".into()), ..Default::default() });
        assert!(c.validate().unwrap_err().contains("api_key"));
        let ses = normalizer::providers::ses::Credentials { verify_signature: Some(true), ..Default::default() };
        c.tenants.insert("acme".into(), TenantCredentials { ses: Some(ses), ..Default::default() });
        assert!(c.validate().unwrap_err().contains("ses: SES via SNS needs `topic_arn`"));
        for (toml, ok) in [
            ("[tenants.acme.ses]\ntopic_arn = \"arn:aws:sns:us-east-1:1:t\"", true),
            ("[tenants.acme.ses]\ntopic_arn = [\"arn:aws:sns:us-east-1:1:t\", \"arn:aws:sns:us-east-1:1:u\"]", true),
            ("[tenants.acme.ses]\naccept_any_topic = true", true),
            ("[tenants.acme.ses]\ntopic_arn = \"topic\"", false),
            ("[tenants.acme.mailgun]\nsigning_key = \" \"", false),
            ("[tenants.acme.postmark]\nuser = \"u\"", false),
            ("[tenants.acme]\nses_topic_arn = \"arn:aws:sns:us-east-1:1:t\"", false),
            ("[tenants.acme.fcm]\nkey = \"x\"", false),
            ("[tenants.acme.fcm]", true),
        ] {
            let loaded = figment::Figment::from(<figment::providers::Toml as figment::providers::Format>::string(toml)).extract::<Config>();
            assert_eq!(loaded.map_err(|e| e.to_string()).and_then(|c| c.validate()).is_ok(), ok, "{toml}");
        }
    }
}
