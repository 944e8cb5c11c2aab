//! `/healthz` (process up) and `/readyz` (no readiness condition fails) come from
//! `runtime::telemetry`; here is the probe behind the API's one condition, `clickhouse`:
//! ClickHouse answers `SELECT 1`, every `readiness.probe_interval_ms`.
//!
//! The broker is not a condition: reads need only ClickHouse, and what needs Kafka answers
//! 503 with `Retry-After` on its own (a suppression change, `/v1/stream`), so a broker outage
//! should not take the read API out of a load balancer.

use crate::AppState;
use runtime::readiness::{spawn_probe, CLICKHOUSE};
use runtime::shutdown::CancellationToken;

/// Probes ClickHouse until `shutdown`, failing or clearing the `clickhouse` condition of `state.health`.
pub fn spawn_clickhouse_probe(state: &AppState, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    let db = state.db.clone();
    spawn_probe(state.health.readiness(), CLICKHOUSE, state.config.readiness, shutdown, move || {
        let db = db.clone();
        // The reason is public (the API's listener): the error's own text, never the client's cause.
        async move { db.ping().await.map_err(|e| format!("{e} ({})", e.code())) }
    })
}
