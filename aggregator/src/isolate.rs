//! Isolating the records ClickHouse refuses: bisection of a batch with deterministic cuts.
//!
//! A batch (a unit of consecutive records of one partition) that ClickHouse refuses
//! permanently, before any of its counters landed, is cut in two halves by record count;
//! each half is written as a batch of its own (own manifest, own tokens), and halves
//! refused again are cut again, down to single records, which are refused (dead-lettered).
//! Why bisection and not one record at a time: k poison records in n cost O(k log n)
//! writes instead of n (each write is seven inserts and new parts in ClickHouse), and a
//! refusal that only a smaller batch cures (a size limit) costs no record at all.
//! Why it stays exact: pieces are written in offset order, each writes its `pending` manifest
//! before any row, and a piece depends only on the records of its range, so a restart that
//! resumes at the innermost unfinished piece (`offsets::cursor_of`) redoes exactly the piece
//! that may have partial rows, and pieces not started yet may be formed afresh.

use std::ops::Range;

/// What [`write_bisecting`] needs from a writer of pieces of one unit.
#[allow(async_fn_in_trait)] // used with concrete types only, in this crate
pub trait Pieces {
    type Error: std::fmt::Display;
    /// Writes the records `piece` (indices into the unit) as one batch. `Some(Err)`: refused
    /// permanently, and nothing of it counted yet; the writer has undone its in-memory effects.
    /// `None`: shutdown.
    async fn write(&mut self, piece: Range<usize>) -> Option<Result<(), Self::Error>>;
    /// Record `index`, alone, is refused for good: dead-letter it and mark it done.
    async fn refuse(&mut self, index: usize, error: Self::Error) -> Option<()>;
}

/// Writes records `0..len` through `w`, bisecting refused pieces (see the module doc).
/// Returns the number of cuts, or `None` on shutdown.
pub async fn write_bisecting<P: Pieces>(w: &mut P, len: usize) -> Option<usize> {
    let mut cuts = 0;
    // pieces still to write, the next one last
    let mut todo = Vec::with_capacity(8);
    todo.push(0..len);
    while let Some(piece) = todo.pop() {
        if piece.is_empty() {
            continue;
        }
        let Err(error) = w.write(piece.clone()).await? else { continue };
        if piece.len() == 1 {
            w.refuse(piece.start, error).await?;
            continue;
        }
        cuts += 1;
        let mid = piece.start + piece.len() / 2;
        tracing::warn!(message = "ClickHouse refused a batch; writing its halves apart.", records = piece.len(), %error);
        todo.push(mid..piece.end);
        todo.push(piece.start..mid);
    }
    Some(cuts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::cursor_of;
    use std::collections::BTreeSet;

    /// ClickHouse as seen by a unit: refuses a piece holding a poison record or more than
    /// `max_months` distinct months (`max_partitions_per_insert_block`). Records its manifests.
    struct Fake {
        offsets: Vec<i64>,
        poison: BTreeSet<usize>,
        month: Vec<u32>,
        max_months: usize,
        written: Vec<usize>,
        refused: Vec<usize>,
        manifest: Vec<(i64, i64, &'static str)>,
        /// Stop (a crash) after this many writes.
        crash_after: Option<usize>,
        writes: usize,
        crashed: Option<(i64, i64)>,
    }

    impl Pieces for Fake {
        type Error = String;
        async fn write(&mut self, piece: Range<usize>) -> Option<Result<(), String>> {
            let range = (self.offsets[piece.start], self.offsets[piece.end - 1]);
            self.manifest.push((range.0, range.1, "pending"));
            if self.crash_after.is_some_and(|n| self.writes >= n) {
                // cut short after its pending manifest (some rows may have landed)
                self.crashed = Some(range);
                return None;
            }
            self.writes += 1;
            let months: BTreeSet<u32> = piece.clone().map(|i| self.month[i]).collect();
            if piece.clone().any(|i| self.poison.contains(&i)) || months.len() > self.max_months {
                return Some(Err("Code: 53.".into()));
            }
            self.written.extend(piece);
            self.manifest.push((range.0, range.1, "done"));
            Some(Ok(()))
        }
        async fn refuse(&mut self, index: usize, _: String) -> Option<()> {
            self.refused.push(index);
            let o = self.offsets[index];
            self.manifest.push((o, o, "done"));
            Some(())
        }
    }

    fn fake(n: usize, poison: &[usize], months: usize, max_months: usize) -> Fake {
        Fake {
            // offsets with gaps, as on a real topic
            offsets: (0..n as i64).map(|i| 100 + i * 3).collect(),
            poison: poison.iter().copied().collect(),
            month: (0..n).map(|i| (i * 7 % months.max(1)) as u32).collect(),
            max_months,
            written: Vec::new(),
            refused: Vec::new(),
            manifest: Vec::new(),
            crash_after: None,
            writes: 0,
            crashed: None,
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }

    #[test]
    fn poison_records_are_refused_and_every_other_record_written_once_in_order() {
        for (n, poison, months, max) in [(1, vec![0], 1, 100), (2000, vec![], 1, 100), (2000, vec![0, 1, 777, 1999], 1, 100), (16, (0..16).collect(), 1, 100), (2000, vec![5], 150, 100)] {
            let mut f = fake(n, &poison, months, max);
            let cuts = block_on(write_bisecting(&mut f, n)).expect("no shutdown");
            assert_eq!(f.refused, poison, "n={n}: exactly the poison, in order");
            let good: Vec<usize> = (0..n).filter(|i| !poison.contains(i)).collect();
            assert_eq!(f.written, good, "n={n}: every other record once, in offset order");
            if poison.is_empty() && months <= max {
                assert_eq!(cuts, 0);
            }
            if months <= max && !poison.is_empty() && poison.len() < n {
                assert!(cuts <= poison.len() * (usize::BITS - n.leading_zeros()) as usize, "n={n}: O(k log n) cuts, got {cuts}");
            }
            assert_eq!(cursor_of(&f.manifest).done_upto, f.offsets[n - 1], "the unit is done");
            assert_eq!(cursor_of(&f.manifest).pending, None);
        }
    }

    /// A crash after any write, then a restart that resumes where the manifest says (as
    /// `pipeline::drain_partition` does: the innermost pending piece exactly, else the rest of
    /// the unit as a new unit), writes every record exactly once, and redoes exactly the piece
    /// that was cut short.
    #[test]
    fn restarts_at_any_point_write_every_record_once() {
        let (n, poison) = (64, vec![3, 40, 41]);
        let total = {
            let mut f = fake(n, &poison, 1, 100);
            block_on(write_bisecting(&mut f, n));
            f.writes
        };
        for crash in 0..total {
            let mut f = fake(n, &poison, 1, 100);
            f.crash_after = Some(crash);
            assert!(block_on(write_bisecting(&mut f, n)).is_none());
            f.crash_after = None;
            let crashed = f.crashed.expect("cut short");
            let mut first_resume = true;
            // resume until the whole unit is done
            loop {
                let c = cursor_of(&f.manifest);
                let rest: Vec<usize> = (0..n).filter(|i| f.offsets[*i] > c.done_upto).collect();
                let Some(&start) = rest.first() else { break };
                let end = match c.pending {
                    Some((_, last)) => rest.iter().take_while(|i| f.offsets[**i] <= last).count() + start,
                    None => n,
                };
                if std::mem::take(&mut first_resume) {
                    assert_eq!((f.offsets[start], f.offsets[end - 1]), crashed, "crash after {crash}: the piece cut short is redone exactly");
                }
                // a unit of its own: offsets start..end
                let mut sub = Fake { offsets: f.offsets[start..end].to_vec(), poison: poison.iter().filter(|p| (start..end).contains(*p)).map(|p| p - start).collect(), month: f.month[start..end].to_vec(), ..fake(0, &[], 1, 100) };
                sub.manifest = std::mem::take(&mut f.manifest);
                block_on(write_bisecting(&mut sub, end - start)).expect("no crash");
                f.manifest = sub.manifest;
                f.written.extend(sub.written.iter().map(|i| i + start));
                f.refused.extend(sub.refused.iter().map(|i| i + start));
            }
            let mut written = f.written.clone();
            written.sort();
            written.dedup();
            assert_eq!(written.len(), f.written.len(), "crash after {crash}: no record written twice");
            assert_eq!(written, (0..n).filter(|i| !poison.contains(i)).collect::<Vec<_>>(), "crash after {crash}: every good record");
        }
    }
}
