//! The one batch reader over a Kafka consumer: wait (until shutdown) for a first record, then
//! take more until `max_records` or `max_bytes` is reached or `linger` has passed since the
//! first. Each record is handed to the caller as it arrives (no copy is made here), with
//! `first = true` for the batch's first record, so a stage can act between the wait and the
//! rest (the aggregator applies a rebalance there).

use crate::shutdown::CancellationToken;
use rdkafka::error::KafkaResult;
use rdkafka::Message;
use std::future::Future;
use std::time::Duration;
use tracing::warn;

/// Bounds of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_records: usize,
    /// Payload bytes; the record that crosses it is still taken.
    pub max_bytes: usize,
    /// How long to keep taking records after the first.
    pub linger: Duration,
}

/// What a read gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// Shutdown was requested while waiting for a first record: nothing was read.
    Shutdown,
    /// `records` records (at least one) with `bytes` payload bytes were handed over.
    Read { records: usize, bytes: usize },
}

/// Pause after a failed wait for the first record, so a broken connection does not spin.
const RECEIVE_ERROR_PAUSE: Duration = Duration::from_millis(200);

/// Reads one batch through `recv` (e.g. `|| consumer.recv()`), handing each record to
/// `on_record(record, first)`. A receive error before the first record is logged and the
/// wait goes on; after it, it ends the batch early.
pub async fn read_batch<M, R, Fut, F>(mut recv: R, limits: BatchLimits, shutdown: &CancellationToken, mut on_record: F) -> Batch
where
    M: Message,
    R: FnMut() -> Fut,
    Fut: Future<Output = KafkaResult<M>>,
    F: FnMut(&M, bool),
{
    let first = loop {
        let m = tokio::select! {
            _ = shutdown.cancelled() => return Batch::Shutdown,
            m = recv() => m,
        };
        match m {
            Ok(m) => break m,
            Err(error) => {
                warn!(message = "Kafka receive failed.", %error);
                tokio::select! {
                    _ = shutdown.cancelled() => return Batch::Shutdown,
                    _ = tokio::time::sleep(RECEIVE_ERROR_PAUSE) => {}
                }
            }
        }
    };
    let mut bytes = first.payload().map_or(0, <[u8]>::len);
    on_record(&first, true);
    drop(first);
    let mut records = 1usize;
    let deadline = tokio::time::Instant::now() + limits.linger;
    while records < limits.max_records && bytes < limits.max_bytes {
        tokio::select! {
            m = recv() => match m {
                Ok(m) => {
                    bytes += m.payload().map_or(0, <[u8]>::len);
                    records += 1;
                    on_record(&m, false);
                }
                Err(error) => {
                    warn!(message = "Kafka receive failed.", %error);
                    break;
                }
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    Batch::Read { records, bytes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{OwnedMessage, Timestamp};
    use std::sync::{Arc, Mutex};

    fn msg(offset: i64, len: usize) -> OwnedMessage {
        OwnedMessage::new(Some(vec![b'x'; len]), None, "t".into(), Timestamp::NotAvailable, 0, offset, None)
    }

    /// A source handing out `available` records at once, then nothing (a quiet topic).
    fn source(available: Vec<OwnedMessage>) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = KafkaResult<OwnedMessage>> + Send>> {
        let queue = Arc::new(Mutex::new(std::collections::VecDeque::from(available)));
        move || {
            let queue = queue.clone();
            Box::pin(async move {
                loop {
                    if let Some(m) = queue.lock().unwrap().pop_front() {
                        return Ok(m);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        }
    }

    async fn read(available: Vec<OwnedMessage>, limits: BatchLimits) -> (Batch, Vec<(i64, bool)>) {
        let mut seen = Vec::new();
        let batch = read_batch(source(available), limits, &CancellationToken::new(), |m, first| seen.push((m.offset(), first))).await;
        (batch, seen)
    }

    const LIMITS: BatchLimits = BatchLimits { max_records: 3, max_bytes: 1000, linger: Duration::from_millis(50) };

    #[tokio::test]
    async fn stops_at_the_record_limit() {
        let (batch, seen) = read((0..10).map(|o| msg(o, 10)).collect(), LIMITS).await;
        assert_eq!(batch, Batch::Read { records: 3, bytes: 30 });
        assert_eq!(seen, vec![(0, true), (1, false), (2, false)]);
    }

    #[tokio::test]
    async fn stops_at_the_byte_limit_taking_the_record_that_crosses_it() {
        let (batch, seen) = read(vec![msg(0, 600), msg(1, 600), msg(2, 10)], LIMITS).await;
        assert_eq!(batch, Batch::Read { records: 2, bytes: 1200 });
        assert_eq!(seen.len(), 2);
    }

    #[tokio::test]
    async fn stops_after_the_linger_on_a_quiet_topic() {
        let started = std::time::Instant::now();
        let (batch, _) = read(vec![msg(0, 1)], LIMITS).await;
        assert_eq!(batch, Batch::Read { records: 1, bytes: 1 });
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(2), "{waited:?}");
    }

    #[tokio::test]
    async fn shutdown_while_waiting_reads_nothing() {
        let stop = CancellationToken::new();
        let canceller = {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                stop.cancel();
            })
        };
        let mut called = false;
        let batch = read_batch(source(vec![]), LIMITS, &stop, |_, _| called = true).await;
        canceller.await.unwrap();
        assert_eq!((batch, called), (Batch::Shutdown, false));
    }
}
