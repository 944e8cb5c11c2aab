//! Raw topic → events topic (and dead-letter topic), at least once.
//!
//! Records are read in batches (bounded in records and bytes); every output of a batch is
//! produced and acknowledged (acks=all) before the batch's offsets are stored for commit.
//! A transiently failed produce is retried (replays are harmless: event ids are
//! deterministic); an output the broker refuses for what it is (too large, invalid) is
//! replaced by a small dead letter, so no record can stop its partition.

use crate::config::Config;
use crate::dead_letter::{self, Coordinates, Failure};
use crate::normalize::normalize;
use crate::providers::{NormalizeOptions, RawRecord};
use futures::future::join_all;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use runtime::backoff::Backoff;
use runtime::batch::{read_batch, Batch, BatchLimits};
use runtime::clock::now_ms;
use runtime::kafka::ReplaceableProducer;
use runtime::shutdown::CancellationToken;
use runtime::telemetry::Health;
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::{error, info, warn};

/// One record to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub dead_letter: bool,
    pub key: String,
    pub payload: Vec<u8>,
    /// Partition and offset of the raw record it came from.
    pub source: (i32, i64),
}

/// The bounds [`handle`] keeps its outputs within (from [`Config`]).
#[derive(Debug, Clone, Copy)]
pub struct OutputBounds {
    pub max_event_bytes: usize,
    pub dead_letter_raw_max_bytes: usize,
    pub max_dead_letters_per_record: usize,
}

impl OutputBounds {
    pub fn of(cfg: &Config) -> Self {
        OutputBounds {
            max_event_bytes: cfg.max_event_bytes,
            dead_letter_raw_max_bytes: cfg.dead_letter_raw_max_bytes,
            max_dead_letters_per_record: cfg.max_dead_letters_per_record,
        }
    }
}

impl Default for OutputBounds {
    fn default() -> Self {
        OutputBounds::of(&Config::default())
    }
}


/// Builds the dead letters of one raw record.
struct DeadLetters<'a> {
    at: Coordinates<'a>,
    raw: &'a [u8],
    bounds: OutputBounds,
    now_ms: i64,
}

impl DeadLetters<'_> {
    fn one(&self, failure: Failure<'_>, tenant: Option<&str>, provider: Option<&str>, request_id: Option<&str>) -> Option<Outgoing> {
        let provider_label = provider.map_or("unknown", |p| dead_letter::truncate(p, 32)).to_string();
        metrics::counter!("sendtrace_normalizer_dead_letters_total", "provider" => provider_label.clone(), "reason" => failure.reason_code.to_string()).increment(1);
        warn!(message = "Record sent to dead-letter topic.", reason = failure.reason_code, partition = self.at.partition, offset = self.at.offset, item = ?failure.item, provider = %provider_label);
        let mut dl = dead_letter::record(failure, self.at, tenant, provider, self.raw, self.bounds.dead_letter_raw_max_bytes, self.now_ms);
        dl.request_id = request_id.map(|r| dead_letter::truncate(r, 64).to_string());
        match schemas::avro::encode_dead_letter(&dl) {
            Ok(payload) => Some(Outgoing {
                dead_letter: true,
                key: format!("{}/{}/{}", self.at.topic, self.at.partition, self.at.offset),
                payload,
                source: (self.at.partition, self.at.offset),
            }),
            Err(e) => {
                // Cannot happen for a well-formed schema; keep the record flowing anyway.
                error!(message = "Dead letter could not be encoded.", error = %e);
                None
            }
        }
    }
}

/// What one raw Kafka record becomes: its events, and a dead letter for the record or for
/// each part of it that could not be read. Never panics on input; every output is bounded
/// (events by `max_event_bytes`, dead letters by `dead_letter_raw_max_bytes`, their number
/// by `max_dead_letters_per_record` plus one summary).
pub fn handle(
    at: Coordinates<'_>,
    payload: Option<&[u8]>,
    opts: &NormalizeOptions,
    bounds: OutputBounds,
    now_ms: i64,
) -> Vec<Outgoing> {
    let bytes = payload.unwrap_or_default();
    let dl = DeadLetters { at, raw: bytes, bounds, now_ms };
    let whole = |code: &str, reason: &str, tenant: Option<&str>, provider: Option<&str>, request_id: Option<&str>| {
        dl.one(Failure { reason_code: code, reason, item: None }, tenant, provider, request_id).into_iter().collect()
    };
    let envelope = match schemas::avro::decode_raw_ref(bytes) {
        Ok(env) => env,
        Err(e) => return whole(e.code(), &format!("raw envelope unreadable: {e}"), None, None, None),
    };
    // every log line about this record (its dead letters included) names ingest's request id
    let _record = tracing::info_span!("record", request_id = %envelope.request_id).entered();
    let (tenant, provider, request_id) = (Some(envelope.tenant), Some(envelope.provider.as_str()), Some(envelope.request_id));
    let provider_id = envelope.provider;
    let raw = RawRecord::borrowed(envelope, at.topic, at.partition, at.offset);
    let normalized = match normalize(&raw, opts) {
        Ok(n) => n,
        Err(e) => return whole(e.code(), &e.to_string(), tenant, provider, request_id),
    };
    crate::counters::records(provider_id).increment(1);
    let mut out = Vec::with_capacity(normalized.events.len() + normalized.rejected.len());
    // Only the first `max_dead_letters_per_record` failures become dead letters, so only
    // their reasons are formatted (a record can hold hundreds of thousands of bad items).
    let cap = bounds.max_dead_letters_per_record;
    let mut failed = 0usize;
    let mut failures: Vec<(&'static str, String, usize)> = Vec::new();
    let mut fail = |code: &'static str, item: usize, reason: &dyn Fn() -> String| {
        if failed < cap {
            failures.push((code, reason(), item));
        }
        failed += 1;
    };
    for r in &normalized.rejected {
        fail(r.error.code(), r.item, &|| format!("item {}: {}", r.item, r.error));
    }
    for (n, e) in normalized.events.iter().enumerate() {
        match schemas::avro::encode_event(e) {
            Ok(payload) if payload.len() <= bounds.max_event_bytes => {
                crate::counters::events(provider_id, e.event_type).increment(1);
                out.push(Outgoing { dead_letter: false, key: e.delivery_key.clone(), payload, source: (at.partition, at.offset) });
            }
            Ok(payload) => fail("event_too_large", n, &|| {
                format!("output event {n}: {} bytes encoded > max_event_bytes {}", payload.len(), bounds.max_event_bytes)
            }),
            Err(err) => fail(err.code(), n, &|| format!("output event {n} not encodable: {err}")),
        }
    }
    for (code, reason, item) in &failures {
        out.extend(dl.one(Failure { reason_code: code, reason, item: Some(*item) }, tenant, provider, request_id));
    }
    if failed > failures.len() {
        let reason = format!("{} more items of this record failed like the {} before", failed - failures.len(), failures.len());
        out.extend(dl.one(Failure { reason_code: "more_rejected_items", reason: &reason, item: None }, tenant, provider, request_id));
    }
    out
}

/// A small dead letter standing in for an output the broker refused for what it is.
fn refused(o: &Outgoing, raw_topic: &str, error: &str, now_ms: i64) -> Option<Outgoing> {
    let (partition, offset) = o.source;
    let reason = format!("the broker refused the {} ({} bytes): {error}", if o.dead_letter { "dead letter" } else { "event" }, o.payload.len());
    let dl = dead_letter::record(
        Failure { reason_code: "produce_refused", reason: &reason, item: None },
        Coordinates { topic: raw_topic, partition, offset },
        None,
        None,
        &[],
        0,
        now_ms,
    );
    let payload = schemas::avro::encode_dead_letter(&dl).ok()?;
    Some(Outgoing { dead_letter: true, key: format!("{raw_topic}/{partition}/{offset}"), payload, source: o.source })
}

/// Produces every record and waits for all acknowledgements. A transient failure is retried
/// (only the failed records) until acknowledged or shutdown is requested (then returns false:
/// the batch is not stored). A record the broker refuses for what it is becomes a small
/// dead letter; if even that is refused, it is dropped with an error (the raw record stays
/// on the raw topic), because retrying it would stop the partition for every tenant.
async fn produce_all(producer: &ReplaceableProducer, cfg: &Config, out: Vec<Outgoing>, shutdown: &CancellationToken) -> bool {
    let mut backoff = Backoff::new(Duration::from_secs(5));
    let timeout = Duration::from_millis(cfg.kafka.message_timeout_ms as u64 + 1000);
    let mut pending = out;
    loop {
        let sends = pending.iter().map(|o| {
            let topic = if o.dead_letter { &cfg.dead_letter_topic } else { &cfg.events_topic };
            producer.send_checked(topic, &o.key, &o.payload, timeout)
        });
        let results = join_all(sends).await;
        let mut retry = Vec::new();
        let mut transient = 0;
        for (o, r) in pending.into_iter().zip(results) {
            match r {
                Ok(()) => {}
                Err(e) if e.permanent => {
                    metrics::counter!("sendtrace_normalizer_produce_refused_total", "topic" => if o.dead_letter { "dead_letter" } else { "events" }).increment(1);
                    match refused(&o, &cfg.raw_topic, &e.message, now_ms()) {
                        Some(dl) if !o.dead_letter || o.payload.len() > dl.payload.len() => {
                            warn!(message = "Output refused by the broker; sending a dead letter instead.", error = %e, bytes = o.payload.len());
                            retry.push(dl);
                        }
                        _ => error!(message = "Dead letter refused by the broker; dropped (the raw record stays on the raw topic).", error = %e, key = %o.key),
                    }
                }
                Err(_) => {
                    transient += 1;
                    retry.push(o);
                }
            }
        }
        if retry.is_empty() {
            return true;
        }
        if transient > 0 {
            metrics::counter!("sendtrace_normalizer_produce_retries_total").increment(1);
            warn!(message = "Produce failed; retrying the failed records.", failed = transient, backoff_ms = backoff.current().as_millis() as u64);
            if !backoff.wait(shutdown).await {
                return false;
            }
        }
        pending = retry;
    }
}

/// Runs until `shutdown`.
pub async fn run(cfg: Config, health: Health, shutdown: CancellationToken) -> anyhow::Result<()> {
    cfg.validate()?;
    // `handle`'s counters bind to the recorder installed when first used (`counters.rs`):
    // install it now, not when the admin task first serves.
    let _ = runtime::telemetry::metrics_handle();
    if cfg.create_topics {
        cfg.kafka.ensure_topics(&[&cfg.raw_topic, &cfg.events_topic, &cfg.dead_letter_topic], &[]).await?;
    }
    let consumer = std::sync::Arc::new(cfg.kafka.consumer(&cfg.group_id)?);
    consumer.subscribe(&[&cfg.raw_topic])?;
    let producer = std::sync::Arc::new(ReplaceableProducer::new(cfg.kafka.clone())?.observed("normalizer", health.readiness()));
    let bounds = OutputBounds::of(&cfg);
    let watches = [
        runtime::consumer_lag::spawn_lag_watch(consumer.clone(), "normalizer", cfg.raw_topic.clone(), health.readiness(), cfg.readiness, shutdown.clone()),
        producer.spawn_probe(cfg.events_topic.clone(), cfg.readiness, shutdown.clone()),
    ];
    health.set_ready(true);
    info!(message = "Normalizer running.", raw_topic = %cfg.raw_topic, events_topic = %cfg.events_topic);
    let limits = BatchLimits { max_records: cfg.batch_max_records, max_bytes: cfg.batch_max_raw_bytes, linger: Duration::from_millis(cfg.batch_linger_ms) };
    'outer: loop {
        let mut batch: Vec<OwnedMessage> = Vec::new();
        if read_batch(|| consumer.recv(), limits, &shutdown, |m, _| batch.push(m.detach())).await == Batch::Shutdown {
            break;
        }
        metrics::histogram!("sendtrace_normalizer_batch_records").record(batch.len() as f64);
        let now = now_ms();
        // Produce in chunks of at most `batch_max_output_bytes` (plus one record's output).
        let mut pending: Vec<Outgoing> = Vec::new();
        let mut pending_bytes = 0usize;
        for m in &batch {
            let at = Coordinates { topic: m.topic(), partition: m.partition(), offset: m.offset() };
            for o in handle(at, m.payload(), &cfg.mapping, bounds, now) {
                pending_bytes += o.payload.len();
                pending.push(o);
            }
            if pending_bytes >= cfg.batch_max_output_bytes {
                if !produce_all(&producer, &cfg, std::mem::take(&mut pending), &shutdown).await {
                    break 'outer;
                }
                pending_bytes = 0;
            }
        }
        if !produce_all(&producer, &cfg, pending, &shutdown).await {
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
    watches.iter().for_each(tokio::task::JoinHandle::abort);
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

    fn at(topic: &str, partition: i32, offset: i64) -> Coordinates<'_> {
        Coordinates { topic, partition, offset }
    }

    fn raw_bytes(provider: &str, body: &[u8]) -> Vec<u8> {
        let env = crate::providers::testkit::envelope(provider, body.to_vec(), BTreeMap::new());
        schemas::avro::encode_raw(&env).unwrap()
    }

    fn replace_once(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let i = bytes.windows(from.len()).position(|w| w == from).expect("pattern present");
        [&bytes[..i], to, &bytes[i + from.len()..]].concat()
    }

    #[test]
    fn good_record_becomes_avro_events_keyed_by_delivery() {
        let body = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/src/providers/ses/fixtures/event_bounce_multi.json")).unwrap();
        let out = handle(at("raw", 2, 11), Some(&raw_bytes("ses", &body)), &NormalizeOptions::default(), OutputBounds::default(), 1);
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
            // An envelope naming a provider this build does not know (written by a newer ingest):
            // the provider string `ses` (Avro: length 3 zig-zag = 0x06, then the bytes) renamed.
            (Some(replace_once(&raw_bytes("ses", b"{}"), b"\x06ses", b"\x06xyz")), "unknown_provider"),
            (Some(replace_once(&raw_bytes("ses", b"{}"), b"\x0ewebhook", b"\x0ewebhuuk")), "unknown_route"),
        ];
        for (payload, code) in cases {
            let out = handle(at("raw", 0, 5), payload.as_deref(), &NormalizeOptions::default(), OutputBounds::default(), 1);
            assert_eq!(out.len(), 1);
            assert!(out[0].dead_letter);
            let dl = schemas::avro::decode_dead_letter(&out[0].payload).unwrap();
            assert_eq!(dl.reason_code, code);
            assert!(!dl.reason.is_empty());
            assert_eq!((dl.raw_topic.as_str(), dl.raw_partition, dl.raw_offset), ("raw", 0, 5));
            // the request id comes from the envelope, so only readable envelopes give one
            let readable = payload.as_deref().is_some_and(|p| schemas::avro::decode_raw(p).is_ok());
            assert_eq!(dl.request_id.as_deref(), readable.then_some("test"), "{code}");
            assert_eq!(dl.raw, payload.unwrap_or_default());
        }
    }

    fn dead_letters(out: &[Outgoing]) -> Vec<schemas::DeadLetter> {
        out.iter().filter(|o| o.dead_letter).map(|o| schemas::avro::decode_dead_letter(&o.payload).unwrap()).collect()
    }

    fn events(out: &[Outgoing]) -> Vec<schemas::Event> {
        out.iter().filter(|o| !o.dead_letter).map(|o| schemas::avro::decode_event(&o.payload).unwrap()).collect()
    }

    fn ses_delivery(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/providers/ses/fixtures/event_delivery.json");
        let mut sns: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let mut message: serde_json::Value = serde_json::from_str(sns["Message"].as_str().unwrap()).unwrap();
        edit(&mut message);
        sns["Message"] = serde_json::Value::String(message.to_string());
        serde_json::to_vec(&sns).unwrap()
    }

    /// Finding 11: one bad item of a SendGrid batch gets its own dead letter (with its index);
    /// the good items still become events.
    #[test]
    fn a_bad_item_does_not_spoil_its_batch() {
        let body = br#"[{"email":"a@x.io","timestamp":1513299569,"event":"delivered","sg_event_id":"e1","sg_message_id":"m1.f"},
                        {"email":"b@x.io","timestamp":1513299569,"event":"delivered","sg_event_id":"e2"},
                        "not an object",
                        {"email":"c@x.io","timestamp":1513299569,"event":"open","sg_event_id":"e4","sg_message_id":"m3.f"}]"#;
        let out = handle(at("raw", 1, 9), Some(&raw_bytes("sendgrid", body)), &NormalizeOptions::default(), OutputBounds::default(), 1);
        let got: Vec<String> = events(&out).into_iter().map(|e| e.recipient).collect();
        assert_eq!(got, ["a@x.io", "c@x.io"]);
        let dls = dead_letters(&out);
        let items: Vec<(Option<i32>, &str)> = dls.iter().map(|d| (d.item, d.reason_code.as_str())).collect();
        assert_eq!(items, [(Some(1), "missing_field"), (Some(2), "invalid_field")]);
        assert!(dls[0].reason.contains("sg_message_id"), "{}", dls[0].reason);
        assert_eq!((dls[0].raw_partition, dls[0].raw_offset, dls[0].tenant.as_deref()), (1, 9, Some("acme")));
    }

    /// Finding 2: a record larger than the broker's message limit still gets a dead letter
    /// that fits (a bounded prefix plus the record's coordinates and size).
    #[test]
    fn a_dead_letter_of_a_huge_record_is_bounded() {
        let body = vec![b'x'; 3_000_000];
        let raw = raw_bytes("sendgrid", &body);
        let bounds = OutputBounds::default();
        let out = handle(at("raw", 0, 1), Some(&raw), &NormalizeOptions::default(), bounds, 1);
        assert_eq!(out.len(), 1);
        assert!(out[0].payload.len() <= bounds.dead_letter_raw_max_bytes + dead_letter::MAX_OVERHEAD_BYTES);
        assert!(out[0].payload.len() < runtime::kafka::producer_max_message_bytes(&Default::default()));
        let dl = &dead_letters(&out)[0];
        assert_eq!((dl.raw_size, dl.raw_truncated, dl.raw.as_slice()), (raw.len() as i64, true, &raw[..bounds.dead_letter_raw_max_bytes]));
    }

    /// Finding 3: recipients × copied tags are bounded before anything is copied.
    #[test]
    fn expansion_is_bounded_per_record_and_per_event() {
        let opts = NormalizeOptions::default();
        let many: Vec<String> = (0..opts.limits.max_events_per_record + 1).map(|i| format!("r{i}@x.io")).collect();
        let body = ses_delivery(|m| {
            m["mail"]["destination"] = serde_json::json!(many);
            m["delivery"]["recipients"] = serde_json::json!(many);
        });
        let out = handle(at("raw", 0, 1), Some(&raw_bytes("ses", &body)), &opts, OutputBounds::default(), 1);
        assert!(events(&out).is_empty());
        let dls = dead_letters(&out);
        assert_eq!(dls.len(), 1);
        assert_eq!(dls[0].reason_code, "limit_exceeded");
        assert!(dls[0].reason.contains("events of the record: 10001 > 10000"), "{}", dls[0].reason);

        let tags: serde_json::Map<String, serde_json::Value> = (0..500).map(|i| (format!("tag{i}"), serde_json::json!(["v"]))).collect();
        let body = ses_delivery(|m| m["mail"]["tags"] = serde_json::Value::Object(tags));
        let dls = dead_letters(&handle(at("raw", 0, 2), Some(&raw_bytes("ses", &body)), &opts, OutputBounds::default(), 1));
        assert!(dls[0].reason.contains("labels: 500 > 64"), "{}", dls[0].reason);

        // Many recipients with the largest attribution allowed: the estimate stops the record.
        let tags: serde_json::Map<String, serde_json::Value> = (0..60).map(|i| (format!("t{i}"), serde_json::json!(["v".repeat(60)]))).collect();
        let headers: Vec<serde_json::Value> = (0..60).map(|i| serde_json::json!({"name": format!("X-Metadata-k{i}"), "value": "m".repeat(120)})).collect();
        let many: Vec<String> = (0..9_000).map(|i| format!("r{i}@x.io")).collect();
        let body = ses_delivery(|m| {
            m["mail"]["tags"] = serde_json::Value::Object(tags);
            m["mail"]["headers"] = serde_json::json!(headers);
            m["mail"]["destination"] = serde_json::json!(many);
            m["delivery"]["recipients"] = serde_json::json!(many);
        });
        let small = NormalizeOptions { limits: crate::providers::Limits { max_record_output_bytes: 8 << 20, ..Default::default() }, ..Default::default() };
        let dls = dead_letters(&handle(at("raw", 0, 3), Some(&raw_bytes("ses", &body)), &small, OutputBounds::default(), 1));
        assert!(dls[0].reason.contains("output bytes of the record"), "{}", dls[0].reason);
    }

    /// Finding 3: a recipient or a free-text field beyond its bound is a dead letter, not an event.
    #[test]
    fn oversized_fields_are_dead_letters() {
        let long = format!("{}@x.io", "a".repeat(600));
        let body = format!(r#"[{{"email":"{long}","timestamp":1513299569,"event":"delivered","sg_event_id":"e1","sg_message_id":"m1"}},
                             {{"email":"b@x.io","timestamp":1513299569,"event":"click","url":"https://x.io/{}","sg_event_id":"e2","sg_message_id":"m2"}},
                             {{"email":"c@x.io","timestamp":1513299569,"event":"open","sg_event_id":"e3","sg_message_id":"m3"}}]"#, "u".repeat(9000));
        let out = handle(at("raw", 0, 1), Some(&raw_bytes("sendgrid", body.as_bytes())), &NormalizeOptions::default(), OutputBounds::default(), 1);
        assert_eq!(events(&out).len(), 1);
        let reasons: Vec<String> = dead_letters(&out).into_iter().map(|d| d.reason).collect();
        assert!(reasons[0].contains("recipient 0 of item 0: 605 bytes > 320"), "{reasons:?}");
        assert!(reasons[1].contains("click url: 9013 > 8192"), "{reasons:?}");
    }

    /// Finding 9: provider times far from the received time are dead letters, also for SendGrid.
    #[test]
    fn implausible_times_are_dead_letters() {
        for ts in ["-9223372036854775", "99999999999", "0"] {
            let body = format!(r#"[{{"email":"a@x.io","timestamp":{ts},"event":"open","sg_event_id":"e1","sg_message_id":"m1"}}]"#);
            let out = handle(at("raw", 0, 1), Some(&raw_bytes("sendgrid", body.as_bytes())), &NormalizeOptions::default(), OutputBounds::default(), 1);
            let dls = dead_letters(&out);
            assert_eq!(dls.len(), 1, "{ts}");
            assert_eq!(dls[0].reason_code, "invalid_field", "{ts}");
        }
    }

    /// Dead letters of one record are bounded in number: the rest are counted in one more.
    #[test]
    fn dead_letters_per_record_are_bounded() {
        let items: Vec<String> = (0..1000).map(|_| "{}".to_string()).collect();
        let body = format!("[{}]", items.join(","));
        let bounds = OutputBounds { max_dead_letters_per_record: 10, ..OutputBounds::default() };
        let out = handle(at("raw", 0, 1), Some(&raw_bytes("sendgrid", body.as_bytes())), &NormalizeOptions::default(), bounds, 1);
        let dls = dead_letters(&out);
        assert_eq!(dls.len(), 11);
        assert_eq!(dls[10].reason_code, "more_rejected_items");
        assert!(dls[10].reason.starts_with("990 more items"), "{}", dls[10].reason);
    }

    /// Finding 4: ids of items without a provider event id hash the body once, not once per
    /// item (quadratic: 9 000 items × 2 MB would hash 18 GB and take minutes).
    #[test]
    fn a_large_batch_without_event_ids_is_linear() {
        let items: Vec<String> = (0..9_000)
            .map(|i| format!(r#"{{"email":"r{i}@x.io","timestamp":1513299569,"event":"dropped","sg_message_id":"m{i}","reason":"{}"}}"#, "p".repeat(150)))
            .collect();
        let body = format!("[{}]", items.join(","));
        assert!(body.len() > 1_800_000);
        let raw = raw_bytes("sendgrid", body.as_bytes());
        let started = std::time::Instant::now();
        let out = handle(at("raw", 0, 1), Some(&raw), &NormalizeOptions::default(), OutputBounds::default(), 1);
        let took = started.elapsed();
        let evs = events(&out);
        assert_eq!(evs.len(), 9_000);
        let ids: std::collections::HashSet<&str> = evs.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids.len(), 9_000);
        assert!(took < Duration::from_secs(20), "took {took:?}");
    }

    #[test]
    fn refused_outputs_become_small_dead_letters_with_coordinates() {
        let o = Outgoing { dead_letter: false, key: "k".into(), payload: vec![0; 2_000_000], source: (3, 77) };
        let dl = refused(&o, "raw.topic", "Message size too large", 5).unwrap();
        assert!(dl.payload.len() < 2_000);
        let d = schemas::avro::decode_dead_letter(&dl.payload).unwrap();
        assert_eq!((d.raw_topic.as_str(), d.raw_partition, d.raw_offset, d.reason_code.as_str()), ("raw.topic", 3, 77, "produce_refused"));
    }
}
