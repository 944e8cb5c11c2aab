//! Writing rows: one INSERT per table and batch, with the batch's `insert_deduplication_token`,
//! so a batch written again after a crash is ignored by ClickHouse instead of counted twice.
//!
//! Every INSERT sends our own `RowBinary` (`rowbinary.rs`) through the crate's
//! `insert_formatted`, with the row type's column list: a batch's tables are written straight
//! into reused buffers (BENCHMARKS.md §1b), and the small tables through the same serializer.

use super::rowbinary::{self, RowBuffer};
use clickhouse::{Client, Row};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    /// A row type `rowbinary` cannot write (a declaration error; the tests write every row type).
    #[error(transparent)]
    Encode(#[from] rowbinary::Error),
}

impl SinkError {
    pub fn code(&self) -> &'static str {
        match self {
            SinkError::ClickHouse(_) => "clickhouse",
            SinkError::Encode(e) => e.code(),
        }
    }
}

/// Inserts `rows` into `table` as one INSERT with a dedup token. Nothing is sent for no rows.
pub async fn insert_rows<T>(client: &Client, table: &str, token: &str, rows: &[T]) -> Result<(), SinkError>
where
    T: Row + Serialize,
{
    if rows.is_empty() {
        return Ok(());
    }
    let mut buf = RowBuffer::default();
    for r in rows {
        buf.push(r)?;
    }
    insert_buffer(client, table, T::COLUMN_NAMES, token, &buf).await
}

/// Inserts the rows already written in `buf` (columns `columns`, in order) into `table` as one
/// INSERT with a dedup token. Nothing is sent for no rows.
/// Each INSERT is timed: `sendtrace_aggregator_clickhouse_insert_duration_seconds{table,outcome}`
/// (`outcome`: `ok` or `error`; retries are counted by `store::retry`).
pub async fn insert_buffer(client: &Client, table: &str, columns: &[&str], token: &str, buf: &RowBuffer) -> Result<(), SinkError> {
    if buf.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let result = send(client, table, columns, token, &buf.bytes).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::histogram!("sendtrace_aggregator_clickhouse_insert_duration_seconds", "table" => table.to_string(), "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

/// `INSERT INTO table(`a`,`b`,..) FORMAT RowBinary`, as the crate's `Insert` words it when
/// it does not validate (names in backquotes).
fn statement(table: &str, columns: &[&str]) -> String {
    let mut sql = format!("INSERT INTO {table}(");
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        sql.push('`');
        sql.push_str(c);
        sql.push('`');
    }
    sql.push_str(") FORMAT RowBinary");
    sql
}

async fn send(client: &Client, table: &str, columns: &[&str], token: &str, bytes: &[u8]) -> Result<(), SinkError> {
    let mut insert = client.insert_formatted_with(statement(table, columns)).with_option("insert_deduplication_token", token);
    // (one copy per attempt: a retry sends the same bytes again)
    insert.send(bytes::Bytes::copy_from_slice(bytes)).await?;
    insert.end().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_names_every_column_in_order() {
        assert_eq!(statement("counters", &["tenant", "period"]), "INSERT INTO counters(`tenant`,`period`) FORMAT RowBinary");
    }
}
