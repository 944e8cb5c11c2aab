//! Consumer lag per partition, measured on a timer, and whether the broker answers the
//! consumer (the `kafka_consumer` readiness condition): one probe does both.
//!
//! Lag of a partition = its high watermark − the group's committed offset (− its low watermark
//! when nothing is committed yet): what is on the topic and not yet done. Committed, not the
//! fetch position, because the position runs ahead of the work (prefetch); a stage that stops
//! committing shows a growing lag even while it still fetches.

use crate::readiness::{spawn_probe, Readiness, ReadinessConfig, KAFKA_CONSUMER};
use crate::shutdown::CancellationToken;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::topic_partition_list::Offset;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One partition's lag from its watermarks and the committed offset.
pub fn lag(low: i64, high: i64, committed: Offset) -> i64 {
    let done = match committed {
        Offset::Offset(o) => o,
        _ => low,
    };
    (high - done.max(low)).max(0)
}

/// Measures the lag of every partition assigned to `consumer` every `cfg.probe_interval_ms`
/// into the gauge `sendtrace_<stage>_consumer_lag_records{topic,partition}`, and fails the
/// `kafka_consumer` condition while the broker does not answer (with nothing assigned, a
/// metadata request for `topic` is the probe). A partition this instance no longer holds is set
/// to 0 (another member reports it): aggregate with `max by (topic, partition)`.
pub fn spawn_lag_watch<C>(
    consumer: Arc<StreamConsumer<C>>,
    stage: &str,
    topic: String,
    readiness: Readiness,
    cfg: ReadinessConfig,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()>
where
    C: ConsumerContext + 'static,
{
    let metric = format!("sendtrace_{stage}_consumer_lag_records");
    let reported: Arc<Mutex<BTreeSet<(String, i32)>>> = Arc::default();
    // The blocking calls outlive a probe that timed out: never run two at once.
    let busy = Arc::new(AtomicBool::new(false));
    spawn_probe(readiness, KAFKA_CONSUMER, cfg, shutdown, move || {
        let (consumer, metric, topic, reported, busy) = (consumer.clone(), metric.clone(), topic.clone(), reported.clone(), busy.clone());
        async move {
            if busy.swap(true, Ordering::AcqRel) {
                return Err("the previous probe has not finished".to_string());
            }
            tokio::task::spawn_blocking(move || {
                let r = measure(&consumer, &metric, &topic, &reported, cfg.timeout());
                busy.store(false, Ordering::Release);
                r
            })
            .await
            .map_err(|e| format!("lag task failed: {e}"))?
        }
    })
}

fn measure<C: ConsumerContext>(
    consumer: &StreamConsumer<C>,
    metric: &str,
    topic: &str,
    reported: &Mutex<BTreeSet<(String, i32)>>,
    timeout: Duration,
) -> Result<(), String> {
    let assignment = consumer.assignment().map_err(|e| format!("assignment unavailable: {e}"))?;
    if assignment.count() == 0 {
        consumer.fetch_metadata(Some(topic), timeout).map_err(|e| format!("broker metadata for topic {topic} unavailable: {e}"))?;
    }
    let committed = if assignment.count() == 0 {
        assignment
    } else {
        consumer.committed(timeout).map_err(|e| format!("committed offsets unavailable: {e}"))?
    };
    let mut now = BTreeSet::new();
    for e in committed.elements() {
        let (t, p) = (e.topic().to_string(), e.partition());
        let (low, high) = consumer.fetch_watermarks(&t, p, timeout).map_err(|e| format!("watermarks of {t}/{p} unavailable: {e}"))?;
        metrics::gauge!(metric.to_string(), "topic" => t.clone(), "partition" => p.to_string()).set(lag(low, high, e.offset()) as f64);
        now.insert((t, p));
    }
    let mut reported = reported.lock().unwrap_or_else(|p| p.into_inner());
    for (t, p) in reported.difference(&now) {
        metrics::gauge!(metric.to_string(), "topic" => t.clone(), "partition" => p.to_string()).set(0.0);
    }
    reported.extend(now);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_what_is_not_committed() {
        assert_eq!(lag(0, 100, Offset::Offset(40)), 60);
        assert_eq!(lag(0, 100, Offset::Offset(100)), 0);
        assert_eq!(lag(10, 100, Offset::Invalid), 90, "nothing committed: everything retained");
        assert_eq!(lag(50, 100, Offset::Offset(20)), 50, "committed below the retained range");
        assert_eq!(lag(0, 5, Offset::Offset(9)), 0, "never negative");
    }
}
