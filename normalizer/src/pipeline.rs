//! Raw topic → events topic (and dead-letter topic), at least once.
//!
//! Records are read in batches; every output of a batch is produced and
//! acknowledged (acks=all) before the batch's offsets are stored for commit.
//! A failed produce is retried, never skipped: replays are harmless because
//! event ids are deterministic.

use crate::config::Config;
use crate::dead_letter;
use crate::normalize::normalize;
use crate::providers::{NormalizeOptions, RawRecord};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use runtime::kafka::ReplaceableProducer;
use runtime::shutdown::CancellationToken;
use runtime::telemetry::Health;
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::{info, warn};

/// One record to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub dead_letter: bool,
    pub key: String,
    pub payload: Vec<u8>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What one raw Kafka record becomes: events, or one dead letter. Never panics on input.
pub fn handle(topic: &str, partition: i32, offset: i64, payload: Option<&[u8]>, opts: &NormalizeOptions, now_ms: i64) -> Vec<Outgoing> {
    let coords = (topic, partition, offset);
    let bytes = payload.unwrap_or_default();
    let dead = |code: &str, reason: &str, tenant: Option<&str>, provider: Option<&str>| {
        metrics::counter!("sendtrace_normalizer_dead_letters_total", "provider" => provider.unwrap_or("unknown").to_string(), "reason" => code.to_string()).increment(1);
        warn!(message = "Record sent to dead-letter topic.", reason = code, %partition, %offset, provider = provider.unwrap_or("unknown"));
        let dl = dead_letter::record(code, reason, coords, tenant, provider, bytes, now_ms);
        match schemas::avro::encode_dead_letter(&dl) {
            Ok(payload) => vec![Outgoing { dead_letter: true, key: format!("{topic}/{partition}/{offset}"), payload }],
            Err(e) => {
                // Cannot happen for a well-formed schema; keep the record flowing anyway.
                warn!(message = "Dead letter could not be encoded.", error = %e);
                Vec::new()
            }
        }
    };
    let envelope = match schemas::avro::decode_raw(bytes) {
        Ok(env) => env,
        Err(e) => return dead(e.code(), &format!("raw envelope unreadable: {e}"), None, None),
    };
    let raw = RawRecord { envelope: &envelope, topic, partition, offset };
    match normalize(&raw, opts) {
        Ok(events) => {
            metrics::counter!("sendtrace_normalizer_records_total", "provider" => envelope.provider.clone()).increment(1);
            let mut out = Vec::with_capacity(events.len());
            for e in &events {
                metrics::counter!("sendtrace_normalizer_events_total", "provider" => envelope.provider.clone(), "event_type" => e.event_type.as_str()).increment(1);
                match schemas::avro::encode_event(e) {
                    Ok(payload) => out.push(Outgoing { dead_letter: false, key: e.delivery_key.clone(), payload }),
                    Err(err) => return dead(err.code(), &format!("event not encodable: {err}"), Some(&envelope.tenant), Some(&envelope.provider)),
                }
            }
            out
        }
        Err(e) => dead(e.code(), &e.to_string(), Some(&envelope.tenant), Some(&envelope.provider)),
    }
}

/// Produces every record and waits for all acknowledgements; retries until all are
/// acknowledged or shutdown is requested (then returns false: the batch is not stored).
async fn produce_all(producer: &ReplaceableProducer, cfg: &Config, out: &[Outgoing], shutdown: &CancellationToken) -> bool {
    let mut backoff = Duration::from_millis(100);
    let timeout = Duration::from_millis(cfg.kafka.message_timeout_ms as u64 + 1000);
    loop {
        let sends = out.iter().map(|o| {
            let topic = if o.dead_letter { &cfg.dead_letter_topic } else { &cfg.events_topic };
            producer.send(topic, &o.key, &o.payload, timeout)
        });
        let results = join_all(sends).await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        if failed == 0 {
            return true;
        }
        metrics::counter!("sendtrace_normalizer_produce_retries_total").increment(1);
        warn!(message = "Produce failed; retrying batch.", failed, backoff_ms = backoff.as_millis() as u64);
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Awaits futures in order. The sends are already queued in librdkafka when created
/// (produce happens on first poll, so poll them all together).
async fn join_all<F: std::future::Future>(fs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let futs: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    let mut futs: Vec<Option<_>> = futs.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, res) in futs.iter_mut().zip(results.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *res = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// Runs until `shutdown`.
pub async fn run(cfg: Config, health: Health, shutdown: CancellationToken) -> anyhow::Result<()> {
    if cfg.create_topics {
        cfg.kafka.ensure_topics(&[&cfg.raw_topic, &cfg.events_topic, &cfg.dead_letter_topic], &[]).await?;
    }
    let consumer = cfg.kafka.consumer(&cfg.group_id)?;
    consumer.subscribe(&[&cfg.raw_topic])?;
    let producer = ReplaceableProducer::new(cfg.kafka.clone())?;
    health.set_ready(true);
    info!(message = "Normalizer running.", raw_topic = %cfg.raw_topic, events_topic = %cfg.events_topic);
    let linger = Duration::from_millis(cfg.batch_linger_ms);
    'outer: loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = consumer.recv() => m,
        };
        let mut batch: Vec<OwnedMessage> = match first {
            Ok(m) => vec![m.detach()],
            Err(e) => {
                warn!(message = "Kafka receive failed.", error = %e);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < cfg.batch_max_records {
            tokio::select! {
                m = consumer.recv() => match m {
                    Ok(m) => batch.push(m.detach()),
                    Err(e) => { warn!(message = "Kafka receive failed.", error = %e); break }
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let now = now_ms();
        let out: Vec<Outgoing> = batch
            .iter()
            .flat_map(|m| handle(m.topic(), m.partition(), m.offset(), m.payload(), &cfg.mapping, now))
            .collect();
        if !produce_all(&producer, &cfg, &out, &shutdown).await {
            break 'outer;
        }
        let mut last: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for m in &batch {
            let e = last.entry((m.topic().to_string(), m.partition())).or_insert(m.offset());
            *e = (*e).max(m.offset());
        }
        for ((topic, partition), offset) in last {
            if let Err(e) = consumer.store_offset(&topic, partition, offset) {
                warn!(message = "Storing offset failed (partition revoked?).", error = %e, %partition);
            }
        }
    }
    health.set_ready(false);
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        warn!(message = "Final commit failed.", error = %e);
    }
    info!(message = "Normalizer stopped.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn raw_bytes(provider: &str, body: &[u8]) -> Vec<u8> {
        let env = crate::providers::testkit::envelope(provider, body.to_vec(), BTreeMap::new());
        schemas::avro::encode_raw(&env).unwrap()
    }

    #[test]
    fn good_record_becomes_avro_events_keyed_by_delivery() {
        let body = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/src/providers/ses/fixtures/event_bounce_multi.json")).unwrap();
        let out = handle("raw", 2, 11, Some(&raw_bytes("ses", &body)), &NormalizeOptions::default(), 1);
        assert_eq!(out.len(), 3);
        for o in &out {
            assert!(!o.dead_letter);
            let e = schemas::avro::decode_event(&o.payload).unwrap();
            assert_eq!(o.key, e.delivery_key);
            assert_eq!((e.raw_partition, e.raw_offset), (2, 11));
        }
    }

    #[test]
    fn unreadable_inputs_become_dead_letters_with_reason_and_coordinates() {
        let cases: Vec<(Option<Vec<u8>>, &str)> = vec![
            (None, "bad_magic"),
            (Some(b"not avro".to_vec()), "bad_magic"),
            (Some(raw_bytes("ses", b"{not json")), "invalid_json"),
            (Some(raw_bytes("nosuch", b"{}")), "unknown_provider"),
        ];
        for (payload, code) in cases {
            let out = handle("raw", 0, 5, payload.as_deref(), &NormalizeOptions::default(), 1);
            assert_eq!(out.len(), 1);
            assert!(out[0].dead_letter);
            let dl = schemas::avro::decode_dead_letter(&out[0].payload).unwrap();
            assert_eq!(dl.reason_code, code);
            assert!(!dl.reason.is_empty());
            assert_eq!((dl.raw_topic.as_str(), dl.raw_partition, dl.raw_offset), ("raw", 0, 5));
            assert_eq!(dl.raw, payload.unwrap_or_default());
        }
    }
}
