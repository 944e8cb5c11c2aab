//! The raw-record sink: one Kafka message per accepted request, acknowledged by
//! all in-sync replicas before the request is answered.

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use runtime::kafka::KafkaConfig;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Where accepted requests go. A trait so routes can be tested without a broker.
pub trait RawSink: Send + Sync + 'static {
    /// Resolves once the record is durably stored, or fails within `timeout`.
    fn store(&self, key: String, payload: Vec<u8>, timeout: Duration) -> futures_like::BoxFuture<Result<(), String>>;
}

pub mod futures_like {
    pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
}

/// The Kafka sink. If the idempotent producer hits a fatal error it is replaced.
pub struct KafkaSink {
    config: KafkaConfig,
    topic: String,
    producer: RwLock<Arc<FutureProducer>>,
}

impl KafkaSink {
    pub fn new(config: KafkaConfig, topic: String) -> Result<Self, KafkaError> {
        let producer = Arc::new(config.producer()?);
        Ok(KafkaSink { config, topic, producer: RwLock::new(producer) })
    }

    fn current(&self) -> Arc<FutureProducer> {
        // A poisoned lock only means another thread panicked while swapping; the value is still valid.
        self.producer.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace_if_fatal(&self, used: &Arc<FutureProducer>) {
        if used.client().fatal_error().is_none() {
            return;
        }
        let mut guard = self.producer.write().unwrap_or_else(|p| p.into_inner());
        if Arc::ptr_eq(&guard, used) {
            match self.config.producer() {
                Ok(p) => {
                    tracing::warn!(message = "Kafka producer hit a fatal error; replaced it.");
                    *guard = Arc::new(p);
                }
                Err(error) => tracing::error!(message = "Could not recreate Kafka producer.", %error),
            }
        }
    }

    /// Flushes outstanding records (shutdown).
    pub fn flush(&self, timeout: Duration) {
        let _ = self.current().flush(timeout);
    }
}

impl RawSink for Arc<KafkaSink> {
    fn store(&self, key: String, payload: Vec<u8>, timeout: Duration) -> futures_like::BoxFuture<Result<(), String>> {
        let this = self.clone();
        Box::pin(async move {
            let producer = this.current();
            let record = FutureRecord::to(&this.topic).key(&key).payload(&payload);
            let result = tokio::time::timeout(timeout, producer.send(record, timeout)).await;
            match result {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((e, _))) => {
                    this.replace_if_fatal(&producer);
                    Err(e.to_string())
                }
                Err(_) => Err(format!("no acknowledgement from Kafka within {} ms", timeout.as_millis())),
            }
        })
    }
}
