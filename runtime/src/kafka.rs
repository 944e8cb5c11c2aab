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
            partitions: 4,
            replication: 1,
            extra: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
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
    pub async fn send(&self, topic: &str, key: &str, payload: &[u8], timeout: Duration) -> Result<(), String> {
        self.send_checked(topic, key, payload, timeout).await.map_err(|e| e.to_string())
    }

    /// As [`ReplaceableProducer::send`], telling a record the broker will never accept
    /// ([`SendError::permanent`]: retrying it would wedge the caller) from a transient failure.
    pub async fn send_checked(&self, topic: &str, key: &str, payload: &[u8], timeout: Duration) -> Result<(), SendError> {
        use rdkafka::producer::FutureRecord;
        let producer = self.get();
        let record = FutureRecord::to(topic).key(key).payload(payload);
        let error = match tokio::time::timeout(timeout, producer.send(record, timeout)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err((e, _))) => SendError { permanent: is_permanent(&e), message: e.to_string() },
            Err(_) => SendError { permanent: false, message: format!("no acknowledgement from Kafka within {} ms", timeout.as_millis()) },
        };
        self.replace(&producer, &error.message);
        Err(error)
    }

    /// Flushes outstanding records (shutdown).
    pub fn flush(&self, timeout: Duration) {
        use rdkafka::producer::Producer;
        let _ = self.get().flush(timeout);
    }
}

/// A failed produce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    /// The record itself is refused (too large, malformed): sending it again can never succeed.
    pub permanent: bool,
}

/// Errors about the record, not the broker's state: the same record always fails again.
fn is_permanent(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::KafkaError;
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::BadMessage
        )
    ) && matches!(e, KafkaError::MessageProduction(_))
}

/// The largest record value this service's producer sends: librdkafka's `message.max.bytes`
/// (its default, 1 000 000, unless `extra` sets it). A stage checks its own bounds against it at start.
pub fn producer_max_message_bytes(config: &KafkaConfig) -> usize {
    config.extra.get("message.max.bytes").and_then(|v| v.trim().parse().ok()).unwrap_or(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::KafkaError;

    #[test]
    fn record_errors_are_permanent_broker_errors_are_not() {
        assert!(is_permanent(&KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)));
        assert!(is_permanent(&KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord)));
        assert!(!is_permanent(&KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)));
        assert!(!is_permanent(&KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas)));
        assert!(!is_permanent(&KafkaError::MessageProduction(RDKafkaErrorCode::BrokerTransportFailure)));
    }

    #[test]
    fn max_message_bytes_follows_the_producer_setting() {
        let mut c = KafkaConfig::default();
        assert_eq!(producer_max_message_bytes(&c), 1_000_000);
        c.extra.insert("message.max.bytes".into(), "2000000".into());
        assert_eq!(producer_max_message_bytes(&c), 2_000_000);
    }
}
