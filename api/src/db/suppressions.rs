//! The suppression list (`suppressions FINAL`: the strongest entry per address).

use super::{or_empty, Db};
use crate::error::ApiError;
use clickhouse::Row;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct SuppressionRow {
    pub address: String,
    pub scope: String,
    pub reason: String,
    pub channel: String,
    /// The event that caused it.
    pub event_id: String,
    pub occurred_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SuppressionFilter {
    pub scope: Option<String>,
    pub reason: Option<String>,
    /// Lower-cased prefix of the address.
    pub address_prefix: Option<String>,
}

/// One page by address ascending, after `after` (exclusive).
pub async fn page(db: &Db, tenant: &str, f: &SuppressionFilter, after: &str, limit: u32) -> Result<Vec<SuppressionRow>, ApiError> {
    let sql = "SELECT address, toString(scope) AS scope, toString(reason) AS reason, toString(channel) AS channel, event_id, occurred_at \
               FROM suppressions FINAL WHERE tenant = ? AND (? = '' OR scope = ?) AND (? = '' OR reason = ?) \
               AND startsWith(address, lower(?)) AND address > ? ORDER BY address LIMIT ?";
    let mut q = db.query(sql).bind(tenant);
    for v in [&f.scope, &f.reason] {
        q = q.bind(or_empty(v)).bind(or_empty(v));
    }
    q = q.bind(or_empty(&f.address_prefix)).bind(after).bind(limit);
    db.run(q.fetch_all::<SuppressionRow>()).await
}
