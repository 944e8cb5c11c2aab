-- sendtrace ClickHouse schema, version 18: delivery latency (`/v1/stats/latency`) without
-- reading every delivery of the tenant. The quantiles group the deliveries sent in a range;
-- `deliveries` is ordered by (tenant, delivery_key), so a month read all of the tenant's
-- deliveries with FINAL (146-158 ms on 10 M events, BENCHMARKS.md §5). `delivery_latency` holds
-- what the quantiles need, precomputed, in `delivery_order`'s order (tenant, first known time,
-- key): a range is a contiguous run, and it takes `delivery_order`'s tombstones as they are
-- (a delivery whose first known time moved is deleted at its old place), so `FINAL` holds each
-- delivery once, where it is now.
-- The send time is not the first known time (a delivery queued on Monday and sent on Friday is
-- known from Monday), so a read of sends in [from, to) also reads first known times from
-- `from - lag`, where `lag` bounds send time - first known time over every delivery version
-- ever stored (`delivery_send_lag`, kept by a view): exact, and a tenant's one delivery sent
-- weeks after it was queued only widens its reads.
CREATE TABLE IF NOT EXISTS delivery_latency
(
    tenant       LowCardinality(String),
    sort_at      Int64 COMMENT 'first known time, UTC ms (delivery_order.sort_at)',
    delivery_key String,
    channel      LowCardinality(String) DEFAULT '',
    provider     LowCardinality(String) DEFAULT '',
    broadcast_id Nullable(String) DEFAULT NULL,
    template_key Nullable(String) DEFAULT NULL,
    sent_at      Nullable(Int64) DEFAULT NULL COMMENT 'first sent, else first queued, UTC ms',
    to_delivered Int64 DEFAULT -1 COMMENT 'first delivered - sent_at, ms; -1 when either is missing',
    to_open      Int64 DEFAULT -1 COMMENT 'first human open - first delivered, ms; -1 when either is missing',
    version      UInt64,
    is_deleted   UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (tenant, sort_at, delivery_key)
SETTINGS non_replicated_deduplication_window = 10000
;
-- Per tenant, the most a delivery's send time was after its first known time (ms).
CREATE TABLE IF NOT EXISTS delivery_send_lag
(
    tenant LowCardinality(String),
    lag    SimpleAggregateFunction(max, Int64)
)
ENGINE = AggregatingMergeTree
ORDER BY tenant
;
CREATE MATERIALIZED VIEW IF NOT EXISTS delivery_latency_mv TO delivery_latency AS
SELECT tenant,
       toUnixTimestamp64Milli(least(status_at, ifNull(first_queued_at, status_at), ifNull(first_sent_at, status_at),
           ifNull(first_delivered_at, status_at), ifNull(first_bounced_at, status_at), ifNull(first_failed_at, status_at))) AS sort_at,
       delivery_key, channel, provider, broadcast_id, template_key,
       toUnixTimestamp64Milli(coalesce(first_sent_at, first_queued_at)) AS sent_at,
       ifNull(toUnixTimestamp64Milli(first_delivered_at) - sent_at, -1) AS to_delivered,
       ifNull(toUnixTimestamp64Milli(first_opened_at) - toUnixTimestamp64Milli(first_delivered_at), -1) AS to_open,
       version, toUInt8(0) AS is_deleted
FROM deliveries
;
-- The aggregator's tombstones, written into `delivery_order` where a delivery's first known time
-- was: the same key here.
CREATE MATERIALIZED VIEW IF NOT EXISTS delivery_latency_tombstones_mv TO delivery_latency AS
SELECT tenant, sort_at, delivery_key, version, is_deleted
FROM delivery_order
WHERE is_deleted = 1
;
CREATE MATERIALIZED VIEW IF NOT EXISTS delivery_send_lag_mv TO delivery_send_lag AS
SELECT tenant,
       max(toUnixTimestamp64Milli(assumeNotNull(coalesce(first_sent_at, first_queued_at))) - toUnixTimestamp64Milli(least(status_at,
           ifNull(first_queued_at, status_at), ifNull(first_sent_at, status_at), ifNull(first_delivered_at, status_at),
           ifNull(first_bounced_at, status_at), ifNull(first_failed_at, status_at)))) AS lag
FROM deliveries
WHERE first_sent_at IS NOT NULL OR first_queued_at IS NOT NULL
GROUP BY tenant
;
-- The deliveries already stored, their current version. Unconditional and safe to run again
-- (as while an aggregator writes): a row read here that the views also write, or wrote anew
-- since (a newer version, or a tombstone at the same key), has the same key and a version at
-- least as new, so FINAL keeps the newest. (Not only into an empty table, as `delivery_order`'s
-- backfill: a delivery the views wrote before this ran would have skipped the rest.)
INSERT INTO delivery_latency
SELECT tenant,
       toUnixTimestamp64Milli(least(status_at, ifNull(first_queued_at, status_at), ifNull(first_sent_at, status_at),
           ifNull(first_delivered_at, status_at), ifNull(first_bounced_at, status_at), ifNull(first_failed_at, status_at))) AS sort_at,
       delivery_key, channel, provider, broadcast_id, template_key,
       toUnixTimestamp64Milli(coalesce(first_sent_at, first_queued_at)) AS sent_at,
       ifNull(toUnixTimestamp64Milli(first_delivered_at) - sent_at, -1) AS to_delivered,
       ifNull(toUnixTimestamp64Milli(first_opened_at) - toUnixTimestamp64Milli(first_delivered_at), -1) AS to_open,
       version, toUInt8(0) AS is_deleted
FROM deliveries FINAL
;
-- (safe to run again: a max)
INSERT INTO delivery_send_lag
SELECT tenant,
       max(toUnixTimestamp64Milli(assumeNotNull(coalesce(first_sent_at, first_queued_at))) - toUnixTimestamp64Milli(least(status_at,
           ifNull(first_queued_at, status_at), ifNull(first_sent_at, status_at), ifNull(first_delivered_at, status_at),
           ifNull(first_bounced_at, status_at), ifNull(first_failed_at, status_at)))) AS lag
FROM deliveries FINAL
WHERE first_sent_at IS NOT NULL OR first_queued_at IS NOT NULL
GROUP BY tenant
