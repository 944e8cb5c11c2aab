//! The raw-record sink: one Kafka message per accepted request, acknowledged by
//! all in-sync replicas (acks=all) before the request is answered.

use runtime::kafka::{Acknowledgement, KafkaConfig, ReplaceableProducer, SendError};
use runtime::readiness::{Readiness, ReadinessConfig};
use runtime::shutdown::CancellationToken;
use std::sync::Arc;
use std::time::Duration;

pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Where accepted requests go. A trait so routes can be tested without a broker.
pub trait RawSink: Send + Sync + 'static {
    /// Hands the record to the broker client (waiting for room in its queue), then resolves to
    /// the wait for its acknowledgement, which resolves once the record is durably stored. Both
    /// together end within `timeout`; a failure that is [`SendError::permanent`] means the
    /// record can never be stored. The record's bytes are not held during the second wait.
    fn enqueue(&self, key: String, payload: Vec<u8>, timeout: Duration) -> BoxFuture<Result<Acknowledgement, SendError>>;
}

/// The Kafka sink.
pub struct KafkaSink {
    topic: String,
    producer: Arc<ReplaceableProducer>,
}

/// The edge's producer settings: `config` with `idempotence` unset taken as **not idempotent**.
///
/// Requests arrive one by one, each waiting for its own acknowledgement, so records keep coming
/// while a partition's batch is in flight. An idempotent librdkafka producer then keeps one
/// request in flight per partition and busy-polls until the broker acknowledges it (see
/// [`KafkaConfig::idempotence`]): under an open-loop load on the local stack that was 32–54 µs
/// of CPU per request in librdkafka's threads, a third of ingest's CPU; without idempotence
/// 2 µs (BENCHMARKS.md §10, "the edge's producer without idempotence"). What idempotence would
/// add here is already given: a record stored twice by a retried produce request is the same
/// request a provider retries after a timeout, and every id below is derived from its content
/// (RELIABILITY.md, "Deterministic ids"); the raw records' order carries no meaning (providers
/// do not order their webhooks, and the state is order-independent).
///
/// `queue_max_kbytes` bounds the bytes the client holds, queued or awaiting acknowledgement
/// (`queue.buffering.max.kbytes`; librdkafka's default is 1 GiB): the memory of the requests
/// that wait for the broker (`Config::max_awaiting_broker`).
pub fn producer_settings(mut config: KafkaConfig, queue_max_kbytes: usize) -> KafkaConfig {
    config.idempotence.get_or_insert(false);
    config.extra.insert("queue.buffering.max.kbytes".into(), queue_max_kbytes.to_string());
    config
}

impl KafkaSink {
    /// Every produce is timed (`sendtrace_ingest_produce_duration_seconds`) and reported to
    /// `readiness` (`kafka_producer`).
    pub fn new(config: KafkaConfig, queue_max_kbytes: usize, topic: String, readiness: Readiness) -> rdkafka::error::KafkaResult<Self> {
        let producer = ReplaceableProducer::new(producer_settings(config, queue_max_kbytes))?.observed("ingest", readiness);
        Ok(KafkaSink { topic, producer: Arc::new(producer) })
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
    fn enqueue(&self, key: String, payload: Vec<u8>, timeout: Duration) -> BoxFuture<Result<Acknowledgement, SendError>> {
        let this = self.clone();
        Box::pin(async move { this.producer.enqueue(&this.topic, &key, &payload, timeout).await })
    }
}
