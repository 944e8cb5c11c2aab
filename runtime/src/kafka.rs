//! Kafka clients with the settings every stage needs.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use crate::readiness::{spawn_probe, Readiness, ReadinessConfig, KAFKA_PRODUCER};
use crate::shutdown::CancellationToken;
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Kafka connection settings, shared by every service config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// Consumer group session timeout. Short values make group joins fast (tansu waits about half of it).
    pub session_timeout_ms: u32,
    /// How long a produce may take, including retries, before it is reported failed.
    pub message_timeout_ms: u32,
    /// Partitions for topics this service creates.
    pub partitions: i32,
    /// Replication factor for topics this service creates.
    pub replication: i32,
    /// How long a producer waits to fill a batch (`linger.ms`). Every stage waits for each
    /// acknowledgement, so this is a latency floor; a longer one means fewer, larger produce
    /// requests, which a broker slow to acknowledge each one needs (the devstack's tansu:
    /// `devstack/up.sh`; BENCHMARKS.md §7 and §10).
    pub linger_ms: u32,
    /// Whether producers are idempotent (`enable.idempotence`). Unset: the service's own
    /// default, [`KafkaConfig::IDEMPOTENT_BY_DEFAULT`] except ingest's edge producer (not
    /// idempotent; `ingest::kafka`). An idempotent librdkafka producer (2.12) keeps one produce
    /// request in flight per partition (it counts a partition's in-flight *messages* against
    /// the limit of 5 *requests*, librdkafka PR #4989) and, while the next batch waits for that
    /// acknowledgement, its broker thread polls with a zero timeout: a busy loop as long as the
    /// broker takes to acknowledge. Either way `acks=all`: a delivery report means the write is
    /// durable. Not idempotent, a retried request can store a record twice or out of order,
    /// `max.in.flight.requests.per.connection` is 5.
    pub idempotence: Option<bool>,
    /// The longest a consumer's fetch waits at the broker for data (`fetch.wait.max.ms`;
    /// librdkafka's default, 500). Apache Kafka answers a fetch as soon as it has data for it,
    /// so there this bounds only an idle consumer's poll. The devstack's tansu 0.6 sleeps after
    /// every fetch, data or not: half of the wait left when that is 250 ms or more, all of
    /// it otherwise (`tansu-storage` 0.6.0, `service/fetch.rs`), so on the local stack every
    /// consumer hop took ≥ 250 ms; `devstack/config` and the tests set 100 (BENCHMARKS.md §10,
    /// "tansu's fetch wait").
    pub fetch_wait_max_ms: u32,
    /// Extra librdkafka properties (e.g. `security.protocol`).
    pub extra: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            session_timeout_ms: 6000,
            message_timeout_ms: 5000,
            partitions: 4,
            replication: 1,
            linger_ms: 2,
            idempotence: None,
            fetch_wait_max_ms: 500,
            extra: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }

    /// Producers are idempotent unless configured otherwise (`idempotence`).
    pub const IDEMPOTENT_BY_DEFAULT: bool = true;

    /// Whether producers made with these settings are idempotent.
    pub fn is_idempotent(&self) -> bool {
        self.idempotence.unwrap_or(Self::IDEMPOTENT_BY_DEFAULT)
    }

    /// A producer with acks=all (idempotent unless `idempotence` says otherwise): a delivery
    /// report means the write is durable.
    pub fn producer(&self) -> rdkafka::error::KafkaResult<FutureProducer> {
        self.producer_config().create()
    }

    fn producer_config(&self) -> ClientConfig {
        let mut c = self.base();
        let idempotent = self.is_idempotent();
        c.set("enable.idempotence", idempotent.to_string());
        if !idempotent {
            // librdkafka's default without idempotence is 1,000,000
            c.set("max.in.flight.requests.per.connection", "5");
        }
        c.set("acks", "all")
            .set("message.timeout.ms", self.message_timeout_ms.to_string())
            .set("linger.ms", self.linger_ms.to_string())
            .set("compression.type", "none");
        c
    }

    /// A consumer that commits only offsets the caller stored (`store_offset`) after its work is done
    /// (the rdkafka at-least-once pattern): nothing is committed for unfinished work.
    pub fn consumer(&self, group: &str) -> rdkafka::error::KafkaResult<StreamConsumer> {
        self.consumer_settings(group).create()
    }

    /// As [`KafkaConfig::consumer`], with a context that sees rebalances.
    pub fn consumer_with_context<C: rdkafka::consumer::ConsumerContext + 'static>(
        &self,
        group: &str,
        context: C,
    ) -> rdkafka::error::KafkaResult<StreamConsumer<C>> {
        self.consumer_settings(group).create_with_context(context)
    }

    fn consumer_settings(&self, group: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", self.session_timeout_ms.to_string())
            .set("heartbeat.interval.ms", (self.session_timeout_ms / 3).max(100).to_string())
            .set("partition.assignment.strategy", "range")
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string())
            // bound what librdkafka prefetches while we wait on a slow sink
            .set("queued.max.messages.kbytes", "16384");
        c
    }

    /// Creates `topics` if they do not exist (brokers like tansu do not auto-create).
    /// `compacted` topics get `cleanup.policy=compact`.
    pub async fn ensure_topics(&self, topics: &[&str], compacted: &[&str]) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.base().create()?;
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|t| {
                let nt = NewTopic::new(t, self.partitions, TopicReplication::Fixed(self.replication));
                if compacted.contains(t) {
                    nt.set("cleanup.policy", "compact")
                } else {
                    nt
                }
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for r in admin.create_topics(&new, &opts).await? {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, e)) => anyhow::bail!("creating topic {t}: {e}"),
            }
        }
        Ok(())
    }
}

/// A producer that is replaced after a failed send, and as soon as it loses every broker
/// connection. A new producer has a new idempotent producer id, so neither a fatal producer
/// error nor a broker that restarted without the old id's state can wedge a service: tansu 0.6
/// forgets producer ids on a restart and its storage task panics (the broker stops serving
/// anyone) when an id from before the restart writes again, which librdkafka does on its own
/// when it retries in-flight records after reconnecting, or at the next send of an idle
/// producer. So a producer that sees all brokers down is purged (its queued and in-flight
/// records are reported failed to their callers, who retry them) and replaced before the
/// broker can come back. Records an old producer still holds have been reported failed.
pub struct ReplaceableProducer {
    config: KafkaConfig,
    current: std::sync::Arc<std::sync::RwLock<std::sync::Arc<Watched>>>,
    observer: Option<ProduceObserver>,
}

/// How long [`ReplaceableProducer::enqueue`] waits before trying a full producer queue again.
const QUEUE_FULL_RETRY: Duration = Duration::from_millis(10);

/// A queued record's wait for the broker's acknowledgement ([`ReplaceableProducer::enqueue`]):
/// owns nothing of the record.
pub type Acknowledgement = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SendError>> + Send>>;

/// How often the watchdog of a [`ReplaceableProducer`] checks whether its producer lost every broker.
const BROKER_WATCH_INTERVAL: Duration = Duration::from_millis(50);
/// A producer younger than this is not replaced for a lost broker: one created during an outage
/// reports every failed connection attempt, and replacing it again brings nothing until the
/// broker is back (a broker outage shorter than this can still meet an old producer id).
const MIN_PRODUCER_AGE_BEFORE_WATCH_REPLACE: Duration = Duration::from_millis(1000);

/// librdkafka's error callback: notes when every broker connection is down.
#[derive(Clone, Default)]
pub struct BrokerWatch {
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl rdkafka::ClientContext for BrokerWatch {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        tracing::error!("librdkafka: {error}: {reason}");
    }
}

/// A record's delivery report: `Ok` once the broker acknowledged it.
type Delivery = Result<(), rdkafka::error::KafkaError>;

/// Delivery reports go to the channel each record was queued with (what rdkafka's
/// `FutureProducer` does, without its polling thread: see [`POLL_WINDOW`]).
impl rdkafka::producer::ProducerContext for BrokerWatch {
    type DeliveryOpaque = Box<tokio::sync::oneshot::Sender<Delivery>>;

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, report: Self::DeliveryOpaque) {
        // the caller may have stopped waiting (its timeout): nothing to tell then
        let _ = report.send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
    }
}

/// How long one call of the producer's polling thread waits for delivery reports (each is
/// handled as it comes). rdkafka's `FutureProducer` polls in 100 ms calls, and its poll loop
/// converts the time left to whole milliseconds, rounding down: the last millisecond of every
/// call is a busy loop (`rd_kafka_queue_poll` with a zero timeout), 10 ms of CPU per second per
/// producer even when idle (`an_idle_producer_does_not_spin`; BENCHMARKS.md §10). In calls of
/// this length it is at most 0.02 %; a dropped producer's thread ends within one call.
const POLL_WINDOW: Duration = Duration::from_secs(5);

/// One producer with what its watch saw, and its polling thread (stopped when dropped).
struct Watched {
    producer: std::sync::Arc<rdkafka::producer::BaseProducer<BrokerWatch>>,
    watch: BrokerWatch,
    created: std::time::Instant,
    stop_polling: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Watched {
    fn new(config: &KafkaConfig) -> rdkafka::error::KafkaResult<Watched> {
        let watch = BrokerWatch::default();
        let producer: std::sync::Arc<rdkafka::producer::BaseProducer<BrokerWatch>> = std::sync::Arc::new(config.producer_config().create_with_context(watch.clone())?);
        let stop_polling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (polled, stop) = (producer.clone(), stop_polling.clone());
        // The thread holds the producer until it stops: a producer is destroyed (its remaining
        // records purged and reported) on this thread, not on a caller's.
        std::thread::Builder::new()
            .name("kafka-prod-poll".into())
            .spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    polled.poll(POLL_WINDOW);
                }
            })
            .map_err(|e| rdkafka::error::KafkaError::ClientCreation(format!("the producer's polling thread: {e}")))?;
        Ok(Watched { producer, watch, created: std::time::Instant::now(), stop_polling })
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.stop_polling.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What [`ReplaceableProducer::observed`] reports each produce to.
struct ProduceObserver {
    /// `sendtrace_<stage>_produce_duration_seconds`.
    duration_metric: String,
    readiness: Readiness,
    /// When the last transient failure happened (ms since the epoch, 0: never).
    last_failure_ms: std::sync::atomic::AtomicI64,
    /// The histogram's handle per (topic, outcome), registered when first used rather than
    /// looked up by name and labels at every produce (a produce a request at the edge).
    durations: crate::telemetry::Handles<(String, &'static str), metrics::Histogram>,
}

impl ProduceObserver {
    fn duration(&self, topic: &str, outcome: &'static str) -> metrics::Histogram {
        self.durations.get(
            |(t, o)| t == topic && *o == outcome,
            || ((topic.to_string(), outcome), metrics::histogram!(self.duration_metric.clone(), "topic" => topic.to_string(), "outcome" => outcome)),
        )
    }
}

impl ReplaceableProducer {
    pub fn new(config: KafkaConfig) -> rdkafka::error::KafkaResult<Self> {
        let p = std::sync::Arc::new(Watched::new(&config)?);
        let current = std::sync::Arc::new(std::sync::RwLock::new(p));
        spawn_broker_watchdog(config.clone(), std::sync::Arc::downgrade(&current));
        Ok(ReplaceableProducer { config, current, observer: None })
    }

    /// Reports every produce: its latency in the histogram
    /// `sendtrace_<stage>_produce_duration_seconds{topic,outcome}` (`outcome`: `ok`, `transient`,
    /// `permanent`), and its outcome to the `kafka_producer` readiness condition (a transient
    /// failure fails it, a success clears it; see [`ReplaceableProducer::probe`] for an idle producer).
    pub fn observed(mut self, stage: &str, readiness: Readiness) -> Self {
        self.observer = Some(ProduceObserver {
            duration_metric: format!("sendtrace_{stage}_produce_duration_seconds"),
            readiness,
            last_failure_ms: std::sync::atomic::AtomicI64::new(0),
            durations: Default::default(),
        });
        self
    }

    /// Whether the broker answers this producer (a metadata request for `topic`) and no produce
    /// failed transiently within `quiet` (so a probe does not mark ready a producer whose sends
    /// keep failing). Run by [`crate::readiness::spawn_probe`] for the `kafka_producer` condition,
    /// which also clears it once the broker is back while no request comes in.
    pub async fn probe(&self, topic: &str, timeout: Duration, quiet: Duration) -> Result<(), String> {
        use rdkafka::producer::Producer;
        let producer = self.get();
        let t = topic.to_string();
        let metadata = tokio::task::spawn_blocking(move || producer.producer.client().fetch_metadata(Some(&t), timeout).map(|_| ()))
            .await
            .map_err(|e| format!("metadata task failed: {e}"))?;
        metadata.map_err(|e| format!("broker metadata for topic {topic} unavailable: {e}"))?;
        if let Some(o) = &self.observer {
            let ago = crate::clock::now_ms() - o.last_failure_ms.load(std::sync::atomic::Ordering::Relaxed);
            if ago < quiet.as_millis() as i64 {
                return Err(format!("a produce failed {ago} ms ago"));
            }
        }
        Ok(())
    }

    /// Runs [`ReplaceableProducer::probe`] for `topic` every `cfg.probe_interval_ms` into the
    /// `kafka_producer` condition of the readiness given to [`ReplaceableProducer::observed`]
    /// (a produce failure within the last interval keeps it failing). Without it, does nothing.
    pub fn spawn_probe(self: &std::sync::Arc<Self>, topic: String, cfg: ReadinessConfig, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let Some(readiness) = self.observer.as_ref().map(|o| o.readiness.clone()) else { return tokio::spawn(async {}) };
        let this = self.clone();
        spawn_probe(readiness, KAFKA_PRODUCER, cfg, shutdown, move || {
            let (this, topic) = (this.clone(), topic.clone());
            async move { this.probe(&topic, cfg.timeout(), cfg.interval()).await }
        })
    }

    fn observe(&self, topic: &str, started: std::time::Instant, result: &Result<(), SendError>) {
        let Some(o) = &self.observer else { return };
        let outcome = match result {
            Ok(()) => "ok",
            Err(e) if e.permanent => "permanent",
            Err(_) => "transient",
        };
        o.duration(topic, outcome).record(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => o.readiness.clear(KAFKA_PRODUCER),
            // The record's own fault says nothing about the broker.
            Err(e) if e.permanent => {}
            Err(e) => {
                o.last_failure_ms.store(crate::clock::now_ms(), std::sync::atomic::Ordering::Relaxed);
                o.readiness.fail(KAFKA_PRODUCER, format!("produce failed: {}", e.message));
            }
        }
    }

    fn get(&self) -> std::sync::Arc<Watched> {
        // A poisoned lock only means another thread panicked while swapping; the value is valid.
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace(&self, used: &std::sync::Arc<Watched>, error: &str) {
        replace_if_current(&self.config, &self.current, used, "Kafka producer replaced after a failed send.", error);
    }

    /// Sends one record and waits for its acknowledgement (acks=all), at most `timeout`.
    pub async fn send(&self, topic: &str, key: &str, payload: &[u8], timeout: Duration) -> Result<(), String> {
        self.send_checked(topic, key, payload, timeout).await.map_err(|e| e.to_string())
    }

    /// As [`ReplaceableProducer::send`], telling a record the broker will never accept
    /// ([`SendError::permanent`]: retrying it would wedge the caller) from a transient failure.
    pub async fn send_checked(&self, topic: &str, key: &str, payload: &[u8], timeout: Duration) -> Result<(), SendError> {
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let result = match self.enqueue_unobserved(topic, key, payload, deadline, timeout).await {
            Ok((used, delivery)) => self.acknowledgement(used, delivery, deadline, timeout).await,
            Err(e) => Err(e),
        };
        self.observe(topic, started, &result);
        result
    }

    /// The two halves of [`ReplaceableProducer::send_checked`], apart: hands the record to the
    /// producer (its payload is copied into the producer's queue; this waits for room there, at
    /// most `timeout`), then returns the wait for the broker's acknowledgement, which ends
    /// `timeout` after this call at the latest. So a caller can let go of the record's bytes,
    /// and of what it holds only while handling it, before the acknowledgement comes (ingest:
    /// `max_concurrent_requests` against `max_awaiting_broker`). Observed as `send_checked` is.
    pub async fn enqueue(self: &std::sync::Arc<Self>, topic: &str, key: &str, payload: &[u8], timeout: Duration) -> Result<Acknowledgement, SendError> {
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        match self.enqueue_unobserved(topic, key, payload, deadline, timeout).await {
            Ok((used, delivery)) => {
                let (this, topic) = (self.clone(), topic.to_string());
                Ok(Box::pin(async move {
                    let result = this.acknowledgement(used, delivery, deadline, timeout).await;
                    this.observe(&topic, started, &result);
                    result
                }))
            }
            Err(e) => {
                self.observe(topic, started, &Err(e.clone()));
                Err(e)
            }
        }
    }

    /// Queues the record on the current producer, retrying while its queue is full until
    /// `deadline`. Returns the producer used (kept alive until its acknowledgement) and the
    /// acknowledgement's future.
    async fn enqueue_unobserved(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<(std::sync::Arc<Watched>, tokio::sync::oneshot::Receiver<Delivery>), SendError> {
        use rdkafka::error::KafkaError;
        use rdkafka::producer::BaseRecord;
        // A record over the producer's limit is refused here, permanently, before it is queued.
        let max = producer_max_message_bytes(&self.config);
        if !record_fits(key.len(), payload.len(), max) {
            return Err(SendError {
                message: format!("record of {} bytes (+{RECORD_OVERHEAD_BYTES} overhead) exceeds message.max.bytes {max}", key.len() + payload.len()),
                permanent: true,
                too_large: true,
            });
        }
        let producer = self.get();
        loop {
            let (report, delivery) = tokio::sync::oneshot::channel();
            match producer.producer.send(BaseRecord::with_opaque_to(topic, Box::new(report)).key(key).payload(payload)) {
                Ok(()) => return Ok((producer, delivery)),
                // room frees as the broker acknowledges; the queue's bound is the memory bound
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(QUEUE_FULL_RETRY.min(deadline.saturating_duration_since(tokio::time::Instant::now()))).await;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // a full queue is load, not a broken producer: keep it
                    return Err(SendError {
                        message: format!("no room in the producer's queue within {} ms", timeout.as_millis()),
                        permanent: false,
                        too_large: false,
                    });
                }
                Err((e, _)) => {
                    let error = SendError { permanent: is_permanent(&e), too_large: is_too_large(&e), message: e.to_string() };
                    // The record's own fault (permanent) says nothing about the producer: keep it.
                    if !error.permanent {
                        self.replace(&producer, &error.message);
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Waits for a queued record's acknowledgement until `deadline`; a transient failure
    /// replaces the producer that queued it (if it is still the current one).
    async fn acknowledgement(
        &self,
        used: std::sync::Arc<Watched>,
        delivery: tokio::sync::oneshot::Receiver<Delivery>,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<(), SendError> {
        let error = match tokio::time::timeout_at(deadline, delivery).await {
            Ok(Ok(Ok(()))) => return Ok(()),
            Ok(Ok(Err(e))) => SendError { permanent: is_permanent(&e), too_large: is_too_large(&e), message: e.to_string() },
            Ok(Err(_canceled)) => SendError { permanent: false, too_large: false, message: "the producer was dropped before the acknowledgement".into() },
            Err(_) => SendError { permanent: false, too_large: false, message: format!("no acknowledgement from Kafka within {} ms", timeout.as_millis()) },
        };
        // The record's own fault (permanent) says nothing about the producer: keep it.
        if !error.permanent {
            self.replace(&used, &error.message);
        }
        Err(error)
    }

    /// Flushes outstanding records (shutdown).
    pub fn flush(&self, timeout: Duration) {
        use rdkafka::producer::Producer;
        let _ = self.get().producer.flush(timeout);
    }
}

/// Replaces `used` by a new producer if it is still the current one.
fn replace_if_current(config: &KafkaConfig, current: &std::sync::RwLock<std::sync::Arc<Watched>>, used: &std::sync::Arc<Watched>, why: &str, error: &str) {
    let mut guard = current.write().unwrap_or_else(|p| p.into_inner());
    if std::sync::Arc::ptr_eq(&guard, used) {
        match Watched::new(config) {
            Ok(p) => {
                tracing::warn!(message = why, %error);
                *guard = std::sync::Arc::new(p);
            }
            Err(e) => tracing::error!(message = "Could not recreate Kafka producer.", error = %e),
        }
    }
}

/// Every [`BROKER_WATCH_INTERVAL`]: when the current producer has lost every broker (and is older
/// than [`MIN_PRODUCER_AGE_BEFORE_WATCH_REPLACE`]), purges what it holds (its callers see the
/// records fail) and replaces it. Ends with the [`ReplaceableProducer`].
fn spawn_broker_watchdog(config: KafkaConfig, current: std::sync::Weak<std::sync::RwLock<std::sync::Arc<Watched>>>) {
    use rdkafka::producer::{Producer, PurgeConfig};
    let spawned = std::thread::Builder::new().name("kafka-broker-watch".into()).spawn(move || loop {
        std::thread::sleep(BROKER_WATCH_INTERVAL);
        let Some(current) = current.upgrade() else { return };
        let used = current.read().unwrap_or_else(|p| p.into_inner()).clone();
        if used.watch.down.load(std::sync::atomic::Ordering::SeqCst) && used.created.elapsed() >= MIN_PRODUCER_AGE_BEFORE_WATCH_REPLACE {
            replace_if_current(&config, &current, &used, "Kafka producer replaced: every broker connection was lost.", "all brokers down");
            used.producer.purge(PurgeConfig::default().queue().inflight());
        }
    });
    if let Err(e) = spawned {
        tracing::error!(message = "Could not start the Kafka producer's broker watch.", error = %e);
    }
}

/// A failed produce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    /// The record itself is refused (too large, malformed): sending it again can never succeed.
    pub permanent: bool,
    /// Refused for its size (ingest answers 413): a permanent error.
    pub too_large: bool,
}

/// Bytes a record needs beyond its key and value (record batch header, record framing);
/// generous for one record per batch.
pub const RECORD_OVERHEAD_BYTES: usize = 512;

/// Whether a record of this key and value fits a producer limit of `max` bytes.
pub fn record_fits(key_len: usize, value_len: usize, max: usize) -> bool {
    key_len.saturating_add(value_len).saturating_add(RECORD_OVERHEAD_BYTES) <= max
}

fn is_too_large(e: &rdkafka::error::KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge | RDKafkaErrorCode::InvalidMessageSize)
    ) && is_permanent(e)
}

/// Errors about the record, not the broker's state: the same record always fails again.
fn is_permanent(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::KafkaError;
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::MessageBatchTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::BadMessage
        )
    ) && matches!(e, KafkaError::MessageProduction(_))
}

/// The largest record value this service's producer sends: librdkafka's `message.max.bytes`
/// (its default, 1 000 000, unless `extra` sets it). A stage checks its own bounds against it at start.
pub fn producer_max_message_bytes(config: &KafkaConfig) -> usize {
    config.extra.get("message.max.bytes").and_then(|v| v.trim().parse().ok()).unwrap_or(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::KafkaError;

    /// Idempotent unless configured otherwise; without idempotence at most 5 requests in flight
    /// per connection (librdkafka's default there is 1,000,000), and acks=all either way.
    #[test]
    fn producers_are_idempotent_unless_configured_otherwise() {
        let get = |c: &KafkaConfig, k: &str| c.producer_config().get(k).map(str::to_string);
        let mut c = KafkaConfig::default();
        assert_eq!(get(&c, "enable.idempotence").as_deref(), Some("true"));
        assert_eq!(get(&c, "max.in.flight.requests.per.connection"), None);
        c.idempotence = Some(false);
        assert_eq!(get(&c, "enable.idempotence").as_deref(), Some("false"));
        assert_eq!(get(&c, "max.in.flight.requests.per.connection").as_deref(), Some("5"));
        for c in [KafkaConfig::default(), c] {
            assert_eq!(get(&c, "acks").as_deref(), Some("all"));
            drop(c.producer().expect("librdkafka accepts the settings"));
        }
    }

    /// Consumers wait at most `fetch_wait_max_ms` per fetch (librdkafka's 500 unless set; the
    /// devstack and the tests set 100 for tansu), and producers are not given the consumer
    /// property.
    #[tokio::test]
    async fn consumers_wait_per_fetch_as_configured() {
        let mut c = KafkaConfig::default();
        assert_eq!(c.consumer_settings("g").get("fetch.wait.max.ms"), Some("500"));
        c.fetch_wait_max_ms = 100;
        assert_eq!(c.consumer_settings("g").get("fetch.wait.max.ms"), Some("100"));
        assert_eq!(c.producer_config().get("fetch.wait.max.ms"), None);
        drop(c.consumer("g").expect("librdkafka accepts the settings"));
    }

    /// CPU time (ns, from `schedstat`) of this process's threads named `name`.
    fn threads_cpu_ns(name: &str) -> u64 {
        let mut total = 0;
        for task in std::fs::read_dir("/proc/self/task").expect("Linux /proc").flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == name {
                let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
                total += stat.split(' ').next().and_then(|ns| ns.parse::<u64>().ok()).unwrap_or(0);
            }
        }
        total
    }

    /// The producer's polling thread waits for delivery reports without spinning: idle for 3 s
    /// it spends well under a millisecond a second. (rdkafka's `FutureProducer`, polling in
    /// 100 ms calls that end in a busy millisecond, spends ~10 ms a second: printed for
    /// comparison; BENCHMARKS.md §10.)
    #[test]
    fn an_idle_producer_does_not_spin() {
        // a broker that takes connections and never answers: the producer stays the same one
        // (no broker is down for the watchdog to replace it), with nothing to report
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let config = KafkaConfig { brokers: silent.local_addr().unwrap().to_string(), ..KafkaConfig::default() };
        let ours = ReplaceableProducer::new(config.clone()).expect("a producer");
        let theirs = config.producer().expect("rdkafka's FutureProducer");
        let used = ours.get();
        std::thread::sleep(Duration::from_millis(300));
        let (ours_before, theirs_before) = (threads_cpu_ns("kafka-prod-poll"), threads_cpu_ns("producer pollin"));
        std::thread::sleep(Duration::from_secs(3));
        let ours_ms = threads_cpu_ns("kafka-prod-poll").saturating_sub(ours_before) as f64 / 1e6;
        let theirs_ms = threads_cpu_ns("producer pollin").saturating_sub(theirs_before) as f64 / 1e6;
        println!("idle for 3 s, the polling thread's CPU: ours {ours_ms:.2} ms, rdkafka's FutureProducer {theirs_ms:.2} ms");
        assert!(std::sync::Arc::ptr_eq(&used, &ours.get()), "the producer was replaced: not one thread measured");
        assert!(ours_before > 0, "the polling thread is found by its name");
        assert!(ours_ms < 3.0, "the producer's polling thread spent {ours_ms:.2} ms of CPU in 3 idle seconds");
        drop((used, ours, theirs));
    }

    #[test]
    fn record_errors_are_permanent_broker_errors_are_not() {
        assert!(is_permanent(&KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)));
        assert!(is_permanent(&KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord)));
        assert!(!is_permanent(&KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)));
        assert!(!is_permanent(&KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas)));
        assert!(!is_permanent(&KafkaError::MessageProduction(RDKafkaErrorCode::BrokerTransportFailure)));
    }

    /// A record over the producer's limit is refused before it is queued, permanently (no
    /// broker needed: nothing listens on the configured address).
    #[tokio::test]
    async fn oversized_record_is_refused_without_sending() {
        let mut config = KafkaConfig { brokers: "127.0.0.1:1".into(), ..Default::default() };
        config.extra.insert("message.max.bytes".into(), "10000".into());
        let producer = ReplaceableProducer::new(config).unwrap();
        let e = producer.send_checked("t", "k", &[0u8; 10_000], Duration::from_millis(200)).await.unwrap_err();
        assert!(e.permanent && e.too_large, "{e:?}");
        assert!(record_fits(1, 10_000 - RECORD_OVERHEAD_BYTES - 1, 10_000));
        assert!(!record_fits(1, 10_000 - RECORD_OVERHEAD_BYTES, 10_000));
    }

    /// The producer's queue bound is a limit of its own: with room for one record (and no
    /// broker to drain it), a second record waits for room until its timeout, then fails
    /// transiently, "no room" in its message, and the producer is kept (a full queue is load,
    /// not a broken producer). The first record stays queued: its acknowledgement is pending.
    #[tokio::test]
    async fn a_full_queue_makes_enqueue_wait_then_fail_and_keeps_the_producer() {
        // a "broker" that takes connections and never answers: no record leaves the queue, and
        // the watchdog (all brokers down) has nothing to see
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut config = KafkaConfig { brokers: silent.local_addr().unwrap().to_string(), message_timeout_ms: 60_000, ..Default::default() };
        config.extra.insert("queue.buffering.max.messages".into(), "1".into());
        let producer = std::sync::Arc::new(ReplaceableProducer::new(config).unwrap());
        let used = producer.get();
        let first = producer.enqueue("t", "k", b"one", Duration::from_secs(30)).await.expect("room for one");
        let started = std::time::Instant::now();
        let e = producer.enqueue("t", "k", b"two", Duration::from_millis(300)).await.err().expect("no room for a second");
        assert!(!e.permanent && e.message.contains("no room in the producer's queue within 300 ms"), "{e:?}");
        assert!(started.elapsed() >= Duration::from_millis(300), "waited for room until the timeout: {:?}", started.elapsed());
        assert!(std::sync::Arc::ptr_eq(&used, &producer.get()), "the producer was replaced for a full queue");
        let pending = tokio::time::timeout(Duration::from_millis(100), first).await;
        assert!(pending.is_err(), "the first record's acknowledgement cannot have come: {pending:?}");
    }

    /// With no broker: a send fails transiently, which fails `kafka_producer` and lands in the
    /// latency histogram; the probe fails too (metadata unavailable).
    #[tokio::test]
    async fn an_observed_producer_reports_failures_to_readiness() {
        let handle = crate::telemetry::metrics_handle();
        let readiness = Readiness::default();
        let config = KafkaConfig { brokers: "127.0.0.1:1".into(), message_timeout_ms: 300, ..Default::default() };
        let producer = ReplaceableProducer::new(config).unwrap().observed("unit", readiness.clone());
        let e = producer.send_checked("t", "k", b"v", Duration::from_millis(500)).await.unwrap_err();
        assert!(!e.permanent, "{e:?}");
        assert!(readiness.is_failing(KAFKA_PRODUCER));
        let probe = producer.probe("t", Duration::from_millis(300), Duration::ZERO).await;
        assert!(probe.unwrap_err().contains("metadata"));
        let rendered = handle.render();
        assert!(rendered.contains("sendtrace_unit_produce_duration_seconds_count{topic=\"t\",outcome=\"transient\"} 1"), "{rendered}");
    }

    /// A producer that loses every broker (here: never had one) is replaced by the watchdog once
    /// it is older than the minimum age, without any send.
    #[tokio::test]
    async fn a_producer_without_brokers_is_replaced_by_the_watch() {
        let config = KafkaConfig { brokers: "127.0.0.1:1".into(), ..Default::default() };
        let producer = ReplaceableProducer::new(config).unwrap();
        let first = producer.get();
        let deadline = std::time::Instant::now() + MIN_PRODUCER_AGE_BEFORE_WATCH_REPLACE + Duration::from_secs(10);
        while std::sync::Arc::ptr_eq(&first, &producer.get()) {
            assert!(std::time::Instant::now() < deadline, "not replaced; all brokers down seen: {}", first.watch.down.load(std::sync::atomic::Ordering::SeqCst));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(first.created.elapsed() >= MIN_PRODUCER_AGE_BEFORE_WATCH_REPLACE, "not replaced before its minimum age");
    }

    #[test]
    fn max_message_bytes_follows_the_producer_setting() {
        let mut c = KafkaConfig::default();
        assert_eq!(producer_max_message_bytes(&c), 1_000_000);
        c.extra.insert("message.max.bytes".into(), "2000000".into());
        assert_eq!(producer_max_message_bytes(&c), 2_000_000);
    }
}
