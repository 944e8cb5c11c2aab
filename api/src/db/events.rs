//! The activity feed: canonical events, newest first. An event's time and id never change, so
//! the keyset `(occurred_at, event_id)` is stable while new events arrive.
//!
//! `events` is ordered by `(tenant, event_id)`, so `FINAL` over a tenant's month merges all of it
//! before the newest 50 can be picked (0.8 s on the 10 M-event benchmark, BENCHMARKS.md §5).
//! The feed reads without `FINAL` instead, and asks `FINAL` only where it can change the answer:
//! 1. **candidates**: the newest row versions matching the filter, a top-N over the sort key
//!    (ClickHouse reads the other columns of the top N rows only).
//! 2. **the latest version**, `FINAL` over the primary key of the events that need it.
//!
//! Exact: the versions of one event row (a replayed copy not yet merged, a re-attributed copy)
//! differ only in attribution (`broadcast_id`, `sequence_id`, `contact_id`, `template_key`,
//! `message_class`) and `reattributed`; time, id, type and recipient are the same. So without
//! an attribution filter every version of a candidate matches too and lies next to it in the
//! sort order: an event seen once *is* its latest version; one seen more than once, or last in
//! a full candidate list (its other versions may lie past the limit), is read again with
//! `FINAL`. With an attribution filter, an older version may match while the latest does not:
//! every candidate is read again, with the filter applied after `FINAL`. A candidate dropped
//! that way takes a place, so the steps repeat after the last candidate until the page is full
//! or no candidate is left, asking for twice as many each time.

use super::{or_empty, Db};
use crate::error::ApiError;
use clickhouse::Row;
use runtime::in_list::in_lists;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct EventRow {
    pub event_id: String,
    pub occurred_at: i64,
    pub delivery_key: String,
    pub channel: String,
    pub provider: String,
    pub provider_event_name: String,
    pub event_type: String,
    pub bounce_class: String,
    pub machine: String,
    pub recipient: String,
    pub broadcast_id: Option<String>,
    pub sequence_id: Option<String>,
    pub template_key: Option<String>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub click_url: Option<String>,
    pub cost_amount: i128,
    pub cost_unit: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// UTC ms, inclusive.
    pub from: Option<i64>,
    /// UTC ms, exclusive.
    pub to: Option<i64>,
    pub event_types: Vec<String>,
    pub recipient: Option<String>,
    pub broadcast: Option<String>,
    pub template: Option<String>,
    pub sequence: Option<String>,
}

/// Candidates asked for beyond what the page still lacks (room for copies and moved events).
const SLACK: u32 = 16;
/// Most candidates one step asks for: each repeat asks twice as many, up to this.
const MAX_CANDIDATES: u32 = 20_000;

const COLUMNS: &str = "event_id, occurred_at, delivery_key, toString(channel) AS channel, toString(provider) AS provider, \
                       toString(provider_event_name) AS provider_event_name, toString(event_type) AS event_type, \
                       toString(bounce_class) AS bounce_class, toString(machine) AS machine, recipient, broadcast_id, sequence_id, \
                       template_key, error_code, error_reason, click_url, cost_amount, toString(cost_unit) AS cost_unit";

/// The page after `after` (exclusive): at most `limit` events, newest first.
pub async fn page(db: &Db, tenant: &str, f: &EventFilter, after: Option<(i64, String)>, limit: u32) -> Result<Vec<EventRow>, ApiError> {
    let attribution = [&f.broadcast, &f.template, &f.sequence].iter().any(|v| v.is_some());
    let mut out: Vec<EventRow> = Vec::with_capacity(limit.min(1024) as usize);
    let mut cursor = after;
    let mut want = limit.saturating_add(SLACK).min(MAX_CANDIDATES);
    while (out.len() as u32) < limit {
        let rows = candidates(db, tenant, f, cursor.as_ref(), want).await?;
        let full = rows.len() as u32 == want;
        let Some(last) = rows.last().map(|r| (r.occurred_at, r.event_id.clone())) else { break };
        // the candidates as events, (first row, versions): the versions of one are neighbours
        let mut events: Vec<(usize, usize)> = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            match events.last_mut() {
                Some((first, n)) if rows[*first].event_id == r.event_id && rows[*first].occurred_at == r.occurred_at => *n += 1,
                _ => events.push((i, 1)),
            }
        }
        let count = events.len();
        let settled = |k: usize, versions: usize| !attribution && versions == 1 && !(full && k + 1 == count);
        let unsettled: Vec<&EventRow> = events.iter().enumerate().filter(|(k, e)| !settled(*k, e.1)).map(|(_, e)| &rows[e.0]).collect();
        let mut latest: HashMap<String, EventRow> = match unsettled.is_empty() {
            true => HashMap::new(),
            false => latest(db, tenant, f, &unsettled).await?.into_iter().map(|r| (r.event_id.clone(), r)).collect(),
        };
        let mut rows = rows.into_iter();
        for (k, (_, versions)) in events.into_iter().enumerate() {
            let mut group = rows.by_ref().take(versions);
            let first = group.next().expect("an event has a row");
            group.for_each(drop);
            if (out.len() as u32) == limit {
                break;
            }
            if settled(k, versions) {
                out.push(first);
            } else if let Some(r) = latest.remove(&first.event_id) {
                out.push(r);
            } // else: its latest version no longer matches the filter
        }
        if !full {
            break; // no candidate left after these
        }
        cursor = Some(last);
        want = want.saturating_mul(2).min(MAX_CANDIDATES);
    }
    Ok(out)
}

/// Step 1: the newest row versions matching `f`, after `cursor` (without `FINAL`).
async fn candidates(db: &Db, tenant: &str, f: &EventFilter, cursor: Option<&(i64, String)>, want: u32) -> Result<Vec<EventRow>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE tenant = ? \
         AND toUnixTimestamp64Milli(occurred_at) >= ? AND toUnixTimestamp64Milli(occurred_at) < ? \
         AND (empty(?) OR has(CAST(? AS Array(String)), event_type)) AND (? = '' OR lower(recipient) = lower(?)) \
         AND (? = '' OR broadcast_id = ?) AND (? = '' OR template_key = ?) AND (? = '' OR sequence_id = ?) \
         AND (? = 0 OR (toUnixTimestamp64Milli(occurred_at), event_id) < (?, ?)) \
         ORDER BY occurred_at DESC, event_id DESC LIMIT ?"
    );
    let (has_cursor, cursor_at, cursor_id) = match cursor {
        Some((t, k)) => (1u8, *t, k.as_str()),
        None => (0u8, 0, ""),
    };
    let mut q = db.query(&sql).bind(tenant).bind(f.from.unwrap_or(0)).bind(f.to.unwrap_or(i64::MAX));
    q = q.bind(&f.event_types).bind(&f.event_types);
    for v in [&f.recipient, &f.broadcast, &f.template, &f.sequence] {
        q = q.bind(or_empty(v)).bind(or_empty(v));
    }
    q = q.bind(has_cursor).bind(cursor_at).bind(cursor_id).bind(want);
    db.run(q.fetch_all::<EventRow>()).await
}

/// Step 2: the latest version of each of `events` whose attribution matches `f`. The ids go
/// in `IN` lists of bounded size (`runtime::in_list`), one query each.
async fn latest(db: &Db, tenant: &str, f: &EventFilter, events: &[&EventRow]) -> Result<Vec<EventRow>, ApiError> {
    // PREWHERE on the primary key and the time before FINAL (every version of an event has
    // both): only the partitions and parts that can hold them are read
    let sql = format!(
        "SELECT {COLUMNS} FROM events FINAL \
         PREWHERE tenant = ? AND event_id IN ? AND toUnixTimestamp64Milli(occurred_at) >= ? AND toUnixTimestamp64Milli(occurred_at) <= ? \
         WHERE (? = '' OR broadcast_id = ?) AND (? = '' OR template_key = ?) AND (? = '' OR sequence_id = ?)"
    );
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let mut out = Vec::with_capacity(ids.len());
    let mut times = events.iter().map(|e| e.occurred_at);
    for chunk in in_lists(&ids) {
        let (oldest, newest) = times.by_ref().take(chunk.len()).fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        let mut q = db.events_final(&sql).bind(tenant).bind(chunk).bind(oldest).bind(newest);
        for v in [&f.broadcast, &f.template, &f.sequence] {
            q = q.bind(or_empty(v)).bind(or_empty(v));
        }
        out.extend(db.run(q.fetch_all::<EventRow>()).await?);
    }
    Ok(out)
}
