//! `api`: clap, logging, and `run`.

use anyhow::Context;
use api::config::Config;
use api::{app, AppState};
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "api", about = "sendtrace read API: stats, messages, events, funnels, suppressions, sender health")]
struct Cli {
    /// TOML config file; `SENDTRACE_*` environment variables override it.
    #[arg(long, env = "SENDTRACE_CONFIG")]
    config: Option<PathBuf>,
    /// Print the OpenAPI document and exit.
    #[arg(long)]
    openapi: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    runtime::telemetry::init_tracing();
    let cfg: Config = runtime::config::load(cli.config.as_deref())?;
    cfg.validate().map_err(anyhow::Error::msg).context("invalid configuration")?;
    if cli.openapi {
        println!("{}", api::routes::openapi().to_pretty_json()?);
        return Ok(());
    }
    let shutdown = runtime::shutdown::on_signal();
    let tenants = cfg.tenants.len();
    let addr = cfg.listen_addr.clone();
    let state = AppState::new(cfg);
    let probe = api::routes::health::spawn_clickhouse_probe(&state, shutdown.clone());
    let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
    tracing::info!(message = "api listening.", %addr, tenants);
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    probe.abort();
    tracing::info!(message = "api stopped.");
    Ok(())
}
