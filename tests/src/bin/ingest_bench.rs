//! `ingest-bench`: the edge's throughput and latency, against its own limits, in one run
//! (issue 14, goal 2). On a running broker it measures, one after the other on this machine:
//!
//! 1. **broker**: a native rdkafka producer with ingest's producer settings (acks=all, not
//!    idempotent unless `--idempotence true`) storing raw envelopes of the same size,
//!    `--concurrency` in flight;
//! 2. **bare**: a bare axum server answering 200 to the same POSTs (the HTTP stack's ceiling);
//! 3. **ingest**: the real ingest app (routes, limits, SNS signature checked against the
//!    committed test certificate given through its `VerifyContext`, raw envelope, Kafka with
//!    acks=all) serving signed SES notifications;
//! 4. **ingest at half rate**: an open-loop run at half of (3)'s rate, latency measured from
//!    each request's scheduled time (queueing included), for the p99 goal (< 20 ms);
//! 5. **broker at half rate**: (1)'s producer, open loop at the same rate: the broker's own
//!    tail at that rate, so what ingest adds to it is the difference.
//!
//! Prints req/s, p50/p99 and the ratios ingest/broker (goal ≥ 0.5) and ingest/bare. The load
//! client runs in the same process and shares the machine's cores, like wrk or oha on it would.
//!
//!   ingest-bench --brokers 127.0.0.1:9092 --seconds 10 --concurrency 32

use clap::Parser;
use e2e::observe::{cpu_since, cpu_time, own_cpu_time};
use normalizer::providers::{ses, TenantCredentials, VerifyContext};
use rdkafka::producer::FutureRecord;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "ingest-bench")]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Requests (or records) in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Records in flight for a second broker-alone phase (default: `--concurrency`, the same as the
    /// HTTP phases; a larger value shows the broker's own ceiling).
    #[arg(long)]
    broker_concurrency: Option<usize>,
    /// Distinct signed notifications to cycle through.
    #[arg(long, default_value_t = 256)]
    bodies: usize,
    /// Topic for the raw records (created if missing).
    #[arg(long, default_value = "sendtrace.bench.raw")]
    topic: String,
    /// The producers' `linger.ms` (ingest's and the broker-alone phase's); default: ingest's.
    #[arg(long)]
    linger_ms: Option<u32>,
    /// The producers' `enable.idempotence` (ingest's and the broker-alone phase's); default: ingest's (false).
    #[arg(long)]
    idempotence: Option<bool>,
    /// Run only this phase (`broker`: the broker's own produce rate, as `scripts/load.sh` uses).
    #[arg(long, value_parser = ["broker"])]
    only: Option<String>,
    /// The broker's process id (on this machine): prints its CPU time per record in the
    /// broker-alone phase, the stand-in's own cost beside the client's.
    #[arg(long)]
    broker_pid: Option<u32>,
}

const TOPIC_ARN: &str = "arn:aws:sns:us-east-1:123456789012:ses-events";

struct Figures {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    /// CPU time of this whole process during the phase (the load client's included).
    cpu: Duration,
}

impl Figures {
    /// The figures of a phase from its tasks' (ok, errors, latencies in µs), timed from `started`.
    async fn gather(tasks: Vec<tokio::task::JoinHandle<(usize, usize, Vec<u64>)>>, started: Instant, cpu_started: Duration) -> Figures {
        let mut f = Figures { requests: 0, errors: 0, elapsed: Duration::ZERO, latencies_us: Vec::new(), cpu: Duration::ZERO };
        for t in tasks {
            let (ok, errors, lat) = t.await.expect("a load task");
            f.requests += ok;
            f.errors += errors;
            f.latencies_us.extend(lat);
        }
        f.elapsed = started.elapsed();
        f.cpu = own_cpu_time().saturating_sub(cpu_started);
        f.latencies_us.sort_unstable();
        f
    }

    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
    fn print(&self, name: &str) {
        println!(
            "{name:<22} {:>9.0} /s   p50 {:>7.2} ms   p99 {:>7.2} ms   CPU {:>5.0} µs/req   ({} ok, {} errors, {:.1} s)",
            self.rate(),
            self.pct(0.50),
            self.pct(0.99),
            self.cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64,
            self.requests,
            self.errors,
            self.elapsed.as_secs_f64()
        );
    }
}

/// One request to post: (headers, body).
type Request = (Vec<(String, String)>, Vec<u8>);

/// Signed SES notifications (distinct MessageIds), as SNS posts them.
fn signed_bodies(n: usize) -> Vec<Request> {
    let fixture = include_bytes!("../../../normalizer/src/providers/ses/fixtures/event_delivery.json");
    let base: serde_json::Value = serde_json::from_slice(fixture).expect("fixture");
    (0..n)
        .map(|i| {
            let mut v = base.clone();
            v["MessageId"] = format!("bench-{i:06}-{}", uuid::Uuid::new_v4()).into();
            let body = ses::samples::sign_sns(&serde_json::to_vec(&v).unwrap());
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let headers = vec![
                ("content-type".to_string(), "text/plain; charset=UTF-8".to_string()),
                ("x-amz-sns-message-type".to_string(), v["Type"].as_str().unwrap_or_default().to_string()),
                ("x-amz-sns-message-id".to_string(), v["MessageId"].as_str().unwrap_or_default().to_string()),
                ("x-amz-sns-topic-arn".to_string(), v["TopicArn"].as_str().unwrap_or_default().to_string()),
            ];
            (headers, body)
        })
        .collect()
}

/// When each request of one of `concurrency` load tasks is due: back to back (closed loop,
/// `rate` None), or every `concurrency / rate` seconds from a start staggered by task (open
/// loop at `rate` in all, whatever the answers).
struct Pace {
    interval: Option<Duration>,
    next: Instant,
    end: Instant,
}

impl Pace {
    fn new(started: Instant, end: Instant, rate: Option<f64>, concurrency: usize, task: usize) -> Pace {
        let interval = rate.map(|r| Duration::from_secs_f64(concurrency as f64 / r));
        let next = started + interval.map_or(Duration::ZERO, |iv| iv.mul_f64(task as f64 / concurrency as f64));
        Pace { interval, next, end }
    }

    /// Waits for the next request's turn; its scheduled time (latency counts from it), or
    /// `None` once the phase has ended.
    async fn next(&mut self) -> Option<Instant> {
        let due = match self.interval {
            Some(iv) => {
                tokio::time::sleep_until(self.next.into()).await;
                self.next += iv;
                self.next - iv
            }
            None => Instant::now(),
        };
        (due < self.end).then_some(due)
    }
}

/// Closed loop (`rate` None: as fast as `concurrency` allows) or open loop at `rate` req/s
/// (latency from each request's scheduled time).
async fn load(url: &str, bodies: Arc<Vec<Request>>, concurrency: usize, seconds: u64, rate: Option<f64>) -> Figures {
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
    let (started, cpu_started) = (Instant::now(), own_cpu_time());
    let end = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (client, bodies, url) = (client.clone(), bodies.clone(), url.to_string());
            tokio::spawn(async move {
                let (mut ok, mut errors, mut lat) = (0usize, 0usize, Vec::new());
                let mut pace = Pace::new(started, end, rate, concurrency, t);
                let mut i = t;
                while let Some(scheduled) = pace.next().await {
                    let (headers, body) = &bodies[i % bodies.len()];
                    i += concurrency;
                    let mut req = client.post(&url).body(body.clone());
                    for (k, v) in headers {
                        req = req.header(k, v);
                    }
                    match req.send().await {
                        Ok(r) if r.status().is_success() => {
                            ok += 1;
                            lat.push(scheduled.elapsed().as_micros() as u64);
                        }
                        _ => errors += 1,
                    }
                }
                (ok, errors, lat)
            })
        })
        .collect();
    Figures::gather(tasks, started, cpu_started).await
}

/// The broker alone: ingest's producer settings, records of `size` bytes, `concurrency` in flight;
/// closed loop (`rate` None) or open loop at `rate` records/s, as [`load`].
async fn broker(kafka: &runtime::kafka::KafkaConfig, topic: &str, size: usize, concurrency: usize, seconds: u64, rate: Option<f64>) -> Figures {
    let producer = kafka.producer().expect("producer");
    let payload = vec![b'x'; size];
    let (started, cpu_started) = (Instant::now(), own_cpu_time());
    let end = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (producer, payload, topic) = (producer.clone(), payload.clone(), topic.to_string());
            tokio::spawn(async move {
                let (mut ok, mut errors, mut lat, mut i) = (0usize, 0usize, Vec::new(), t);
                let mut pace = Pace::new(started, end, rate, concurrency, t);
                while let Some(scheduled) = pace.next().await {
                    let key = format!("bench/{i}");
                    i += concurrency;
                    match producer.send(FutureRecord::to(&topic).key(&key).payload(&payload), Duration::from_secs(10)).await {
                        Ok(_) => {
                            ok += 1;
                            lat.push(scheduled.elapsed().as_micros() as u64);
                        }
                        Err(_) => errors += 1,
                    }
                }
                (ok, errors, lat)
            })
        })
        .collect();
    Figures::gather(tasks, started, cpu_started).await
}

async fn serve(router: axum::Router, cfg: &ingest::config::Config) -> (String, tokio_util::sync::CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let (cfg, s) = (cfg.clone(), stop.clone());
    tokio::spawn(async move { ingest::server::serve(listener, router, &cfg, s).await });
    (format!("http://{addr}"), stop)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut cfg = ingest::config::Config::default();
    cfg.kafka.brokers = cli.brokers.clone();
    if let Some(linger) = cli.linger_ms {
        cfg.kafka.linger_ms = linger;
    }
    cfg.kafka.idempotence = cli.idempotence;
    // the producer ingest makes (`KafkaSink::new` applies the same), for the native baseline
    let native = ingest::kafka::producer_settings(cfg.kafka.clone(), cfg.queue_max_kbytes);
    cfg.raw_topic = cli.topic.clone();
    cfg.max_concurrent_requests = cfg.max_concurrent_requests.max(cli.concurrency * 2);
    let ses = ses::Credentials { topic_arn: vec![TOPIC_ARN.into()], accept_any_topic: None, verify_signature: Some(true) };
    cfg.tenants.insert("bench".into(), TenantCredentials { ses: Some(ses), ..Default::default() });
    cfg.validate().map_err(anyhow::Error::msg)?;
    cfg.kafka.ensure_topics(&[&cli.topic], &[]).await?;

    println!("preparing {} signed SES notifications …", cli.bodies);
    let bodies = Arc::new(signed_bodies(cli.bodies));
    let envelope_bytes = bodies[0].1.len() + 400;
    println!(
        "phase               throughput        latency (each phase {} s, {} in flight; producers: linger.ms {}, {}idempotent)",
        cli.seconds,
        cli.concurrency,
        native.linger_ms,
        if native.is_idempotent() { "" } else { "not " }
    );

    let broker_cpu = cli.broker_pid.and_then(cpu_time);
    let broker_f = broker(&native, &cli.topic, envelope_bytes, cli.concurrency, cli.seconds, None).await;
    broker_f.print("broker (native, acks=all)");
    if let Some(spent) = cli.broker_pid.and_then(|pid| cpu_since(pid, broker_cpu)) {
        println!(
            "  the broker process itself: {:.1} CPU-s, {:.0} µs/record ({:.2} cores busy)",
            spent.as_secs_f64(),
            spent.as_secs_f64() * 1e6 / broker_f.requests.max(1) as f64,
            spent.as_secs_f64() / broker_f.elapsed.as_secs_f64()
        );
    }
    if cli.only.is_some() {
        anyhow::ensure!(broker_f.errors == 0, "the broker refused records");
        return Ok(());
    }
    let broker_max = match cli.broker_concurrency.filter(|c| *c != cli.concurrency) {
        Some(c) => {
            let f = broker(&native, &cli.topic, envelope_bytes, c, cli.seconds, None).await;
            f.print(&format!("broker, {c} in flight"));
            Some(f)
        }
        None => None,
    };

    let bare = axum::Router::new().route("/webhooks/ses/bench", axum::routing::post(|_body: bytes::Bytes| async { "ok" }));
    let (bare_url, bare_stop) = serve(bare, &cfg).await;
    let bare_f = load(&format!("{bare_url}/webhooks/ses/bench"), bodies.clone(), cli.concurrency, cli.seconds, None).await;
    bare_stop.cancel();
    bare_f.print("bare axum");

    let cert = include_bytes!("../../../normalizer/src/providers/ses/fixtures/test_signing_cert.pem").to_vec();
    let verify = VerifyContext::new(cfg.limits.clone(), Arc::new(move |_url: &str| -> Result<Vec<u8>, String> { Ok(cert.clone()) }));
    let health = runtime::telemetry::Health::default();
    let sink = Arc::new(ingest::kafka::KafkaSink::new(cfg.kafka.clone(), cfg.queue_max_kbytes, cfg.raw_topic.clone(), health.readiness())?);
    let state = ingest::routes::AppState { config: Arc::new(cfg.clone()), sink: Arc::new(sink.clone()), verify: Arc::new(verify) };
    health.set_ready(true);
    let (ingest_url, ingest_stop) = serve(ingest::routes::app(state, health), &cfg).await;
    let url = format!("{ingest_url}/webhooks/ses/bench");
    let ingest_f = load(&url, bodies.clone(), cli.concurrency, cli.seconds, None).await;
    ingest_f.print("ingest (SNS signed)");
    let half = (ingest_f.rate() / 2.0).max(1.0);
    let half_f = load(&url, bodies.clone(), cli.concurrency, cli.seconds, Some(half)).await;
    half_f.print(&format!("ingest @ {half:.0}/s open"));
    ingest_stop.cancel();
    // the same rate, open loop, straight to the broker: the stand-in's own tail at that rate
    let broker_half = broker(&native, &cli.topic, envelope_bytes, cli.concurrency, cli.seconds, Some(half)).await;
    broker_half.print(&format!("broker @ {half:.0}/s open"));

    println!();
    println!("ingest / broker = {:.3}   (goal >= 0.5; same in-flight count)", ingest_f.rate() / broker_f.rate());
    if let Some(max) = &broker_max {
        println!("ingest / broker at its own ceiling = {:.3}", ingest_f.rate() / max.rate());
    }
    println!("ingest / bare   = {:.3}", ingest_f.rate() / bare_f.rate());
    println!("p99 at half rate = {:.2} ms   (goal < 20 ms)", half_f.pct(0.99));
    println!(
        "  the broker alone at that rate: p99 {:.2} ms; ingest adds {:+.2} ms at p50, {:+.2} ms at p99",
        broker_half.pct(0.99),
        half_f.pct(0.50) - broker_half.pct(0.50),
        half_f.pct(0.99) - broker_half.pct(0.99)
    );
    anyhow::ensure!(ingest_f.errors == 0 && half_f.errors == 0, "ingest answered errors");
    anyhow::ensure!(broker_half.errors == 0, "the broker refused records");
    Ok(())
}
