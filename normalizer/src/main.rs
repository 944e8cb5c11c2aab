//! `normalizer run` (the service) and `normalizer check` (one body → JSON lines).

use anyhow::Context;
use clap::{Parser, Subcommand};
use normalizer::{check, config::Config, pipeline};
use std::path::PathBuf;

/// mimalloc, not glibc malloc: each record allocates and frees dozens of small strings (the
/// decoded envelope, the events and their Avro values), and glibc spent 29 % of
/// `pipeline::handle` in `_int_malloc`/`_int_free`/`malloc_consolidate` on that pattern
/// (issue 14's profile, BENCHMARKS.md "Normalizer core"). The benchmark uses the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "normalizer", about = "sendtrace normalizer: raw provider payloads → canonical events")]
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
    /// Normalize one raw webhook body (as the provider POSTs it) and print the events as JSON lines.
    Check {
        /// Provider name (`normalizer providers` lists them).
        #[arg(long)]
        provider: String,
        /// The route the body came in on, as stored: webhook, webhook/<variant>, sends, events,
        /// push_results (default: the provider's first route).
        #[arg(long)]
        route: Option<String>,
        /// Tenant to attribute the events to.
        #[arg(long, default_value = "check")]
        tenant: String,
        /// File with the body; `-` for standard input.
        file: PathBuf,
    },
    /// List every provider: its routes, the headers ingest keeps and its credentials table.
    Providers,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    runtime::telemetry::init_tracing();
    let cfg: Config = runtime::config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let shutdown = runtime::shutdown::on_signal();
            let health = runtime::telemetry::Health::default();
            let admin = runtime::telemetry::start_admin(&cfg.admin_addr, health.clone(), shutdown.clone()).await?;
            let result = pipeline::run(cfg, health, shutdown.clone()).await;
            shutdown.cancel();
            let _ = admin.await;
            result
        }
        Command::Providers => {
            print!("{}", normalizer::providers::describe());
            Ok(())
        }
        Command::Check { provider, route, tenant, file } => {
            let body = if file.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
                b
            } else {
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let now = chrono::Utc::now().timestamp_millis();
            match check::check(&provider, route.as_deref(), &tenant, body, &cfg.mapping, now) {
                Ok(out) => {
                    print!("{}", check::to_json_lines(&out.events));
                    for r in &out.rejected {
                        eprintln!("item {} not normalized ({}): {}", r.item, r.error.code(), r.error);
                    }
                    // Some items flowed but others would be dead letters: say so in the exit code.
                    if !out.rejected.is_empty() {
                        std::process::exit(3);
                    }
                    Ok(())
                }
                Err(e) => {
                    eprintln!("cannot normalize ({}): {e}", e.code());
                    std::process::exit(2);
                }
            }
        }
    }
}
