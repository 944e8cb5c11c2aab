//! Funnels per broadcast, sequence and template as signed sums (`funnels`, `funnel_recipients`,
//! migration 17; deliveries by status, `funnel_statuses`, migration 19): when a batch changes a delivery, what it counted for (its attribution, cost
//! unit, status, counts) is taken back (-1) and what it counts for now is added (+1), as
//! `delivery_status_counts` does for statuses. So `sum()` over a funnel's rows always equals the
//! same count over `deliveries FINAL`, and the API's funnels read a few rows per id instead of
//! every delivery of the tenant (BENCHMARKS.md §5). Exact under replays and crashes as the
//! status counts are: a replayed batch recomputes the same moves from the state reloaded as the
//! `deliveries` insert left it, and writes them under the same token (`pipeline::write_rows`).

use crate::state::{DeliveryState, Names, Slot};
use crate::store::rowbinary::{Cursor, Reader, Room, RowBuffer};
use crate::store::Text;
use rustc_hash::FxHashMap;
use schemas::EventType;

/// The columns of `funnels`, in the order [`FunnelTables::write_rowbinary`] writes them.
pub const FUNNEL_COLUMNS: &[&str] = &[
    "tenant",
    "dimension",
    "id",
    "cost_unit",
    "deliveries",
    "sent",
    "delivered",
    "opened_human",
    "opened_all",
    "opens_human",
    "opens_all",
    "clicked_human",
    "clicked_all",
    "clicks_human",
    "clicks_all",
    "hard_bounces",
    "complaints",
    "unsubscribes",
    "failed",
    "cost_amount",
    "last_status_at",
    "changes",
];

/// The columns of `funnel_recipients`.
pub const RECIPIENT_COLUMNS: &[&str] = &["tenant", "dimension", "id", "recipient", "deliveries"];

/// The columns of `funnel_statuses` (migration 19).
pub const STATUS_COLUMNS: &[&str] = &["tenant", "dimension", "id", "status", "deliveries"];

/// How many statuses a delivery can have: `EventType`'s variants, counted by discriminant.
pub const STATUSES: usize = EventType::VALUES.len();

/// The status of discriminant `i` (`EventType as u8`; `VALUES` lists them in that order, a test
/// checks it).
fn status_name(i: usize) -> &'static str {
    EventType::VALUES.get(i).map_or("unknown", |v| v.as_str())
}

/// What a funnel is grouped by: the `dimension` column (`Enum8`, these values).
pub const DIMENSIONS: [(i8, &str); 3] = [(1, "broadcast"), (2, "sequence"), (3, "template")];

/// The counts in a funnel's row, in `FUNNEL_COLUMNS`' order from `deliveries` to `failed`.
const COUNTS: usize = 15;

/// What a delivery counts for in its funnels, read from its state as a batch first changes the
/// delivery and again as the batch ends: the first taken back (-1), the second added (+1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// Interned broadcast, sequence, template (0 = none).
    pub attribution: [u32; 3],
    pub cost_unit: u32,
    /// The cost mantissa at scale 10 (0 without a unit), as two words (an `i128` would align
    /// the struct, and so its size, to 16 bytes).
    cost: [u64; 2],
    /// The status's first time (the row's `status_at`).
    pub status_at: i64,
    /// Human opens, all opens, human clicks, all clicks.
    engagement: [u32; 4],
    /// Sent or delivered, delivered, and the status (`EventType` as a byte).
    sent: bool,
    delivered: bool,
    status: u8,
}

impl Facts {
    #[inline]
    pub fn of(s: &DeliveryState) -> Facts {
        let status = s.status.unwrap_or(EventType::Unknown);
        let (opens, clicks) = (s.open_count, s.click_count);
        let delivered = s.time(Slot::FirstDelivered).is_some();
        let cost = if s.cost_unit == 0 { 0 } else { s.cost_amount() };
        Facts {
            attribution: [s.broadcast_id, s.sequence_id, s.template_key],
            cost_unit: s.cost_unit,
            cost: [cost as u64, (cost >> 64) as u64],
            status_at: s.first(status).unwrap_or_default(),
            engagement: [opens, opens.saturating_add(s.machine_open_count), clicks, clicks.saturating_add(s.machine_click_count)],
            sent: delivered || s.time(Slot::FirstSent).is_some(),
            delivered,
            status: status as u8,
        }
    }

    fn cost(&self) -> i128 {
        (i128::from(self.cost[1] as i64) << 64) | i128::from(self.cost[0])
    }

    /// The row's counts (`COUNTS`).
    fn counts(&self) -> [i64; COUNTS] {
        let b = |x: bool| x as i64;
        let [o, oa, c, ca] = self.engagement.map(i64::from);
        let is = |t: EventType| b(self.status == t as u8);
        [
            1,
            b(self.sent),
            b(self.delivered),
            b(o > 0),
            b(oa > 0),
            o,
            oa,
            b(c > 0),
            b(ca > 0),
            c,
            ca,
            is(EventType::Bounced),
            is(EventType::Complained),
            is(EventType::Unsubscribed),
            is(EventType::Failed),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_named_by_its_discriminant() {
        for v in EventType::VALUES {
            assert_eq!(status_name(*v as usize), v.as_str());
        }
    }

    #[test]
    fn facts_are_one_line_and_keep_a_wide_cost() {
        assert_eq!(std::mem::size_of::<Facts>(), 64);
        for c in [0i128, 1, -1, i64::MAX as i128 + 1, -(i64::MAX as i128) - 7, i128::MAX, i128::MIN] {
            let f = Facts { cost: [c as u64, (c >> 64) as u64], ..Facts::default() };
            assert_eq!(f.cost(), c);
        }
    }
}

/// One funnel row's sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub counts: [i64; COUNTS],
    pub cost: i128,
    /// The latest `status_at` added (+1) here: a funnel's last activity.
    pub last_status_at: i64,
    /// How many changes were summed here (never 0, so a merge never drops the row and its
    /// `last_status_at`, as SummingMergeTree drops a row whose sums are all 0).
    pub changes: u64,
    /// Deliveries by status (`EventType as u8`): `funnel_statuses`, the broadcast report's
    /// counts by status.
    pub statuses: [i64; STATUSES],
}

impl Sums {
    /// A delivery's facts taken back (`sign` -1) or added (+1): one change. Inlined where it
    /// is called, each call with its constant sign: the counts added or subtracted, no
    /// multiplication and no test of the sign (a call was ~140 instructions; BENCHMARKS.md §1b).
    #[inline(always)]
    fn add_facts(&mut self, f: &Facts, sign: i64) {
        for (sum, n) in self.counts.iter_mut().zip(f.counts()) {
            *sum += sign * n;
        }
        self.cost += i128::from(sign) * f.cost();
        if sign > 0 {
            self.last_status_at = self.last_status_at.max(f.status_at);
        }
        if let Some(n) = self.statuses.get_mut(usize::from(f.status)) {
            *n += sign;
        }
        self.changes += 1;
    }

    fn add(&mut self, o: &Sums) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        for (a, b) in self.statuses.iter_mut().zip(o.statuses) {
            *a += b;
        }
        self.cost += o.cost;
        self.last_status_at = self.last_status_at.max(o.last_status_at);
        self.changes += o.changes;
    }
}

/// A batch's sums' key: tenant, (broadcast, sequence, template), currency, all interned.
type Key = (u32, [u32; 3], u32);

/// A batch's funnel rows: sums by `Key` (one entry per change, however many of the three ids
/// the delivery has; spread into a row per id as the batch ends), and the recipients moved in
/// or out of an id (new deliveries, changed attribution).
#[derive(Debug, Default)]
pub struct FunnelTables<'a> {
    sums: FxHashMap<Key, Sums>,
    recipients: Vec<(u32, i8, u32, Text<'a>, i64)>,
}

/// [`FunnelTables`]' rows as the inserts send them (`RowBinary`), written by `finish` while the
/// names are at hand: `funnels` (tenant, dimension, id, cost unit, sums; in the map's order: the
/// order of a batch's rows in one INSERT means nothing, its token deduplicates the batch and the
/// table sums by key), `funnel_recipients` (tenant, dimension, id, recipient, -1 or +1) and
/// `funnel_statuses` (tenant, dimension, id, status, deliveries moved in or out: the sums'
/// non-zero statuses). Why: rows of `Text` took a shared name per column (an atomic count up,
/// and down as the rows were dropped), then were written as these bytes anyway
/// (BENCHMARKS.md §1b, "the funnels' rows written as they are summed"). `sums`, `recipients`
/// and `statuses` read them back.
#[derive(Debug, Default)]
pub struct FunnelRows {
    funnels: RowBuffer,
    recipients: RowBuffer,
    statuses: RowBuffer,
}

impl<'a> FunnelTables<'a> {
    /// A delivery of tenant `tenant` (interned) changed by the batch: what it counted for
    /// before (`before`, read from its state as the batch first changed it; `None` when new) is
    /// taken back and what it counts for now added, unless they are the same; its recipient
    /// (lower case) moves between ids when its attribution changed.
    #[inline]
    pub fn change(&mut self, tenant: u32, before: Option<&Facts>, now: &Facts, recipient: impl FnOnce() -> Text<'a>) {
        if before == Some(now) {
            return;
        }
        match before {
            // (one lookup for both when the key is the same, as for most changes: two were
            // ~200 instructions each; BENCHMARKS.md §1b, "the funnels' sums")
            Some(b) if (b.attribution, b.cost_unit) == (now.attribution, now.cost_unit) => self.sum_moved(tenant, b, now),
            Some(b) => {
                self.sum(tenant, b, -1);
                self.sum(tenant, now, 1);
            }
            None => self.sum(tenant, now, 1),
        }
        let was = before.map_or([0; 3], |b| b.attribution);
        if was != now.attribution {
            let r = recipient();
            for (k, (dim, _)) in DIMENSIONS.iter().enumerate() {
                let (old, new) = (was[k], now.attribution[k]);
                if old != new {
                    if old != 0 {
                        self.recipients.push((tenant, *dim, old, r.clone(), -1));
                    }
                    if new != 0 {
                        self.recipients.push((tenant, *dim, new, r.clone(), 1));
                    }
                }
            }
        }
    }

    #[inline]
    fn sum(&mut self, tenant: u32, f: &Facts, sign: i64) {
        if f.attribution == [0; 3] {
            return;
        }
        self.sums.entry((tenant, f.attribution, f.cost_unit)).or_default().add_facts(f, sign);
    }

    /// `sum(before, -1)` then `sum(now, 1)` for facts of the same key, in one lookup.
    #[inline]
    fn sum_moved(&mut self, tenant: u32, before: &Facts, now: &Facts) {
        if now.attribution == [0; 3] {
            return;
        }
        let e = self.sums.entry((tenant, now.attribution, now.cost_unit)).or_default();
        e.add_facts(before, -1);
        e.add_facts(now, 1);
    }

    /// The rows, a row per (tenant, dimension, id, cost unit), their names' text from `names`.
    /// (The statuses summed per id here too: written per key, before summing by id, they were
    /// more rows and ~150 more instructions per event; BENCHMARKS.md §5.)
    pub fn finish(self, names: &Names) -> FunnelRows {
        let mut by_id: FxHashMap<(u32, i8, u32, u32), Sums> = FxHashMap::with_capacity_and_hasher(self.sums.len() * DIMENSIONS.len(), Default::default());
        for ((tenant, ids, unit), s) in &self.sums {
            for ((dim, _), id) in DIMENSIONS.iter().zip(ids) {
                if *id != 0 {
                    by_id.entry((*tenant, *dim, *id, *unit)).or_default().add(s);
                }
            }
        }
        let mut rows = FunnelRows::default();
        let b = &mut rows.funnels.bytes;
        b.reserve(by_id.len() * SUMS_ROOM);
        let mut b = Cursor::new(b);
        for ((t, dim, id, unit), s) in &by_id {
            let (dim, cost, at, changes) = (dim.to_le_bytes(), s.cost.to_le_bytes(), s.last_status_at.to_le_bytes(), s.changes.to_le_bytes());
            let mut r = b.room_for(SUMS_ROOM);
            r.str(names.get(*t));
            r.put(dim);
            r.str(names.get(*id));
            r.str(names.get(*unit));
            for n in s.counts {
                r.put(n.to_le_bytes());
            }
            r.put(cost);
            r.put(at);
            r.put(changes);
        }
        drop(b);
        rows.funnels.rows = by_id.len();
        let moved: usize = by_id.values().map(|s| s.statuses.iter().filter(|n| **n != 0).count()).sum();
        // (room for rows of ~64 bytes made once: grown from empty, each doubling copied them)
        rows.statuses.bytes.reserve(moved * 64 + MOVE_ROOM);
        let mut b = Cursor::new(&mut rows.statuses.bytes);
        for ((t, d, id, _), s) in &by_id {
            for (k, n) in s.statuses.iter().enumerate().filter(|(_, n)| **n != 0) {
                write_move(&mut b, names.get(*t), *d, names.get(*id), status_name(k), *n);
            }
        }
        drop(b);
        rows.statuses.rows = moved;
        rows.recipients.bytes.reserve(self.recipients.len() * 64 + MOVE_ROOM);
        let mut b = Cursor::new(&mut rows.recipients.bytes);
        for (t, d, id, r, n) in &self.recipients {
            write_move(&mut b, names.get(*t), *d, names.get(*id), r, *n);
        }
        drop(b);
        rows.recipients.rows = self.recipients.len();
        rows
    }
}

/// A `funnels` row's most bytes: three strings, the dimension, the counts, the cost, the last
/// status time and the changes.
const SUMS_ROOM: usize = 3 * Room::STR + 1 + 8 * COUNTS + 16 + 8 + 8;

/// A `funnel_recipients` or `funnel_statuses` row's most bytes (`write_move`).
const MOVE_ROOM: usize = 3 * Room::STR + 1 + 8;

/// A row of (tenant, dimension, id, a text key, signed count): `funnel_recipients`' and
/// `funnel_statuses`' columns.
#[inline]
fn write_move(b: &mut Cursor<'_>, tenant: &str, dim: i8, id: &str, key: &str, n: i64) {
    let mut r = b.room_for(MOVE_ROOM);
    r.str(tenant);
    r.put(dim.to_le_bytes());
    r.str(id);
    r.str(key);
    r.put(n.to_le_bytes());
}

impl FunnelRows {
    /// Moves the rows into `funnels`, `recipients` and `statuses`: an empty one (as
    /// `BatchRows::write_rowbinary` clears them) trades buffers with this one, no copy (a copy
    /// was ~90 bytes per event); one with rows gets these appended. Leaves these empty.
    pub fn move_into(&mut self, funnels: &mut RowBuffer, recipients: &mut RowBuffer, statuses: &mut RowBuffer) {
        for (from, to) in [(&mut self.funnels, funnels), (&mut self.recipients, recipients), (&mut self.statuses, statuses)] {
            if to.bytes.is_empty() {
                std::mem::swap(&mut from.bytes, &mut to.bytes);
                to.rows = from.rows;
            } else {
                to.bytes.extend_from_slice(&from.bytes);
                to.rows += from.rows;
            }
            from.clear();
        }
    }

    /// The `funnels` rows, read back: (tenant, dimension, id, cost unit, sums; `Sums::statuses`
    /// are in `statuses`).
    pub fn sums(&self) -> Vec<(String, i8, String, String, Sums)> {
        read_rows(&self.funnels, "funnels", |r| {
            let (t, dim, id, unit) = (r.str()?.to_string(), i8::from_le_bytes(r.le()?), r.str()?.to_string(), r.str()?.to_string());
            let mut s = Sums::default();
            for n in &mut s.counts {
                *n = i64::from_le_bytes(r.le()?);
            }
            s.cost = i128::from_le_bytes(r.le()?);
            s.last_status_at = i64::from_le_bytes(r.le()?);
            s.changes = u64::from_le_bytes(r.le()?);
            Some((t, dim, id, unit, s))
        })
    }

    /// The `funnel_recipients` rows, read back: (tenant, dimension, id, recipient, -1 or +1).
    pub fn recipients(&self) -> Vec<(String, i8, String, String, i64)> {
        read_moves(&self.recipients)
    }

    /// The `funnel_statuses` rows, read back: (tenant, dimension, id, status, deliveries).
    pub fn statuses(&self) -> Vec<(String, i8, String, String, i64)> {
        read_moves(&self.statuses)
    }
}

/// Rows of `write_move`'s columns, read back.
fn read_moves(b: &RowBuffer) -> Vec<(String, i8, String, String, i64)> {
    read_rows(b, "moves", |r| Some((r.str()?.to_string(), i8::from_le_bytes(r.le()?), r.str()?.to_string(), r.str()?.to_string(), i64::from_le_bytes(r.le()?))))
}

/// Every row of `b`, each read by `read` (the rows `finish` wrote: one it cannot read is a bug).
fn read_rows<T>(b: &RowBuffer, table: &str, mut read: impl FnMut(&mut Reader<'_>) -> Option<T>) -> Vec<T> {
    let mut r = Reader(&b.bytes);
    let mut rows = Vec::with_capacity(b.rows);
    while !r.is_empty() {
        rows.push(read(&mut r).unwrap_or_else(|| panic!("a {table} row as `finish` wrote it")));
    }
    rows
}
