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

/// Produces `payloads` (keyless; `None`: a record without a value) to one partition of
/// `topic`, in this order, and returns their offsets. For records the services did not
/// write themselves (hostile input straight onto a topic).
pub async fn produce_in_order(brokers: &str, topic: &str, partition: i32, payloads: &[Option<Vec<u8>>]) -> Vec<i64> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("message.max.bytes", "10000000")
        .create()
        .expect("producer");
    let mut pending = Vec::with_capacity(payloads.len());
    for p in payloads {
        let mut r: FutureRecord<'_, (), [u8]> = FutureRecord::to(topic).partition(partition);
        if let Some(p) = p {
            r = r.payload(p.as_slice());
        }
        // enqueued here, in order (idempotent: kept in order on the partition)
        pending.push(producer.send_result(r).map_err(|(e, _)| e).expect("enqueued"));
    }
    let mut offsets = Vec::with_capacity(pending.len());
    for f in pending {
        let d = f.await.expect("not cancelled").map_err(|(e, _)| e).expect("produced");
        offsets.push(d.offset);
    }
    offsets
}
