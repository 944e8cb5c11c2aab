//! The suppression list as senders must honour it: the aggregator's entries (`suppressions
//! FINAL`, the strongest per address) combined with the changes made through the API
//! (`suppression_changes`, the API's only write).
//!
//! An address is suppressed when
//! * its `suppressions` entry is newer than its latest removal, or
//! * a suppressing event (complaint, hard bounce, unsubscribe) of it happened after its latest
//!   removal (a later hard bounce suppresses it again, even when the table keeps an older,
//!   stronger entry), or
//! * its latest manual add is newer than its latest removal.
//!
//! Soft-bounce entries come back only through a newer `suppressions` entry.

use super::{or_empty, Db};
use crate::error::ApiError;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// Events that suppress an address by themselves (aggregator/src/suppression.rs).
const SUPPRESSING: &str = "(event_type IN ('complained', 'unsubscribed') OR (event_type = 'bounced' AND bounce_class = 'hard'))";

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct SuppressionRow {
    pub address: String,
    pub scope: String,
    pub reason: String,
    pub channel: String,
    /// `event` (from the aggregator's rules) or `api` (added by hand).
    pub source: String,
    /// The event that caused it (empty for a manual add).
    pub event_id: String,
    pub occurred_at: i64,
    /// The key name that added it by hand (empty for `event`).
    pub who: String,
    /// Why it was added by hand (empty for `event`).
    pub note: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SuppressionFilter {
    pub scope: Option<String>,
    pub reason: Option<String>,
    /// Lower-cased prefix of the address.
    pub address_prefix: Option<String>,
    /// Exactly this (lower-cased) address.
    pub address: Option<String>,
}

/// The effective entries, by address ascending, after `after` (exclusive).
pub async fn page(db: &Db, tenant: &str, f: &SuppressionFilter, after: &str, limit: u32) -> Result<Vec<SuppressionRow>, ApiError> {
    let sql = format!(
        "SELECT address, scope, reason, channel, source, event_id, occurred_at, who, note FROM ( \
           SELECT address, \
             ev.event_id != '' AND (ev.occurred_at > ch.removed_at OR again.last_at > ch.removed_at) AS by_event, \
             ch.added_at > ch.removed_at AS by_hand, \
             if(by_event, toString(ev.scope), ch.added_scope) AS scope, \
             if(by_event, toString(ev.reason), 'manual') AS reason, \
             if(by_event, toString(ev.channel), '') AS channel, \
             if(by_event, 'event', 'api') AS source, \
             if(by_event, if(ev.occurred_at > ch.removed_at, ev.event_id, again.last_event), '') AS event_id, \
             toUnixTimestamp64Milli(if(by_event, if(ev.occurred_at > ch.removed_at, ev.occurred_at, again.last_at), ch.added_at)) AS occurred_at, \
             if(by_event, '', ch.added_by) AS who, if(by_event, '', ch.added_note) AS note \
           FROM (SELECT address, scope, reason, channel, event_id, occurred_at FROM suppressions FINAL \
                 WHERE tenant = ? AND startsWith(address, ?) AND (? = '' OR address = ?)) AS ev \
           FULL OUTER JOIN \
                (SELECT address, maxIf(at, action = 'removed') AS removed_at, maxIf(at, action = 'added') AS added_at, \
                   argMaxIf(scope, at, action = 'added') AS added_scope, argMaxIf(who, at, action = 'added') AS added_by, \
                   argMaxIf(note, at, action = 'added') AS added_note \
                 FROM suppression_changes FINAL WHERE tenant = ? AND startsWith(address, ?) AND (? = '' OR address = ?) GROUP BY address) AS ch USING (address) \
           LEFT JOIN \
                (SELECT lower(recipient) AS address, max(occurred_at) AS last_at, argMax(event_id, occurred_at) AS last_event FROM events \
                 WHERE tenant = ? AND {SUPPRESSING} AND lower(recipient) IN \
                   (SELECT address FROM suppression_changes WHERE tenant = ? AND action = 'removed' AND startsWith(address, ?) AND (? = '' OR address = ?)) \
                 GROUP BY address) AS again USING (address) \
           WHERE (by_event OR by_hand) AND address > ?) \
         WHERE (? = '' OR scope = ?) AND (? = '' OR reason = ?) \
         ORDER BY address LIMIT ?"
    );
    let prefix = or_empty(&f.address_prefix);
    let exact = or_empty(&f.address);
    let mut q = db.lookup(&sql);
    q = q.bind(tenant).bind(prefix).bind(exact).bind(exact);
    q = q.bind(tenant).bind(prefix).bind(exact).bind(exact);
    q = q.bind(tenant).bind(tenant).bind(prefix).bind(exact).bind(exact);
    q = q.bind(after);
    for v in [&f.scope, &f.reason] {
        q = q.bind(or_empty(v)).bind(or_empty(v));
    }
    db.run(q.bind(limit).fetch_all::<SuppressionRow>()).await
}

/// One change made through the API.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct ChangeRow {
    pub tenant: String,
    pub address: String,
    /// UTC ms.
    pub at: i64,
    pub change_id: String,
    /// `added` or `removed`.
    pub action: String,
    pub scope: String,
    pub note: String,
    pub who: String,
}

/// Appends changes; `token` makes a retried insert of the same changes a no-op.
pub async fn record(db: &Db, rows: &[ChangeRow], token: &str) -> Result<(), ApiError> {
    let client = db.client.clone().with_option("insert_deduplication_token", token).with_option("insert_deduplicate", "1");
    db.run(async move {
        let mut insert = client.insert::<ChangeRow>("suppression_changes").await?;
        for r in rows {
            insert.write(r).await?;
        }
        insert.end().await
    })
    .await
}

/// A change of one address (history).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct ChangeHistoryRow {
    pub at: i64,
    pub action: String,
    pub scope: String,
    pub note: String,
    pub who: String,
}

pub async fn changes(db: &Db, tenant: &str, address: &str, limit: u32) -> Result<Vec<ChangeHistoryRow>, ApiError> {
    let sql = "SELECT toUnixTimestamp64Milli(at) AS at, toString(action) AS action, toString(scope) AS scope, note, who \
               FROM suppression_changes FINAL WHERE tenant = ? AND address = ? ORDER BY at DESC, change_id DESC LIMIT ?";
    db.run(db.query(sql).bind(tenant).bind(address).bind(limit).fetch_all::<ChangeHistoryRow>()).await
}

/// A suppressing event of one address (history).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct SuppressingEventRow {
    pub occurred_at: i64,
    pub event_id: String,
    pub event_type: String,
    pub channel: String,
}

pub async fn suppressing_events(db: &Db, tenant: &str, address: &str, limit: u32) -> Result<Vec<SuppressingEventRow>, ApiError> {
    let sql = format!(
        "SELECT toUnixTimestamp64Milli(occurred_at) AS occurred_at, event_id, toString(event_type) AS event_type, toString(channel) AS channel \
         FROM events FINAL WHERE tenant = ? AND lower(recipient) = ? AND {SUPPRESSING} ORDER BY occurred_at DESC, event_id DESC LIMIT ?"
    );
    db.run(db.lookup(&sql).bind(tenant).bind(address).bind(limit).fetch_all::<SuppressingEventRow>()).await
}

/// The aggregator's own entry of one address (a soft-bounce entry has no single event).
pub async fn entry(db: &Db, tenant: &str, address: &str) -> Result<Option<SuppressingEntryRow>, ApiError> {
    let sql = "SELECT toUnixTimestamp64Milli(occurred_at) AS occurred_at, event_id, toString(reason) AS reason, toString(scope) AS scope \
               FROM suppressions FINAL WHERE tenant = ? AND address = ? LIMIT 1";
    db.run(db.query(sql).bind(tenant).bind(address).fetch_optional::<SuppressingEntryRow>()).await
}

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct SuppressingEntryRow {
    pub occurred_at: i64,
    pub event_id: String,
    pub reason: String,
    pub scope: String,
}
