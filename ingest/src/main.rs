//! `ingest`: clap, logging, and `run`.

use anyhow::Context;
use clap::Parser;
use ingest::config::Config;
use ingest::kafka::KafkaSink;
use ingest::{app, AppState};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// mimalloc, not glibc malloc: under load glibc's `_int_malloc`/`malloc_consolidate`/
/// `unlink_chunk`/`free` were ~9 % of all samples of our services and ~18 % of ingest's
/// request-serving threads (request bodies, headers, JSON, envelopes; BENCHMARKS.md §7).
/// The normalizer and the aggregator use it for the same reason.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "ingest", about = "sendtrace ingest: verify provider webhooks and store them in Kafka")]
struct Cli {
    /// TOML config file; `SENDTRACE_*` environment variables override it.
    #[arg(long, env = "SENDTRACE_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    runtime::telemetry::init_tracing();
    let cfg: Config = runtime::config::load(cli.config.as_deref())?;
    cfg.validate().map_err(anyhow::Error::msg).context("invalid ingest configuration")?;
    let verify = Arc::new(normalizer::providers::VerifyContext::new(cfg.limits.clone(), ingest::certificates::source()));
    let shutdown = runtime::shutdown::on_signal();
    if cfg.create_topics {
        cfg.kafka.ensure_topics(&[&cfg.raw_topic], &[]).await.context("creating the raw topic")?;
    }
    let health = runtime::telemetry::Health::default();
    let sink = Arc::new(KafkaSink::new(cfg.kafka.clone(), cfg.queue_max_kbytes, cfg.raw_topic.clone(), health.readiness())?);
    let probe = sink.spawn_probe(cfg.readiness, shutdown.clone());
    let admin = runtime::telemetry::start_admin(&cfg.admin_addr, health.clone(), shutdown.clone()).await?;
    let state = AppState { config: Arc::new(cfg.clone()), sink: Arc::new(sink.clone()), verify };
    let listener = tokio::net::TcpListener::bind(&cfg.listen_addr).await.with_context(|| format!("binding {}", cfg.listen_addr))?;
    tracing::info!(message = "ingest listening.", addr = %cfg.listen_addr, admin_addr = %cfg.admin_addr, tenants = cfg.tenants.len());
    health.set_ready(true);
    let app = app(state, health.clone()).layer(axum::middleware::from_fn_with_state(ingest::http_metrics::HttpMetrics::new(), ingest::http_metrics::track));
    ingest::server::serve(listener, app, &cfg, shutdown.clone()).await;
    health.set_ready(false);
    sink.flush(Duration::from_secs(10));
    shutdown.cancel();
    let _ = probe.await;
    admin.await.context("admin listener")?.context("admin listener")?;
    tracing::info!(message = "ingest stopped.");
    Ok(())
}
