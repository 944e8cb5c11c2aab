//! What the aggregator reads back from ClickHouse: the stored state of deliveries, their event
//! rows, suppression entries, soft-bounce history; keys sent in bounded `IN` lists.

use super::rows::{DeliveryRow, EventRow, SenderStats};
use super::write::SinkError;
use clickhouse::{Client, Row};
use serde::Deserialize;

use runtime::in_list::in_lists;
pub use runtime::in_list::{MAX_IN_LIST_BYTES, MAX_IN_LIST_KEYS};

/// Times a read: `sendtrace_aggregator_clickhouse_query_duration_seconds{query}` (with the
/// inserts' histogram, where a batch's ClickHouse time goes).
async fn timed<T>(query: &'static str, f: impl std::future::Future<Output = Result<T, SinkError>>) -> Result<T, SinkError> {
    let started = std::time::Instant::now();
    let out = f.await;
    metrics::histogram!("sendtrace_aggregator_clickhouse_query_duration_seconds", "query" => query).record(started.elapsed().as_secs_f64());
    out
}

/// A delivery's tenant and delivery key: both tables the state is read from are ordered by
/// `(tenant, …)`, so a read that names the tenant finds its keys through the primary index
/// instead of searching every tenant's range (2–4× faster on a million-row table on the
/// devstack engine, and the gap grows with the table; BENCHMARKS.md §10).
pub type TenantKey = (String, String);

/// `keys` by tenant (each tenant's keys once, in order).
fn by_tenant(keys: &[TenantKey]) -> std::collections::BTreeMap<&str, Vec<&str>> {
    let mut out: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (tenant, key) in keys {
        out.entry(tenant.as_str()).or_default().push(key.as_str());
    }
    for ks in out.values_mut() {
        ks.sort_unstable();
        ks.dedup();
    }
    out
}

/// Reads the stored state of `keys` (FINAL: the latest version of each).
pub async fn load_deliveries(client: &Client, keys: &[TenantKey]) -> Result<Vec<DeliveryRow>, SinkError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    timed("load_deliveries", load_deliveries_untimed(client, keys)).await
}

async fn load_deliveries_untimed(client: &Client, keys: &[TenantKey]) -> Result<Vec<DeliveryRow>, SinkError> {
    let mut out = Vec::new();
    for (tenant, keys) in by_tenant(keys) {
        for chunk in in_lists(&keys) {
            let q = client.query("SELECT ?fields FROM deliveries FINAL WHERE tenant = ? AND delivery_key IN ?").bind(tenant).bind(chunk);
            out.extend(q.fetch_all::<DeliveryRow>().await?);
        }
    }
    Ok(out)
}

/// The stored event rows of `keys` (FINAL: one per event id), by delivery key.
pub async fn load_events(client: &Client, keys: &[TenantKey]) -> Result<std::collections::HashMap<String, Vec<EventRow>>, SinkError> {
    if keys.is_empty() {
        return Ok(Default::default());
    }
    timed("load_events", load_events_untimed(client, keys)).await
}

async fn load_events_untimed(client: &Client, keys: &[TenantKey]) -> Result<std::collections::HashMap<String, Vec<EventRow>>, SinkError> {
    let mut out: std::collections::HashMap<String, Vec<EventRow>> = Default::default();
    for (tenant, keys) in by_tenant(keys) {
        for chunk in in_lists(&keys) {
            // `delivery_key_bf` (migration 8; 0.1 % false positives since migration 22) keeps the
            // granules holding one of the keys. FINAL's exact mode would then add every granule
            // whose primary-key range meets a kept one (in case an older version matched and a
            // newer did not): 55 granules of 89 instead of 10 for 4 keys at 1 %
            // (tests/tests/state_reads.rs). Every version of an event has its delivery's key, so
            // the kept granules hold every version of every event asked for.
            // (A recent setting: docker-compose pins ClickHouse 26.9, which has it; an old server may not.)
            let q = client
                .query("SELECT ?fields FROM events FINAL WHERE tenant = ? AND delivery_key IN ?")
                .bind(tenant)
                .bind(chunk)
                .with_option("use_skip_indexes_if_final_exact_mode", "0");
            for r in q.fetch_all::<EventRow>().await? {
                out.entry(r.delivery_key.to_string()).or_default().push(r);
            }
        }
    }
    Ok(out)
}

/// The current (strongest) suppression entries of `addresses` of `tenant`.
pub async fn load_suppressions(client: &Client, tenant: &str, addresses: &[String]) -> Result<Vec<crate::suppression::SuppressionRow>, SinkError> {
    let mut out = Vec::new();
    for chunk in in_lists(addresses) {
        out.extend(
            client
                .query("SELECT ?fields FROM suppressions FINAL WHERE tenant = ? AND address IN ?")
                .bind(tenant)
                .bind(chunk)
                .fetch_all::<crate::suppression::SuppressionRow>()
                .await?,
        );
    }
    Ok(out)
}

#[derive(Debug, Row, Deserialize)]
struct SoftBounceTimes {
    address: String,
    times: Vec<i64>,
}

/// Every stored soft email bounce time per address (lower-case) of `tenant` among `addresses`,
/// between `from_ms` and `to_ms` (UTC ms, inclusive): from `soft_bounces` (migration 13), ordered
/// by (tenant, address), so the read finds each address through the primary index instead of
/// scanning the tenant's `events`. The bounds compare the stored milliseconds themselves
/// (`fromUnixTimestamp64Milli` would clamp a bound past year 9999).
pub async fn soft_bounce_history(
    client: &Client,
    tenant: &str,
    addresses: &[String],
    (from_ms, to_ms): (i64, i64),
) -> Result<std::collections::HashMap<String, Vec<i64>>, SinkError> {
    let mut out = std::collections::HashMap::new();
    for chunk in in_lists(addresses) {
        let rows = client
            .query(
                "SELECT address, groupArray(toUnixTimestamp64Milli(occurred_at)) AS times \
                 FROM soft_bounces FINAL WHERE tenant = ? AND address IN ? \
                 AND toUnixTimestamp64Milli(occurred_at) BETWEEN ? AND ? GROUP BY address",
            )
            .bind(tenant)
            .bind(chunk)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all::<SoftBounceTimes>()
            .await?;
        out.extend(rows.into_iter().map(|r| (r.address, r.times)));
    }
    Ok(out)
}

/// One manifest row of `aggregator_offsets`.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct ManifestRow {
    pub first_offset: i64,
    pub last_offset: i64,
    pub state: String,
}

/// A partition's manifests that matter for resuming (`offsets::cursor_of`): its last `done`
/// range and the `pending` ranges that end after it.
pub async fn load_manifests(client: &Client, group: &str, topic: &str, partition: i32) -> Result<Vec<ManifestRow>, SinkError> {
    let mut rows = client
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
    let done_upto = rows.first().map_or(-1, |r| r.last_offset);
    rows.extend(
        client
            .query(
                "SELECT first_offset, last_offset, state FROM aggregator_offsets \
                 WHERE consumer_group = ? AND topic = ? AND partition = ? AND state = 'pending' AND last_offset > ?",
            )
            .bind(group)
            .bind(topic)
            .bind(partition)
            .bind(done_upto)
            .fetch_all::<ManifestRow>()
            .await?,
    );
    Ok(rows)
}

/// A partition's newest claim, (epoch, writer): the greatest epoch, then the greatest writer
/// (two writers that claimed at once with the same epoch: one of them wins, as both see).
/// Timed as `newest_claim` (`sendtrace_aggregator_clickhouse_query_duration_seconds`): it runs
/// once per batch, the fence's cost.
pub async fn newest_claim(client: &Client, group: &str, topic: &str, partition: i32) -> Result<Option<(u64, String)>, SinkError> {
    timed("newest_claim", newest_claim_untimed(client, group, topic, partition)).await
}

async fn newest_claim_untimed(client: &Client, group: &str, topic: &str, partition: i32) -> Result<Option<(u64, String)>, SinkError> {
    #[derive(Debug, Row, Deserialize)]
    struct Newest {
        epoch: u64,
        writer: String,
    }
    let rows = client
        .query(
            "SELECT epoch, writer FROM aggregator_claims \
             WHERE consumer_group = ? AND topic = ? AND partition = ? \
             ORDER BY epoch DESC, writer DESC LIMIT 1",
        )
        .bind(group)
        .bind(topic)
        .bind(partition)
        .fetch_all::<Newest>()
        .await?;
    Ok(rows.into_iter().next().map(|r| (r.epoch, r.writer)))
}

/// The sender-health flags as last written (by any aggregator), by sender key.
pub async fn load_health_flags(client: &Client) -> Result<std::collections::HashMap<String, bool>, SinkError> {
    #[derive(Debug, Row, Deserialize)]
    struct FlagRow {
        tenant: String,
        provider: String,
        sending_domain: String,
        sending_account: String,
        flagged: u8,
    }
    let rows = client.query("SELECT tenant, provider, sending_domain, sending_account, flagged FROM sender_health FINAL").fetch_all::<FlagRow>().await?;
    Ok(rows.into_iter().map(|f| (format!("{}/{}/{}/{}", f.tenant, f.provider, f.sending_domain, f.sending_account), f.flagged == 1)).collect())
}

/// Exact sender counts over the last `window_hours` from the deduplicated event rows: what
/// sender health is judged on.
pub async fn sender_stats(client: &Client, window_hours: u32) -> Result<Vec<SenderStats>, SinkError> {
    Ok(client.query(&sender_stats_sql(window_hours)).fetch_all::<SenderStats>().await?)
}

/// The statement of [`sender_stats`] (tests compare it with a brute-force count).
pub fn sender_stats_sql(window_hours: u32) -> String {
    format!(
        "SELECT tenant, provider, \
           coalesce(nullIf(JSONExtractString(metadata, 'from_domain'), ''), nullIf(splitByChar('@', JSONExtractString(metadata, 'from'))[2], ''), '') AS sending_domain, \
           JSONExtractString(metadata, 'sending_account') AS sending_account, \
           uniqExactIf(delivery_key, event_type IN ('sent', 'delivered', 'bounced', 'complained', 'opened', 'clicked')) AS sent, \
           uniqExactIf(delivery_key, event_type = 'bounced' AND bounce_class = 'hard') AS hard_bounces, \
           uniqExactIf(delivery_key, event_type = 'complained') AS complaints \
         FROM events FINAL \
         WHERE occurred_at >= now64(3) - INTERVAL {window_hours} HOUR AND channel = 'email' \
         GROUP BY tenant, provider, sending_domain, sending_account"
    )
}
