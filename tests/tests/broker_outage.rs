//! Injected failure: the Kafka broker dies (SIGKILL) under ingest.
//! What must hold: ingest answers 503 within a bounded time while the broker is
//! down (so the provider retries), 200 again once it is back, and every record
//! answered 200 is on the topic, whole, after the broker restarted from its files.

use e2e::stack::free_port;
use e2e::{kafka::read_all, ses, wait_until, Pipeline, Stack};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tansu_bin() -> PathBuf {
    std::env::var("SENDTRACE_TANSU").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/sendtrace/bin/tansu")
    })
}

/// A private broker with sqlite storage in `dir`, killed on drop.
struct Broker(std::process::Child);

impl Broker {
    fn start(port: u16, dir: &std::path::Path) -> Broker {
        let child = Command::new(tansu_bin())
            .current_dir(dir)
            .args(["broker", "--listener-url", &format!("tcp://127.0.0.1:{port}"), "--advertised-listener-url", &format!("tcp://127.0.0.1:{port}"), "--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::null())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(Stack::from_env().log_dir.join("outage-tansu.log")).map(Stdio::from).unwrap_or_else(|_| Stdio::null()))
            .spawn()
            .expect("tansu installed (devstack/install-tansu.sh)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "broker did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Broker(child)
    }
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_answers_503_while_broker_is_down_and_200_once_back() {
    let base = Stack::from_env();
    let dir = tempfile::Builder::new().prefix("outage-broker").tempdir().unwrap();
    let port = free_port();
    let mut broker = Broker::start(port, dir.path());
    let stack = Stack { brokers: format!("127.0.0.1:{port}"), ..base };
    let mut p = Pipeline::new(&stack, "outage").await;
    p.start_ingest().await;

    let before = ses::body("event_delivery.json", "before", None);
    assert_eq!(p.post_sns("acme", &before).await.0, 200);

    broker.kill();
    let during = ses::body("event_delivery.json", "during", None);
    let t0 = Instant::now();
    let (status, text) = p.post_sns("acme", &during).await;
    let took = t0.elapsed();
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("not_stored"), "{text}");
    assert!(took < Duration::from_secs(15), "503 must come within a bounded time, took {took:?}");

    let mut broker = Broker::start(port, dir.path());
    let after = ses::body("event_delivery.json", "after", None);
    wait_until("ingest stores again after the broker is back", Duration::from_secs(90), || async {
        (p.post_sns("acme", &after).await.0 == 200).then_some(())
    })
    .await;

    let records = read_all(&stack.brokers, &p.raw_topic, 4, Duration::from_secs(2));
    let bodies: Vec<Vec<u8>> = records
        .iter()
        .map(|(_, v)| schemas::avro::decode_raw(v).expect("every stored record is a whole envelope").body)
        .collect();
    assert!(bodies.contains(&before), "stored before the outage, kept across the broker's SIGKILL");
    assert!(bodies.contains(&after), "stored after recovery");
    assert!(!bodies.contains(&during), "the request answered 503 was not stored behind the caller's back");
    if let Some(mut s) = p.ingest.take() {
        s.stop();
    }
    broker.kill();
}
