//! Retrying ClickHouse operations: the aggregator waits out an unavailable ClickHouse
//! (same rows, same dedup token) instead of dropping data or consuming ahead.
//! Only transient failures are waited out (`failure::classify`); a permanent one is
//! returned to the caller, which isolates the records that cause it (see `pipeline`).

use super::write::SinkError;
use super::failure::{classify, Failure};
use runtime::backoff::Backoff;
use runtime::shutdown::CancellationToken;
use std::future::Future;
use std::time::Duration;
use tracing::{error, warn};

/// Retries `op` with capped exponential backoff until it succeeds, fails permanently
/// (→ `Some(Err)`), or shutdown (→ None).
pub async fn retry_transient<T, F, Fut>(what: &str, max_backoff_ms: u64, shutdown: &CancellationToken, mut op: F) -> Option<Result<T, SinkError>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SinkError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(max_backoff_ms));
    loop {
        match op().await {
            Ok(v) => return Some(Ok(v)),
            Err(e) => match classify(&e) {
                Failure::Permanent { code } => {
                    metrics::counter!("sendtrace_aggregator_sink_permanent_errors_total", "operation" => what.to_string()).increment(1);
                    error!(message = "ClickHouse refused the data; it will not be retried.", operation = what, code, error = %e);
                    return Some(Err(e));
                }
                Failure::Transient => {
                    metrics::counter!("sendtrace_aggregator_sink_retries_total", "operation" => what.to_string()).increment(1);
                    warn!(message = "ClickHouse operation failed; retrying.", operation = what, error = %e, backoff_ms = backoff.current().as_millis() as u64);
                }
            },
        }
        if !backoff.wait(shutdown).await {
            return None;
        }
    }
}

/// As [`retry_transient`], also retrying permanent failures: for operations after a batch's event rows landed: their rows hold only
/// values ClickHouse already accepted in those rows (same strings, times and column types),
/// so a permanent failure there is not the data's but the deployment's (a schema out of step).
/// They are retried, loudly (`error` log, `sendtrace_aggregator_sink_permanent_errors_total`),
/// because giving up half way would leave counters without their events. Also for reads
/// whose failure no record causes (cursors, health).
pub async fn retry<T, F, Fut>(what: &str, max_backoff_ms: u64, shutdown: &CancellationToken, mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SinkError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(max_backoff_ms));
    loop {
        match retry_transient(what, max_backoff_ms, shutdown, &mut op).await? {
            Ok(v) => return Some(v),
            Err(_) => {
                if !backoff.wait(shutdown).await {
                    return None;
                }
            }
        }
    }
}
