//! The activity feed: canonical events, newest first. An event's time and id never change, so
//! the keyset `(occurred_at, event_id)` is stable while new events arrive.
//!
//! `events` is ordered by `(tenant, event_id)`, so neither `FINAL` over a tenant's month (0.8 s
//! on the 10 M-event benchmark) nor a top-N over it without `FINAL` (106-161 ms: the sort
//! columns of the whole range are read) is quick. A page is read in two steps instead:
//! 1. **keys**: `(occurred_at, event_id)` of the newest row versions matching the filter. They
//!    come from the projection `events_by_time` (migration 20: those columns, the type and the
//!    attribution, ordered by time), read in order from the newest end: a few granules.
//! 2. **rows**: every version of those events, by primary key, without `FINAL`.
//!
//! A recipient's events (`recipient` is not in the projection) are few and lie in the granules
//! the table's `recipient_bf` index selects: they are read whole in one step, every version.
//!
//! Exact: the versions of one event row (a replayed copy not yet merged, a re-attributed copy)
//! differ only in attribution (`broadcast_id`, `sequence_id`, `contact_id`, `template_key`,
//! `message_class`) and `reattributed`; time, id, type and recipient are the same. So the keys
//! of every version of an event are equal and lie next to each other, and where the versions
//! read in step 2 are alike in every column shown, any of them is the latest. Where they differ
//! (a re-attributed event not yet merged), `FINAL` over those ids decides. The attribution
//! filter is applied to the latest version: an event whose older version matched while the
//! latest does not is dropped. A dropped event takes a place, so the steps repeat after the
//! last key until the page is full or no key is left, asking for twice as many each time.

use super::Db;
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
    let mut out: Vec<EventRow> = Vec::with_capacity(limit.min(1024) as usize);
    let mut cursor = after;
    let mut want = limit.saturating_add(SLACK).min(MAX_CANDIDATES);
    while (out.len() as u32) < limit {
        let round = match f.recipient.as_deref() {
            Some(r) => recipient_round(db, tenant, r, f, cursor.as_ref(), want).await?,
            None => keyed_round(db, tenant, f, cursor.as_ref(), want).await?,
        };
        let Some(Round { events, mut rows, last, full }) = round else { break };
        for k in &events {
            if (out.len() as u32) == limit {
                break;
            }
            match rows.remove(&k.event_id) {
                Some(r) if f.attribution_matches(&r) => out.push(r),
                _ => {} // its latest version no longer matches the filter
            }
        }
        if !full {
            break; // nothing left after these
        }
        cursor = Some(last);
        want = want.saturating_mul(2).min(MAX_CANDIDATES);
    }
    Ok(out)
}

impl EventFilter {
    /// Whether `r`'s attribution is the one asked for (the SQL's `broadcast_id = ?` and the
    /// others: equal strings, NULL matching nothing).
    fn attribution_matches(&self, r: &EventRow) -> bool {
        [(&self.broadcast, &r.broadcast_id), (&self.template, &r.template_key), (&self.sequence, &r.sequence_id)]
            .into_iter()
            .all(|(want, have)| want.as_ref().is_none_or(|w| have.as_ref() == Some(w)))
    }

    /// The optional filters and their conditions (the attribution ones if `attribution`).
    fn conditions(&self, attribution: bool) -> Vec<(&Option<String>, &'static str)> {
        let mut c = vec![(&self.recipient, " AND lower(recipient) = lower(?)")];
        if attribution {
            c.extend([(&self.broadcast, " AND broadcast_id = ?"), (&self.template, " AND template_key = ?"), (&self.sequence, " AND sequence_id = ?")]);
        }
        c
    }
}

/// The columns of a [`Key`], all in `events_by_time`.
const KEY_COLUMNS: &str = "occurred_at, event_id";

/// A row version's place in the feed.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
struct Key {
    occurred_at: i64,
    event_id: String,
}

/// One round of a page: its events in the feed's order, the latest version of each (by id; an
/// event missing there has none matching), the last key read and whether more may follow it.
struct Round {
    events: Vec<Key>,
    rows: HashMap<String, EventRow>,
    last: (i64, String),
    full: bool,
}

/// A round without a recipient filter: the keys from `events_by_time`, then the rows by id.
async fn keyed_round(db: &Db, tenant: &str, f: &EventFilter, cursor: Option<&(i64, String)>, want: u32) -> Result<Option<Round>, ApiError> {
    let sql = candidates_sql(KEY_COLUMNS, f, true, cursor.is_some());
    let mut keys = db.run(candidates(db, &sql, tenant, f, true, cursor, want).fetch_all::<Key>()).await?;
    let full = keys.len() as u32 == want;
    let Some(last) = keys.last().map(|k| (k.occurred_at, k.event_id.clone())) else { return Ok(None) };
    keys.dedup(); // the versions of one event are neighbours
    let rows = settle(db, tenant, None, by_id(db, tenant, None, &keys, false).await?, Vec::new()).await?;
    Ok(Some(Round { events: keys, rows, last, full }))
}

/// ClickHouse's plan of a round's key read (`EXPLAIN`, one line per row): what reads it, the
/// projection `events_by_time` or the table. For the tests: the feed never calls it.
pub async fn key_plan(db: &Db, tenant: &str, f: &EventFilter, cursor: Option<&(i64, String)>) -> Result<String, ApiError> {
    let sql = format!("EXPLAIN indexes = 1 {}", candidates_sql(KEY_COLUMNS, f, true, cursor.is_some()));
    let lines = db.run(candidates(db, &sql, tenant, f, true, cursor, 1).fetch_all::<String>()).await?;
    Ok(lines.join("\n"))
}

/// A round of one recipient's events: few rows, in the granules its bloom filter selects, so
/// they are read whole in one step, every version (the attribution filter is left to the
/// caller). An event is settled when its versions are alike, unless it is the last of a full
/// read (more of its versions may lie past the limit); the others are read again with `FINAL`.
async fn recipient_round(db: &Db, tenant: &str, recipient: &str, f: &EventFilter, cursor: Option<&(i64, String)>, want: u32) -> Result<Option<Round>, ApiError> {
    let sql = candidates_sql(COLUMNS, f, false, cursor.is_some());
    let versions = db.run(candidates(db, &sql, tenant, f, false, cursor, want).fetch_all::<EventRow>()).await?;
    let full = versions.len() as u32 == want;
    let Some(last) = versions.last().map(|r| (r.occurred_at, r.event_id.clone())) else { return Ok(None) };
    let mut events: Vec<Key> = versions.iter().map(|r| Key { occurred_at: r.occurred_at, event_id: r.event_id.clone() }).collect();
    events.dedup(); // the versions of one event are neighbours
    let unsure = if full { events.last().cloned().into_iter().collect() } else { Vec::new() };
    let rows = settle(db, tenant, Some(recipient), versions, unsure).await?;
    Ok(Some(Round { events, rows, last, full }))
}

/// The newest row versions matching `f` after `cursor`, newest first: `select` of them. The
/// SQL holds a condition only for a filter that is set (fixed fragments, values bound), so a
/// read of the keys names only columns `events_by_time` holds and ClickHouse answers from it.
/// Without `attribution`, the attribution filter is left out (every version is read).
fn candidates_sql(select: &str, f: &EventFilter, attribution: bool, cursor: bool) -> String {
    let mut sql = format!(
        "SELECT {select} FROM events WHERE tenant = ? \
         AND toUnixTimestamp64Milli(occurred_at) >= ? AND toUnixTimestamp64Milli(occurred_at) < ?"
    );
    if !f.event_types.is_empty() {
        sql.push_str(" AND has(?, event_type)");
    }
    for (v, c) in f.conditions(attribution) {
        if v.is_some() {
            sql.push_str(c);
        }
    }
    if cursor {
        // the first bounds the range of the key read; the second is the keyset's own condition
        sql.push_str(" AND toUnixTimestamp64Milli(occurred_at) <= ? AND (toUnixTimestamp64Milli(occurred_at), event_id) < (?, ?)");
    }
    sql.push_str(" ORDER BY occurred_at DESC, event_id DESC LIMIT ?");
    sql
}

/// `sql` of [`candidates_sql`] with its values bound, in the same order.
fn candidates(db: &Db, sql: &str, tenant: &str, f: &EventFilter, attribution: bool, cursor: Option<&(i64, String)>, want: u32) -> clickhouse::query::Query {
    let mut q = db.query(sql).bind(tenant).bind(f.from.unwrap_or(0)).bind(f.to.unwrap_or(i64::MAX));
    if !f.event_types.is_empty() {
        q = q.bind(&f.event_types);
    }
    for (v, _) in f.conditions(attribution) {
        if let Some(v) = v {
            q = q.bind(v);
        }
    }
    if let Some((at, id)) = cursor {
        q = q.bind(*at).bind(*at).bind(id.as_str());
    }
    q.bind(want)
}

/// The latest version of each event in `versions` (every version of each read), by event id:
/// where an event's versions are alike in every column shown, any of them is the latest; those
/// whose versions differ, and the `unsure` ones, are read again with `FINAL` (a `recipient`
/// narrowing that read, as in [`by_id`]).
async fn settle(db: &Db, tenant: &str, recipient: Option<&str>, versions: Vec<EventRow>, mut unsure: Vec<Key>) -> Result<HashMap<String, EventRow>, ApiError> {
    let mut out: HashMap<String, EventRow> = HashMap::with_capacity(versions.len());
    for r in versions {
        match out.get(&r.event_id) {
            None => {
                out.insert(r.event_id.clone(), r);
            }
            Some(seen) if *seen == r => {}
            Some(_) => unsure.push(Key { occurred_at: r.occurred_at, event_id: r.event_id }),
        }
    }
    if !unsure.is_empty() {
        unsure.sort_unstable_by(|a, b| (b.occurred_at, &b.event_id).cmp(&(a.occurred_at, &a.event_id)));
        unsure.dedup();
        for k in &unsure {
            out.remove(&k.event_id);
        }
        out.extend(by_id(db, tenant, recipient, &unsure, true).await?.into_iter().map(|r| (r.event_id.clone(), r)));
    }
    Ok(out)
}

/// The rows of the events keyed in `events`: every version, or (`last`) the latest under `FINAL`.
/// A `recipient` (every version of an event has the same) narrows the read to the granules
/// its bloom filter selects.
async fn by_id(db: &Db, tenant: &str, recipient: Option<&str>, events: &[Key], last: bool) -> Result<Vec<EventRow>, ApiError> {
    // PREWHERE on what every version of an event shares (primary key, time, recipient): only
    // the partitions, parts and granules that can hold them are read, under FINAL before it merges
    let sql = format!(
        "SELECT {COLUMNS} FROM events {} \
         PREWHERE tenant = ? AND event_id IN ? AND toUnixTimestamp64Milli(occurred_at) >= ? AND toUnixTimestamp64Milli(occurred_at) <= ?{}",
        if last { "FINAL" } else { "" },
        if recipient.is_some() { " AND lower(recipient) = lower(?)" } else { "" }
    );
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let mut out = Vec::with_capacity(ids.len());
    let mut times = events.iter().map(|e| e.occurred_at);
    for chunk in in_lists(&ids) {
        let (oldest, newest) = times.by_ref().take(chunk.len()).fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        // (under FINAL, a recipient's granules already hold every version: `Db::lookup`)
        let q = match (last, recipient.is_some()) {
            (true, true) => db.events_final(&sql).with_option("use_skip_indexes_if_final_exact_mode", "0"),
            (true, false) => db.events_final(&sql),
            (false, _) => db.query(&sql),
        };
        let mut q = q.bind(tenant).bind(chunk).bind(oldest).bind(newest);
        if let Some(r) = recipient {
            q = q.bind(r);
        }
        out.extend(db.run(q.fetch_all::<EventRow>()).await?);
    }
    Ok(out)
}
