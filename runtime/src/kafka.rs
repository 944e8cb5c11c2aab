//! Kafka clients with the settings every stage needs.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Kafka connection settings, shared by every service config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// Consumer group session timeout. Short values make group joins fast (tansu waits about half of it).
    pub session_timeout_ms: u32,
    /// How long a produce may take, including retries, before it is reported failed.
    pub message_timeout_ms: u32,
    /// Largest record the producer sends (librdkafka `message.max.bytes`: key, value and record
    /// overhead). Keep it at or under the broker's `message.max.bytes` / the topic's
    /// `max.message.bytes`; ingest derives its largest accepted request from it.
    pub message_max_bytes: usize,
    /// Partitions for topics this service creates.
    pub partitions: i32,
    /// Replication factor for topics this service creates.
    pub replication: i32,
    /// Extra librdkafka properties (e.g. `security.protocol`).
    pub extra: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            session_timeout_ms: 6000,
            message_timeout_ms: 5000,
            message_max_bytes: DEFAULT_MESSAGE_MAX_BYTES,
            partitions: 4,
            replication: 1,
            extra: BTreeMap::new(),
        }
    }
}

/// librdkafka's own default for `message.max.bytes`, under Kafka's broker default (1048588).
pub const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// Bytes a record needs beyond its key and value (record batch header, record framing, headers);
/// generous for one record per batch.
pub const RECORD_OVERHEAD_BYTES: usize = 512;

impl KafkaConfig {
    /// Whether a record of this key and value fits `message_max_bytes` (checked before sending,
    /// so a record the producer or broker would refuse forever is never queued).
    pub fn fits(&self, key_len: usize, value_len: usize) -> bool {
        key_len.saturating_add(value_len).saturating_add(RECORD_OVERHEAD_BYTES) <= self.message_max_bytes
    }

    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }

    /// An idempotent producer with acks=all: a delivery report means the write is durable.
    pub fn producer(&self) -> rdkafka::error::KafkaResult<FutureProducer> {
        let mut c = self.base();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", self.message_timeout_ms.to_string())
            .set("message.max.bytes", self.message_max_bytes.to_string())
            .set("linger.ms", "2")
            .set("compression.type", "none");
        c.create()
    }

    /// A consumer that commits only offsets the caller stored (`store_offset`) after its work is done
    /// (the rdkafka at-least-once pattern): nothing is committed for unfinished work.
    pub fn consumer(&self, group: &str) -> rdkafka::error::KafkaResult<StreamConsumer> {
        self.consumer_settings(group).create()
    }

    /// As [`KafkaConfig::consumer`], with a context that sees rebalances.
    pub fn consumer_with_context<C: rdkafka::consumer::ConsumerContext + 'static>(
        &self,
        group: &str,
        context: C,
    ) -> rdkafka::error::KafkaResult<StreamConsumer<C>> {
        self.consumer_settings(group).create_with_context(context)
    }

    fn consumer_settings(&self, group: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", self.session_timeout_ms.to_string())
            .set("heartbeat.interval.ms", (self.session_timeout_ms / 3).max(100).to_string())
            .set("partition.assignment.strategy", "range")
            // bound what librdkafka prefetches while we wait on a slow sink
            .set("queued.max.messages.kbytes", "16384");
        c
    }

    /// Creates `topics` if they do not exist (brokers like tansu do not auto-create).
    /// `compacted` topics get `cleanup.policy=compact`.
    pub async fn ensure_topics(&self, topics: &[&str], compacted: &[&str]) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.base().create()?;
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|t| {
                let nt = NewTopic::new(t, self.partitions, TopicReplication::Fixed(self.replication));
                if compacted.contains(t) {
                    nt.set("cleanup.policy", "compact")
                } else {
                    nt
                }
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for r in admin.create_topics(&new, &opts).await? {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, e)) => anyhow::bail!("creating topic {t}: {e}"),
            }
        }
        Ok(())
    }
}

/// A producer that is replaced after a failed send. A new producer has a new
/// idempotent producer id, so neither a fatal producer error nor a broker that
/// restarted without the old id's sequence state (tansu 0.6 then fails every later
/// write of that id) can wedge a service. Records the old producer still holds have
/// already been reported failed to their callers.
pub struct ReplaceableProducer {
    config: KafkaConfig,
    current: std::sync::RwLock<std::sync::Arc<FutureProducer>>,
}

impl ReplaceableProducer {
    pub fn new(config: KafkaConfig) -> rdkafka::error::KafkaResult<Self> {
        let p = std::sync::Arc::new(config.producer()?);
        Ok(ReplaceableProducer { config, current: std::sync::RwLock::new(p) })
    }

    fn get(&self) -> std::sync::Arc<FutureProducer> {
        // A poisoned lock only means another thread panicked while swapping; the value is valid.
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace(&self, used: &std::sync::Arc<FutureProducer>, error: &str) {
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        if std::sync::Arc::ptr_eq(&guard, used) {
            match self.config.producer() {
                Ok(p) => {
                    tracing::warn!(message = "Kafka producer replaced after a failed send.", %error);
                    *guard = std::sync::Arc::new(p);
                }
                Err(e) => tracing::error!(message = "Could not recreate Kafka producer.", error = %e),
            }
        }
    }

    /// Sends one record and waits for its acknowledgement (acks=all), at most `timeout`.
    /// A record the broker will never take ([`SendError::retriable`] false: too large, invalid)
    /// fails without replacing the producer: the fault is the record's, not the producer's.
    pub async fn send(&self, topic: &str, key: &str, payload: &[u8], timeout: Duration) -> Result<(), SendError> {
        use rdkafka::producer::FutureRecord;
        if !self.config.fits(key.len(), payload.len()) {
            return Err(SendError::too_large(key.len() + payload.len(), self.config.message_max_bytes));
        }
        let producer = self.get();
        let record = FutureRecord::to(topic).key(key).payload(payload);
        let error = match tokio::time::timeout(timeout, producer.send(record, timeout)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err((e, _))) => SendError::from_kafka(&e),
            Err(_) => SendError {
                retriable: true,
                code: None,
                message: format!("no acknowledgement from Kafka within {} ms", timeout.as_millis()),
            },
        };
        if error.retriable {
            self.replace(&producer, &error.message);
        }
        Err(error)
    }

    /// Flushes outstanding records (shutdown).
    pub fn flush(&self, timeout: Duration) {
        use rdkafka::producer::Producer;
        let _ = self.get().flush(timeout);
    }
}

/// Why a record was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// False when sending the same record again can never succeed (it is too large or invalid):
    /// the caller must not retry it, but refuse it (ingest: 413) or dead-letter it.
    pub retriable: bool,
    /// librdkafka's error code; `None` for a timeout or a record refused before sending.
    pub code: Option<RDKafkaErrorCode>,
    /// For logs only (it names Kafka internals): never put it in a reply.
    pub message: String,
}

impl SendError {
    fn too_large(record_bytes: usize, max: usize) -> Self {
        SendError {
            retriable: false,
            code: Some(RDKafkaErrorCode::MessageSizeTooLarge),
            message: format!("record of {record_bytes} bytes (+{RECORD_OVERHEAD_BYTES} overhead) exceeds message_max_bytes {max}"),
        }
    }

    fn from_kafka(e: &rdkafka::error::KafkaError) -> Self {
        let code = e.rdkafka_error_code();
        let retriable = !code.is_some_and(is_record_fault);
        SendError { retriable, code, message: e.to_string() }
    }

    /// The record is larger than the producer or the broker accepts.
    pub fn is_too_large(&self) -> bool {
        matches!(self.code, Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge | RDKafkaErrorCode::InvalidMessageSize))
            && !self.retriable
    }

    /// Bounded code for metric labels.
    pub fn code_name(&self) -> &'static str {
        match self.code {
            None if self.retriable => "timeout",
            _ if self.is_too_large() => "too_large",
            _ if !self.retriable => "invalid_record",
            _ => "kafka_error",
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SendError {}

/// Errors about the record itself, which no retry, new producer or broker recovery can fix.
fn is_record_fault(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidRecord
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_faults_are_not_retriable() {
        let e = SendError::from_kafka(&rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge));
        assert!(!e.retriable && e.is_too_large());
        let e = SendError::from_kafka(&rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord));
        assert!(!e.retriable && !e.is_too_large());
        assert_eq!(e.code_name(), "invalid_record");
        let e = SendError::from_kafka(&rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::BrokerTransportFailure));
        assert!(e.retriable);
        let e = SendError::from_kafka(&rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas));
        assert!(e.retriable);
    }

    /// A record over `message_max_bytes` is refused before it is queued, as not retriable, and
    /// without needing a broker (nothing listens on the configured address).
    #[tokio::test]
    async fn oversized_record_is_refused_without_sending() {
        let config = KafkaConfig { brokers: "127.0.0.1:1".into(), message_max_bytes: 10_000, ..Default::default() };
        let producer = ReplaceableProducer::new(config.clone()).unwrap();
        let payload = vec![0u8; 10_000];
        let e = producer.send("t", "k", &payload, Duration::from_millis(200)).await.unwrap_err();
        assert!(e.is_too_large() && !e.retriable, "{e:?}");
        assert!(config.fits(1, 10_000 - RECORD_OVERHEAD_BYTES - 1));
        assert!(!config.fits(1, 10_000 - RECORD_OVERHEAD_BYTES));
    }
}
