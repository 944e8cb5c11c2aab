//! The raw-record sink: one Kafka message per accepted request, acknowledged by
//! all in-sync replicas (acks=all, idempotent producer) before the request is answered.

use runtime::kafka::{KafkaConfig, ReplaceableProducer, SendError};
use runtime::readiness::{Readiness, ReadinessConfig};
use runtime::shutdown::CancellationToken;
use std::sync::Arc;
use std::time::Duration;

pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Where accepted requests go. A trait so routes can be tested without a broker.
pub trait RawSink: Send + Sync + 'static {
    /// Resolves once the record is durably stored, or fails within `timeout`; a failure that is
    /// [`SendError::permanent`] means the record can never be stored.
    fn store(&self, key: String, payload: Vec<u8>, timeout: Duration) -> BoxFuture<Result<(), SendError>>;
}

/// The Kafka sink.
pub struct KafkaSink {
    topic: String,
    producer: Arc<ReplaceableProducer>,
}

impl KafkaSink {
    /// Every produce is timed (`sendtrace_ingest_produce_duration_seconds`) and reported to
    /// `readiness` (`kafka_producer`).
    pub fn new(config: KafkaConfig, topic: String, readiness: Readiness) -> rdkafka::error::KafkaResult<Self> {
        Ok(KafkaSink { topic, producer: Arc::new(ReplaceableProducer::new(config)?.observed("ingest", readiness)) })
    }

    /// Probes the broker every `cfg.probe_interval_ms` (`kafka_producer`): ingest is not ready
    /// while it could not store a request, and ready again once the broker answers, even with no
    /// request coming in (a load balancer sends none to an instance that is not ready).
    pub fn spawn_probe(&self, cfg: ReadinessConfig, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        self.producer.spawn_probe(self.topic.clone(), cfg, shutdown)
    }

    pub fn flush(&self, timeout: Duration) {
        self.producer.flush(timeout);
    }
}

impl RawSink for Arc<KafkaSink> {
    fn store(&self, key: String, payload: Vec<u8>, timeout: Duration) -> BoxFuture<Result<(), SendError>> {
        let this = self.clone();
        Box::pin(async move { this.producer.send_checked(&this.topic, &key, &payload, timeout).await })
    }
}
