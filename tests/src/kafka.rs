//! Reading topics back in tests.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// Every record currently on `topic` (all partitions), read from the beginning
/// until nothing new arrives for `quiet` (counted from at least 5 s after start,
/// since joining and the first fetch take a moment).
pub fn read_all(brokers: &str, topic: &str, partitions: i32, quiet: Duration) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut last = Instant::now() + Duration::from_secs(5);
    while Instant::now() < last || last.elapsed() < quiet {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push((m.key().map(<[u8]>::to_vec), m.payload().unwrap_or_default().to_vec()));
            last = Instant::now();
        }
    }
    out
}
