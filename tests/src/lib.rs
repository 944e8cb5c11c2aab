//! Harness for end-to-end tests on the real local stack (tansu + the ClickHouse
//! endpoint, started by `devstack/up.sh --infra-only`, or by `scripts/test.sh`).
//!
//! Each test gets its own topics, consumer groups, ClickHouse database and ports,
//! and runs the three service binaries as child processes (killed on drop).

pub mod analysts;
pub mod broker;
pub mod failures;
pub mod funnels;
pub mod latency;
pub mod generate;
pub mod kafka;
pub mod load;
pub mod observe;
pub mod proxy;
pub mod samples;
pub mod ses;
pub mod stack;

pub use stack::{Pipeline, Service, Stack};

use std::time::{Duration, Instant};

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A fixture file from a provider folder: `fixture("ses", "event_delivery.json")`.
pub fn fixture(provider: &str, name: &str) -> Vec<u8> {
    let p = format!("{}/../normalizer/src/providers/{provider}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}
