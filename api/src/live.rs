//! The live tail behind `/v1/stream`: one Kafka consumer per API process reads the canonical
//! events topic from its end and fans each event out to the open subscriptions (a bounded
//! `broadcast` channel; a subscriber that falls `stream_buffer_events` behind is told how
//! many it missed). Started by the first subscription: it reads each partition's high
//! watermark and assigns the partitions there before the subscription is answered, so every
//! event written after the subscription reaches it. No consumer group is joined (plain
//! `assign`), nothing is committed.

use crate::error::ApiError;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use runtime::kafka::KafkaConfig;
use schemas::Event;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, OnceCell, OwnedSemaphorePermit, Semaphore};

pub struct Hub {
    kafka: KafkaConfig,
    topic: String,
    tx: broadcast::Sender<Arc<Event>>,
    started: OnceCell<()>,
    permits: Arc<Semaphore>,
}

/// An open subscription: its receiver and its place among `max_streams`.
pub struct Subscription {
    pub events: broadcast::Receiver<Arc<Event>>,
    pub _permit: OwnedSemaphorePermit,
}

impl Hub {
    pub fn new(kafka: KafkaConfig, topic: String, buffer: usize, max_streams: usize) -> Hub {
        let (tx, _) = broadcast::channel(buffer.max(1));
        Hub { kafka, topic, tx, started: OnceCell::new(), permits: Arc::new(Semaphore::new(max_streams)) }
    }

    /// A new subscription, once the tail is positioned (503 when Kafka cannot be reached or
    /// `max_streams` are open).
    pub async fn subscribe(&self) -> Result<Subscription, ApiError> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| ApiError::Busy("too many open streams; try again later".into()))?;
        self.started
            .get_or_try_init(|| async {
                let consumer = self.position().await.map_err(|e| ApiError::Busy(format!("the event stream is unavailable: {e}")))?;
                let tx = self.tx.clone();
                tokio::spawn(tail(consumer, tx));
                Ok::<(), ApiError>(())
            })
            .await?;
        Ok(Subscription { events: self.tx.subscribe(), _permit: permit })
    }

    async fn position(&self) -> Result<StreamConsumer, String> {
        let consumer = self.kafka.consumer(&format!("sendtrace-api-live-{}", std::process::id())).map_err(|e| e.to_string())?;
        let topic = self.topic.clone();
        // metadata and watermarks are blocking calls
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(5);
            let md = consumer.fetch_metadata(Some(&topic), timeout).map_err(|e| e.to_string())?;
            let partitions: Vec<i32> = md.topics().iter().filter(|t| t.name() == topic).flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
            if partitions.is_empty() {
                return Err(format!("topic {topic} has no partitions"));
            }
            let mut tpl = TopicPartitionList::new();
            for p in partitions {
                let (_, high) = consumer.fetch_watermarks(&topic, p, timeout).map_err(|e| e.to_string())?;
                tpl.add_partition_offset(&topic, p, Offset::Offset(high)).map_err(|e| e.to_string())?;
            }
            consumer.assign(&tpl).map_err(|e| e.to_string())?;
            Ok(consumer)
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

async fn tail(consumer: StreamConsumer, tx: broadcast::Sender<Arc<Event>>) {
    use rdkafka::Message;
    tracing::info!(message = "Live event tail started.");
    loop {
        match consumer.recv().await {
            Ok(m) => match m.payload().map(schemas::avro::decode_event) {
                Some(Ok(e)) => {
                    let _ = tx.send(Arc::new(e));
                }
                Some(Err(error)) => tracing::debug!(message = "Live tail skipped an undecodable record.", %error),
                None => {}
            },
            Err(error) => {
                tracing::warn!(message = "Live tail read failed; retrying.", %error);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
