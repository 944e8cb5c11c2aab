//! Logs (tracing), metrics (Prometheus text on `/metrics`), liveness (`/healthz`) and
//! readiness (`/readyz`, see [`crate::readiness`]).

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use crate::readiness::{Readiness, NOT_RUNNING};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// Installs the tracing subscriber (`RUST_LOG`, default `info`; JSON when `SENDTRACE_LOG_JSON=1`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if std::env::var("SENDTRACE_LOG_JSON").as_deref() == Ok("1") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Buckets (seconds) of every `*_duration_seconds` histogram.
pub const DURATION_BUCKETS_SECS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Buckets (records) of every `*_batch_records` histogram (batch sizes).
pub const BATCH_RECORDS_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0];

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            // `*_duration_seconds` and `*_batch_records` histograms render as Prometheus
            // histograms (buckets), not summaries.
            // (fails only on an empty bucket list, which the constants are not)
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), DURATION_BUCKETS_SECS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_batch_records".into()), BATCH_RECORDS_BUCKETS))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed (tests); the handle still renders ours.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Liveness and readiness of one service, shared between its work loop, its probes and its
/// admin endpoint. Alive (`set_ready(true)`) once the work loop runs, until it stops: that is
/// `/healthz`. Ready when additionally no [`Readiness`] condition fails: that is `/readyz`.
#[derive(Clone)]
pub struct Health {
    alive: Arc<AtomicBool>,
    readiness: Readiness,
}

impl Default for Health {
    fn default() -> Self {
        let readiness = Readiness::default();
        readiness.fail(NOT_RUNNING, "starting");
        Health { alive: Arc::new(AtomicBool::new(false)), readiness }
    }
}

impl Health {
    /// The work loop runs (`true`) or has stopped (`false`): `/healthz`, and the
    /// `not_running` condition of `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.alive.store(ready, Ordering::Relaxed);
        if ready {
            self.readiness.clear(NOT_RUNNING);
        } else {
            self.readiness.fail(NOT_RUNNING, "stopping");
        }
    }
    /// Whether the work loop runs (`/healthz`).
    pub fn is_ready(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }
    /// The conditions behind `/readyz`.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }
}

/// `/metrics`, `/healthz` and `/readyz` routes.
pub fn router(health: Health) -> Router {
    let handle = metrics_handle();
    Router::new()
        .route("/metrics", get(move || async move { handle.render() }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(|State(h): State<Health>| async move { h.readiness.response() }))
        .with_state(health)
}

async fn healthz(State(h): State<Health>) -> (StatusCode, &'static str) {
    if h.is_ready() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

/// Binds `addr`, then serves `/metrics`, `/healthz` and `/readyz` there until `shutdown` on a
/// task of its own. The bind is awaited here, so a service whose admin port is taken stops at
/// start with the reason, instead of running on with no health endpoint that an orchestrator
/// (or a test harness) could ever see answer. The metrics recorder is installed before this
/// returns (the routes are built here, not on the task), so metrics a service registers after
/// it, e.g. a handle kept for the hot path, are the ones `/metrics` shows.
pub async fn start_admin(addr: &str, health: Health, shutdown: CancellationToken) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding the admin endpoint {addr}"))?;
    tracing::info!(message = "Admin endpoint listening.", %addr);
    let routes = router(health);
    Ok(tokio::spawn(async move {
        axum::serve(listener, routes).with_graceful_shutdown(async move { shutdown.cancelled().await }).await?;
        Ok(())
    }))
}

/// Metric handles kept by label set, each registered once, when first used, instead of looked
/// up by name and labels at every use (a key built, its labels cloned and hashed, the registry
/// searched: six such lookups a request were 3.7 % of ingest's CPU under load, BENCHMARKS.md §7).
/// For few label sets (searched in order); the recorder must be installed before the first use
/// (`start_admin` installs it).
pub struct Handles<K, H> {
    held: std::sync::RwLock<Vec<(K, H)>>,
}

impl<K, H> Default for Handles<K, H> {
    fn default() -> Self {
        Handles::new()
    }
}

impl<K, H> Handles<K, H> {
    pub const fn new() -> Self {
        Handles { held: std::sync::RwLock::new(Vec::new()) }
    }
}

impl<K, H: Clone> Handles<K, H> {
    /// The handle whose labels `is` matches, registered by `register` (labels and handle) if
    /// there is none yet.
    pub fn get(&self, is: impl Fn(&K) -> bool, register: impl FnOnce() -> (K, H)) -> H {
        let find = |held: &[(K, H)]| held.iter().find(|(k, _)| is(k)).map(|(_, h)| h.clone());
        // (the read guard is dropped before the write lock is taken)
        let found = find(&self.held.read().unwrap_or_else(|p| p.into_inner()));
        found.unwrap_or_else(|| {
            let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
            find(&held).unwrap_or_else(|| {
                let (k, h) = register();
                held.push((k, h.clone()));
                h
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_registered_once_per_label_set() {
        let handles: Handles<(&str, u16), usize> = Handles::new();
        let registered = std::cell::Cell::new(0);
        let get = |route, status| {
            handles.get(|k| *k == (route, status), || {
                registered.set(registered.get() + 1);
                ((route, status), registered.get())
            })
        };
        assert_eq!((get("/a", 200), get("/a", 503), get("/a", 200), get("/b", 200), get("/a", 503)), (1, 2, 1, 3, 2));
        assert_eq!(registered.get(), 3, "one registration per label set");
    }

    #[tokio::test]
    async fn a_taken_admin_port_is_an_error_at_start_and_a_free_one_answers_healthz() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let err = start_admin(&addr, Health::default(), CancellationToken::new()).await.expect_err("port taken");
        assert!(format!("{err:#}").contains(&format!("binding the admin endpoint {addr}")), "{err:#}");

        drop(taken);
        let (shutdown, health) = (CancellationToken::new(), Health::default());
        health.set_ready(true);
        let admin = start_admin(&addr, health, shutdown.clone()).await.expect("port free again");
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("listening once start_admin returned");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        shutdown.cancel();
        admin.await.unwrap().unwrap();
    }
}
