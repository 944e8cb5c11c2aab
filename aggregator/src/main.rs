//! `aggregator run` (the service) and `aggregator migrate` (the DDL).

use aggregator::{config::Config, migrate, pipeline};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// mimalloc, not glibc malloc: a batch allocates and frees ~20 small strings per event, and
/// glibc spent ~40 % of `batch::apply` in `malloc_consolidate`/`_int_malloc`/`unlink_chunk`
/// on that pattern (BENCHMARKS.md §1). The benchmarks use the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "aggregator", about = "sendtrace aggregator: canonical events → ClickHouse")]
struct Cli {
    /// TOML config file; `SENDTRACE_*` environment variables override it.
    #[arg(long, global = true, env = "SENDTRACE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Run,
    /// Apply the ClickHouse migrations (idempotent).
    Migrate {
        /// Create the tables on this ClickHouse cluster (`clickhouse.cluster`): replicated local
        /// tables and `Distributed` tables under the usual names.
        #[arg(long)]
        cluster: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    runtime::telemetry::init_tracing();
    let mut cfg: Config = runtime::config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Migrate { cluster } => {
            if let Some(cluster) = cluster {
                cfg.clickhouse.cluster = cluster;
            }
            let applied = migrate::migrate(&cfg.clickhouse, &cfg.reporting_time_zone).await?;
            println!("migrations applied now: {applied:?} (database `{}`)", cfg.clickhouse.database);
            Ok(())
        }
        Command::Run => {
            if !cfg.transparent_huge_pages {
                match aggregator::memory::disable_transparent_huge_pages() {
                    Ok(()) => {
                        tracing::info!(message = "Transparent huge pages off for this process.")
                    }
                    Err(e) => {
                        tracing::warn!(message = "Could not turn transparent huge pages off.", error = %e)
                    }
                }
            }
            let shutdown = runtime::shutdown::on_signal();
            let health = runtime::telemetry::Health::default();
            let admin = runtime::telemetry::start_admin(&cfg.admin_addr, health.clone(), shutdown.clone()).await?;
            let result = pipeline::run(cfg, health, shutdown.clone()).await;
            shutdown.cancel();
            let _ = admin.await;
            result
        }
    }
}
