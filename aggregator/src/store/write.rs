//! Writing rows: one INSERT per table and batch, with the batch's `insert_deduplication_token`,
//! so a batch written again after a crash is ignored by ClickHouse instead of counted twice.

use clickhouse::{Client, Row};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
}

impl SinkError {
    pub fn code(&self) -> &'static str {
        "clickhouse"
    }
}

/// Inserts `rows` into `table` as one INSERT with a dedup token. Nothing is sent for no rows.
/// Each INSERT is timed: `sendtrace_aggregator_clickhouse_insert_duration_seconds{table,outcome}`
/// (`outcome`: `ok` or `error`; retries are counted by `store::retry`).
pub async fn insert_rows<T>(client: &Client, table: &str, token: &str, rows: &[T]) -> Result<(), SinkError>
where
    T: Row + Serialize + clickhouse::RowWrite,
    for<'a> T: clickhouse::Row<Value<'a> = T>,
{
    if rows.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let result = insert(client, table, token, rows).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::histogram!("sendtrace_aggregator_clickhouse_insert_duration_seconds", "table" => table.to_string(), "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

async fn insert<T>(client: &Client, table: &str, token: &str, rows: &[T]) -> Result<(), SinkError>
where
    T: Row + Serialize + clickhouse::RowWrite,
    for<'a> T: clickhouse::Row<Value<'a> = T>,
{
    let client = client.clone().with_option("insert_deduplication_token", token);
    let mut insert = client.insert::<T>(table).await?;
    for r in rows {
        insert.write(r).await?;
    }
    insert.end().await?;
    Ok(())
}
