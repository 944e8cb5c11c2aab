//! Where each partition of the events topic stands, kept in ClickHouse beside the data.
//!
//! Before a batch's rows are written, a `pending` manifest records its offset range;
//! after all rows are written, a `done` row follows, and only then is the Kafka offset
//! committed. On restart a partition resumes after its last `done` batch; if a
//! `pending` batch is newer, it is re-formed with exactly the same range, so its
//! inserts carry the same dedup tokens and ClickHouse drops whatever already landed.
//!
//! # The fence: one writer per partition
//! Redoing a `pending` range is exact because the redo forms the same range. Two writers at
//! once would not: a new owner that loads the cursor before the old owner (a zombie whose
//! group membership was lost while it was busy) writes its next `pending` manifest forms its own
//! batches over the same offsets, with other tokens, and the summing counters count both.
//! So a writer [`claim`]s a partition (epoch = the newest + 1) before it loads the cursor, and
//! after each batch's `pending` manifest, before any of its data, checks that its claim is
//! still the newest ([`holds`]). Why that is enough: if the old owner's check passed, it read
//! the claims before the new claim was written, so its `pending` manifest (written before the
//! check) was there before the new owner loaded the cursor, which then redoes that range
//! exactly; if its check fails, it writes nothing of the batch. (A `pending` manifest of a
//! batch given up so is harmless: no row carries its tokens, and a range resumed from it
//! starts after the cursor's `done` offset like any other.) On a cluster, `insert_quorum` makes
//! a claim visible on every replica before the claimer goes on (`schemas::cluster`).

use crate::store::{insert_rows, newest_claim, ClaimRow, OffsetRow, SinkError};
use clickhouse::Client;

/// What is known about one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Every offset up to and including this one is applied (-1: none).
    pub done_upto: i64,
    /// A batch that was started but not finished: it must be redone as exactly this range.
    pub pending: Option<(i64, i64)>,
}

/// Where a partition stands, from its manifest rows: every offset up to the last `done`
/// range is applied; of the `pending` ranges ending after it, the one ending first is the
/// innermost unfinished piece (`pipeline::Aggregator::write_unit` bisects refused batches
/// into pieces nested in their parent's range, each writing its own `pending` first, and
/// finishes them in offset order), so resuming there redoes it with exactly its range.
/// Without bisection there is at most one such range, the batch that was cut short.
pub fn cursor_of(rows: &[(i64, i64, &str)]) -> Cursor {
    let done_upto = rows.iter().filter(|(_, _, s)| *s == "done").map(|(_, l, _)| *l).max().unwrap_or(-1);
    let pending = rows
        .iter()
        .filter(|(_, l, s)| *s == "pending" && *l > done_upto)
        .min_by_key(|(f, l, _)| (*l, std::cmp::Reverse(*f)))
        .map(|(f, l, _)| (*f, *l));
    Cursor { done_upto, pending }
}

pub async fn load_cursor(client: &Client, group: &str, topic: &str, partition: i32) -> Result<Cursor, SinkError> {
    let rows = crate::store::load_manifests(client, group, topic, partition).await?;
    let rows: Vec<(i64, i64, &str)> = rows.iter().map(|r| (r.first_offset, r.last_offset, r.state.as_str())).collect();
    Ok(cursor_of(&rows))
}

/// A writer's claim on a partition: its epoch and the writer's id (`Aggregator`'s, one per process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub epoch: u64,
    pub writer: String,
}

impl Claim {
    /// Whether `newest` is this claim.
    pub fn is(&self, newest: Option<&(u64, String)>) -> bool {
        newest.is_some_and(|(e, w)| *e == self.epoch && *w == self.writer)
    }
}

/// Claims `partition` for `writer`: an epoch above every claim written so far. The caller
/// then forgets what it holds in memory of the partition: another writer may have written it
/// since (even this writer's own previous claim may have lost to a concurrent one).
pub async fn claim(client: &Client, group: &str, topic: &str, partition: i32, writer: &str, now_ms: i64) -> Result<Claim, SinkError> {
    let newest = newest_claim(client, group, topic, partition).await?;
    let epoch = newest.map_or(0, |(e, _)| e) + 1;
    let row = ClaimRow { consumer_group: group.into(), topic: topic.into(), partition, epoch, writer: writer.into(), claimed_at: now_ms };
    let token = format!("{group}:{topic}:{partition}:claim:{epoch}:{writer}");
    insert_rows(client, "aggregator_claims", &token, &[row]).await?;
    Ok(Claim { epoch, writer: writer.into() })
}

/// Whether `claim` is still the newest claim on `partition` (see the module doc).
pub async fn holds(client: &Client, group: &str, topic: &str, partition: i32, claim: &Claim) -> Result<bool, SinkError> {
    Ok(claim.is(newest_claim(client, group, topic, partition).await?.as_ref()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_at_the_innermost_unfinished_piece() {
        assert_eq!(cursor_of(&[]), Cursor { done_upto: -1, pending: None });
        // plain batches: the last done one; a batch cut short is redone as it was
        assert_eq!(cursor_of(&[(0, 9, "pending"), (0, 9, "done"), (10, 19, "pending")]), Cursor { done_upto: 9, pending: Some((10, 19)) });
        assert_eq!(cursor_of(&[(0, 9, "pending"), (0, 9, "done")]), Cursor { done_upto: 9, pending: None });
        // [0,99] refused → [0,49] refused → [0,24] done, [25,49] started: redo [25,49] exactly
        let split = [(0, 99, "pending"), (0, 49, "pending"), (0, 24, "pending"), (0, 24, "done"), (25, 49, "pending")];
        assert_eq!(cursor_of(&split), Cursor { done_upto: 24, pending: Some((25, 49)) });
        // [25,49] done: what remains of [0,99] (its right half, not started) is next
        let mut more = split.to_vec();
        more.push((25, 49, "done"));
        assert_eq!(cursor_of(&more), Cursor { done_upto: 49, pending: Some((0, 99)) });
        // the right half started and was split itself: its inner piece, not its parent
        more.extend([(50, 99, "pending"), (50, 74, "pending"), (50, 74, "done"), (75, 99, "pending")]);
        assert_eq!(cursor_of(&more), Cursor { done_upto: 74, pending: Some((75, 99)) });
        more.push((75, 99, "done"));
        assert_eq!(cursor_of(&more), Cursor { done_upto: 99, pending: None });
    }
}
