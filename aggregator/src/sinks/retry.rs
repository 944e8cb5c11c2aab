//! Retrying ClickHouse operations: the aggregator waits out an unavailable ClickHouse
//! (same rows, same dedup token) instead of dropping data or consuming ahead.

use super::clickhouse::SinkError;
use runtime::shutdown::CancellationToken;
use std::future::Future;
use std::time::Duration;
use tracing::warn;

/// Retries `op` with capped exponential backoff until it succeeds or shutdown (→ None).
pub async fn retry<T, F, Fut>(what: &str, max_backoff_ms: u64, shutdown: &CancellationToken, mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SinkError>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(v) => return Some(v),
            Err(error) => {
                metrics::counter!("sendtrace_aggregator_sink_retries_total", "operation" => what.to_string()).increment(1);
                warn!(message = "ClickHouse operation failed; retrying.", operation = what, %error, backoff_ms = backoff.as_millis() as u64);
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_millis(max_backoff_ms));
    }
}

