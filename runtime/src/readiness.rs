//! Readiness: may this instance take work now? A set of named conditions, each failed and
//! cleared by the part of the service that watches it (a probe of the broker, of ClickHouse,
//! the outcome of a produce). `/readyz` answers 200 when none fails, else 503 with the failing
//! ones and their reasons. `/healthz` (the process is alive) does not look at them: a service
//! waiting out an outage is healthy, just not ready.

use crate::shutdown::CancellationToken;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The broker does not answer this service's consumer (metadata, offsets, watermarks).
pub const KAFKA_CONSUMER: &str = "kafka_consumer";
/// The broker does not answer this service's producer, or its last produce failed transiently.
pub const KAFKA_PRODUCER: &str = "kafka_producer";
/// The ClickHouse HTTP endpoint does not answer `SELECT 1`.
pub const CLICKHOUSE: &str = "clickhouse";
/// The work loop has not started yet, or is stopping.
pub const NOT_RUNNING: &str = "not_running";

/// How often readiness probes run and how long one may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadinessConfig {
    /// Time between two probes of the broker and ClickHouse (also how often consumer lag is measured).
    pub probe_interval_ms: u64,
    /// Longest a probe may take; a probe that takes longer fails its condition.
    pub probe_timeout_ms: u64,
}

impl Default for ReadinessConfig {
    fn default() -> Self {
        ReadinessConfig { probe_interval_ms: 2000, probe_timeout_ms: 2000 }
    }
}

impl ReadinessConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms.max(1))
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.probe_timeout_ms.max(1))
    }
}

/// The failing conditions of one process (clones share them).
#[derive(Clone, Default)]
pub struct Readiness(Arc<Mutex<Conditions>>);

#[derive(Default)]
struct Conditions {
    failing: BTreeMap<&'static str, String>,
    /// When each condition's gauges were last set: a condition set as it already was is
    /// published again only after [`REPUBLISH`] (a produce clears `kafka_producer` at every
    /// request at the edge; two gauges looked up by name at each was ~1 % of its CPU).
    published: BTreeMap<&'static str, std::time::Instant>,
}

/// How long a condition set again as it was goes without its gauges being set again.
const REPUBLISH: Duration = Duration::from_secs(1);

impl Conditions {
    /// Publishes `condition`'s gauges if it changed or was not published within [`REPUBLISH`].
    fn publish(&mut self, condition: &'static str, changed: bool) {
        let now = std::time::Instant::now();
        let due = changed || self.published.get(condition).is_none_or(|at| now.duration_since(*at) >= REPUBLISH);
        if due {
            self.published.insert(condition, now);
            publish(condition, self.failing.contains_key(condition), self.failing.is_empty());
        }
    }
}

/// A failing condition as `/readyz` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failing {
    pub condition: String,
    pub reason: String,
}

/// The body of `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyzBody {
    pub ready: bool,
    pub failing: Vec<Failing>,
}

impl Readiness {
    fn map(&self) -> std::sync::MutexGuard<'_, Conditions> {
        // A poisoned lock only means a thread panicked while holding it; the map is still valid.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks `condition` failing for `reason` (logged when it starts failing).
    pub fn fail(&self, condition: &'static str, reason: impl std::fmt::Display) {
        let reason = reason.to_string();
        let newly = {
            let mut map = self.map();
            let newly = map.failing.insert(condition, reason.clone()).is_none();
            map.publish(condition, newly);
            newly
        };
        match (newly, condition) {
            (false, _) => {}
            // starting and stopping are expected, not a fault
            (true, NOT_RUNNING) => tracing::info!(message = "Not ready.", condition, %reason),
            (true, _) => tracing::warn!(message = "Not ready.", condition, %reason),
        }
    }

    /// Marks `condition` as holding again (logged when it was failing).
    pub fn clear(&self, condition: &'static str) {
        let was = {
            let mut map = self.map();
            let was = map.failing.remove(condition).is_some();
            map.publish(condition, was);
            was
        };
        if was {
            tracing::info!(message = "Ready again.", condition);
        }
    }

    /// [`Readiness::fail`] on `Err`, [`Readiness::clear`] on `Ok`.
    pub fn set(&self, condition: &'static str, result: Result<(), String>) {
        match result {
            Ok(()) => self.clear(condition),
            Err(reason) => self.fail(condition, reason),
        }
    }

    /// The failing conditions, by name.
    pub fn failing(&self) -> Vec<Failing> {
        self.map().failing.iter().map(|(c, r)| Failing { condition: c.to_string(), reason: r.clone() }).collect()
    }

    pub fn is_failing(&self, condition: &str) -> bool {
        self.map().failing.contains_key(condition)
    }

    /// `/readyz`: 200 `{"ready":true,"failing":[]}`, or 503 with the failing conditions.
    pub fn response(&self) -> (StatusCode, axum::Json<ReadyzBody>) {
        let failing = self.failing();
        let ready = failing.is_empty();
        let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        (status, axum::Json(ReadyzBody { ready, failing }))
    }
}

/// `sendtrace_readiness_failing{condition}`: 1 while the condition fails, 0 when it holds;
/// `sendtrace_ready`: 1 when no condition fails (what `/readyz` answers), else 0. Condition
/// names are constants of the code (bounded); reasons are never labels. (Called under the
/// lock, so the two gauges move in the order the conditions did.)
fn publish(condition: &'static str, failing: bool, ready: bool) {
    metrics::gauge!("sendtrace_readiness_failing", "condition" => condition).set(if failing { 1.0 } else { 0.0 });
    metrics::gauge!("sendtrace_ready").set(if ready { 1.0 } else { 0.0 });
}

/// Runs `check` at once and then every `cfg.probe_interval_ms` until `shutdown`, each run
/// bounded by `cfg.probe_timeout_ms`, and fails or clears `condition` with its outcome.
pub fn spawn_probe<F, Fut>(readiness: Readiness, condition: &'static str, cfg: ReadinessConfig, shutdown: CancellationToken, mut check: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    tokio::spawn(async move {
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout(cfg.timeout(), check()) => r,
            };
            let result = outcome.unwrap_or_else(|_| Err(format!("no answer within {} ms (probe_timeout_ms)", cfg.timeout().as_millis())));
            readiness.set(condition, result);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(cfg.interval()) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gauges follow every change, however often a condition is set as it already was.
    #[test]
    fn the_gauges_follow_each_change() {
        let handle = crate::telemetry::metrics_handle();
        let r = Readiness::default();
        let gauge = |handle: &metrics_exporter_prometheus::PrometheusHandle| {
            let text = handle.render();
            text.lines().find(|l| l.starts_with("sendtrace_readiness_failing{condition=\"gauge_test\"}")).and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        };
        r.clear("gauge_test");
        assert_eq!(gauge(&handle), Some(0.0), "published when first set");
        for round in 0..3 {
            r.fail("gauge_test", "down");
            r.fail("gauge_test", "still down");
            assert_eq!(gauge(&handle), Some(1.0), "round {round}: failing");
            for _ in 0..100 {
                r.clear("gauge_test");
            }
            assert_eq!(gauge(&handle), Some(0.0), "round {round}: holding");
        }
    }

    #[test]
    fn ready_when_no_condition_fails() {
        let r = Readiness::default();
        assert_eq!(r.response().0, StatusCode::OK);
        r.fail(CLICKHOUSE, "connection refused");
        r.fail(KAFKA_CONSUMER, "all brokers down");
        r.fail(CLICKHOUSE, "still refused");
        let (status, body) = r.response();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body.ready);
        let names: Vec<&str> = body.failing.iter().map(|f| f.condition.as_str()).collect();
        assert_eq!(names, [CLICKHOUSE, KAFKA_CONSUMER]);
        assert_eq!(body.failing[0].reason, "still refused");
        r.clear(CLICKHOUSE);
        assert!(!r.is_failing(CLICKHOUSE) && r.is_failing(KAFKA_CONSUMER));
        r.set(KAFKA_CONSUMER, Ok(()));
        let (status, body) = r.response();
        assert_eq!((status, body.ready, body.failing.len()), (StatusCode::OK, true, 0));
    }

    #[tokio::test]
    async fn a_probe_fails_on_error_and_on_timeout_and_clears_on_success() {
        let r = Readiness::default();
        let cfg = ReadinessConfig { probe_interval_ms: 10, probe_timeout_ms: 50 };
        let stop = CancellationToken::new();
        let mode = Arc::new(std::sync::atomic::AtomicU8::new(0));
        let m = mode.clone();
        let task = spawn_probe(r.clone(), CLICKHOUSE, cfg, stop.clone(), move || {
            let m = m.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                match m {
                    0 => Err("refused".to_string()),
                    1 => {
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
        });
        let until = |want: &'static str, r: Readiness| async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            loop {
                let reason = r.failing().into_iter().find(|f| f.condition == CLICKHOUSE).map(|f| f.reason);
                let ok = match want {
                    "clear" => reason.is_none(),
                    w => reason.as_deref().is_some_and(|x| x.contains(w)),
                };
                if ok {
                    return;
                }
                assert!(tokio::time::Instant::now() < deadline, "condition never became {want}: {reason:?}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        until("refused", r.clone()).await;
        mode.store(2, std::sync::atomic::Ordering::SeqCst);
        until("clear", r.clone()).await;
        mode.store(1, std::sync::atomic::Ordering::SeqCst);
        until("probe_timeout_ms", r.clone()).await;
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(1), task).await.expect("the probe stops on shutdown").unwrap();
    }
}
