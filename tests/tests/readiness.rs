//! Readiness transitions on the real stack: the broker (a private tansu, SIGKILLed and started
//! again on the same storage) and the ClickHouse endpoint (behind a proxy taken down) go away
//! and come back under the four services.
//!
//! What must hold: within a bound, `/readyz` answers 503 naming the failing condition on every
//! service that needs what went away (broker: ingest `kafka_producer`, normalizer and aggregator
//! `kafka_consumer`; ClickHouse: aggregator and api `clickhouse`), and 200 again within a bound
//! after it is back; the others stay ready (the api does not need the broker to read);
//! `/healthz` answers 200 on every service at every poll; and the pipeline still carries a
//! webhook to ClickHouse afterwards.

use e2e::broker::Broker;
use e2e::proxy::Proxy;
use e2e::stack::free_port;
use e2e::{ses, wait_until, Pipeline, Stack};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const KEYS: &str = r#"
[tenants.acme.keys.dash]
key = "acme-key"
scopes = ["stats"]
"#;

/// Longest time from an outage to `/readyz` 503 (probe every 2 s, each at most 2 s, by default).
const NOT_READY_WITHIN: Duration = Duration::from_secs(30);
/// Longest time from recovery to `/readyz` 200 (librdkafka reconnects with backoff up to 10 s).
const READY_AGAIN_WITHIN: Duration = Duration::from_secs(60);

struct Endpoints {
    /// Service name → (`/readyz` URL, `/healthz` URL).
    urls: BTreeMap<&'static str, (String, String)>,
    client: reqwest::Client,
}

/// One poll of every service: readiness status and failing condition names.
type Poll = BTreeMap<&'static str, (u16, Vec<String>)>;

impl Endpoints {
    /// Polls every `/readyz` and asserts every `/healthz` is 200.
    async fn poll(&self) -> Poll {
        let mut out = BTreeMap::new();
        for (name, (ready, health)) in &self.urls {
            let h = self.client.get(health).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            assert_eq!(h, 200, "{name} /healthz must stay 200 (alive-only)");
            let (status, failing) = match self.client.get(ready).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    assert_eq!(body["ready"].as_bool(), Some(status == 200), "{name} /readyz body: {body}");
                    let failing = body["failing"].as_array().cloned().unwrap_or_default();
                    for f in &failing {
                        assert!(f["reason"].as_str().is_some_and(|r| !r.is_empty()), "{name}: every failing condition has a reason: {body}");
                    }
                    (status, failing.iter().filter_map(|f| f["condition"].as_str().map(String::from)).collect())
                }
                Err(_) => (0, Vec::new()),
            };
            out.insert(*name, (status, failing));
        }
        out
    }

    /// Polls until `want` holds for every service (name → the condition that must fail, or None
    /// for ready); returns how long it took. Panics after `within`.
    async fn until(&self, what: &str, within: Duration, want: &[(&str, Option<&str>)]) -> Duration {
        let t0 = Instant::now();
        loop {
            let poll = self.poll().await;
            let ok = want.iter().all(|(name, cond)| match (poll.get(name), cond) {
                (Some((200, f)), None) => f.is_empty(),
                (Some((503, f)), Some(c)) => f.iter().any(|x| x == c),
                _ => false,
            });
            if ok {
                return t0.elapsed();
            }
            assert!(t0.elapsed() < within, "{what}: not reached within {within:?}; last poll {poll:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_follows_the_broker_and_clickhouse_and_healthz_stays_alive() {
    let base = Stack::from_env();
    let dir = tempfile::Builder::new().prefix("readiness-broker").tempdir().unwrap();
    let mut broker = Broker::start(free_port(), dir.path(), "readiness-tansu");
    let stack = Stack { brokers: format!("127.0.0.1:{}", broker.port), ..base };
    let mut p = Pipeline::new(&stack, "readiness").await;
    // The aggregator and the api reach ClickHouse through a proxy the test can take down
    // (migrations ran directly).
    let proxy = Proxy::start(stack.clickhouse_url.trim_start_matches("http://").to_string()).await;
    p.stack.clickhouse_url = format!("http://127.0.0.1:{}", proxy.port);
    p.start_all().await;
    let (api_url, _api) = p.start_api(KEYS).await;
    let (n, a) = p.admin_ports();
    let admin = |port: u16| (format!("http://127.0.0.1:{port}/readyz"), format!("http://127.0.0.1:{port}/healthz"));
    let urls = BTreeMap::from([
        ("ingest", admin(p.ingest_admin_port())),
        ("normalizer", admin(n)),
        ("aggregator", admin(a)),
        ("api", (format!("{api_url}/readyz"), format!("{api_url}/healthz"))),
    ]);
    let e = Endpoints { urls, client: reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap() };
    let all_ready = [("ingest", None), ("normalizer", None), ("aggregator", None), ("api", None)];
    e.until("all ready at start", READY_AGAIN_WITHIN, &all_ready).await;

    // The broker goes away: the three stages that need it are not ready; the api still is.
    broker.kill();
    let took = e
        .until(
            "not ready without the broker",
            NOT_READY_WITHIN,
            &[("ingest", Some("kafka_producer")), ("normalizer", Some("kafka_consumer")), ("aggregator", Some("kafka_consumer")), ("api", None)],
        )
        .await;
    println!("broker down: not ready after {took:?}");
    let (status, text) = p.post_sns("acme", &ses::body("event_delivery.json", "during-broker-outage", None)).await;
    assert_eq!(status, 503, "ingest refuses while the broker is down: {text}");

    broker.restart();
    let took = e.until("ready again with the broker back", READY_AGAIN_WITHIN, &all_ready).await;
    println!("broker back: ready after {took:?}");

    // ClickHouse goes away: the aggregator and the api are not ready; ingest and the normalizer are.
    proxy.set_up(false);
    let took = e
        .until(
            "not ready without ClickHouse",
            NOT_READY_WITHIN,
            &[("ingest", None), ("normalizer", None), ("aggregator", Some("clickhouse")), ("api", Some("clickhouse"))],
        )
        .await;
    println!("ClickHouse down: not ready after {took:?}");
    proxy.set_up(true);
    let took = e.until("ready again with ClickHouse back", READY_AGAIN_WITHIN, &all_ready).await;
    println!("ClickHouse back: ready after {took:?}");

    // After both outages the pipeline still carries a webhook to ClickHouse.
    let body = ses::body("event_delivery.json", "after-outages", None);
    wait_until("ingest stores after the outages", Duration::from_secs(60), || async { (p.post_sns("acme", &body).await.0 == 200).then_some(()) }).await;
    wait_until("the event reaches ClickHouse", Duration::from_secs(90), || async {
        (p.number("SELECT count() FROM events FINAL WHERE provider_message_id = 'after-outages'").await >= 1).then_some(())
    })
    .await;
}
