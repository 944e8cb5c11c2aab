//! Where each partition of the events topic stands, kept in ClickHouse beside the data.
//!
//! Before a batch's rows are written, a `pending` manifest records its offset range;
//! after all rows are written, a `done` row follows, and only then is the Kafka offset
//! committed. On restart a partition resumes after its last `done` batch; if a
//! `pending` batch is newer, it is re-formed with exactly the same range, so its
//! inserts carry the same dedup tokens and ClickHouse drops whatever already landed.

use crate::sinks::clickhouse::{insert_rows, OffsetRow, SinkError};
use clickhouse::{Client, Row};
use serde::Deserialize;

/// What is known about one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Every offset up to and including this one is applied (-1: none).
    pub done_upto: i64,
    /// A batch that was started but not finished: it must be redone as exactly this range.
    pub pending: Option<(i64, i64)>,
}

#[derive(Debug, Row, Deserialize)]
struct ManifestRow {
    first_offset: i64,
    last_offset: i64,
    state: String,
}

pub async fn load_cursor(client: &Client, group: &str, topic: &str, partition: i32) -> Result<Cursor, SinkError> {
    let rows = client
        .query(
            "SELECT first_offset, last_offset, state FROM aggregator_offsets \
             WHERE consumer_group = ? AND topic = ? AND partition = ? \
             ORDER BY last_offset DESC, state = 'done' DESC LIMIT 1",
        )
        .bind(group)
        .bind(topic)
        .bind(partition)
        .fetch_all::<ManifestRow>()
        .await?;
    let done = if let Some(r) = rows.first() {
        if r.state == "done" {
            return Ok(Cursor { done_upto: r.last_offset, pending: None });
        }
        let before = client
            .query(
                "SELECT first_offset, last_offset, state FROM aggregator_offsets \
                 WHERE consumer_group = ? AND topic = ? AND partition = ? AND state = 'done' \
                 ORDER BY last_offset DESC LIMIT 1",
            )
            .bind(group)
            .bind(topic)
            .bind(partition)
            .fetch_all::<ManifestRow>()
            .await?;
        let done_upto = before.first().map_or(-1, |b| b.last_offset);
        return Ok(Cursor { done_upto, pending: Some((r.first_offset, r.last_offset)) });
    } else {
        -1
    };
    Ok(Cursor { done_upto: done, pending: None })
}

/// The dedup token of one table's insert for one batch.
pub fn token(group: &str, topic: &str, partition: i32, first: i64, last: i64, table: &str) -> String {
    format!("{group}:{topic}:{partition}:{first}-{last}:{table}")
}

pub async fn write_manifest(client: &Client, group: &str, topic: &str, partition: i32, range: (i64, i64), state: &str, now_ms: i64) -> Result<(), SinkError> {
    let row = OffsetRow {
        consumer_group: group.into(),
        topic: topic.into(),
        partition,
        first_offset: range.0,
        last_offset: range.1,
        state: state.into(),
        written_at: now_ms,
    };
    insert_rows(client, "aggregator_offsets", &token(group, topic, partition, range.0, range.1, state), &[row]).await
}
