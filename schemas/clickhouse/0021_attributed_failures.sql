-- Bounce reasons of one broadcast or template (`/v1/stats/bounces?broadcast=…`, the API's
-- `db/insights.rs`) must count each bounced or failed event under its *latest* attribution: a
-- send record arriving after its delivery's provider events re-attributes them (the aggregator
-- writes the event rows again). `failures` (migration 15) has no attribution, so the filtered
-- answer read `events FINAL` over the tenant's range: 214-254 ms for 30 days on the 10 M-event
-- benchmark (BENCHMARKS.md §5), against ~30 ms from this copy.
--
-- `attributed_failures` is `failures` with the attribution columns and a version, so `FINAL`
-- keeps each event's latest version by version rather than by which row was inserted last:
-- * rows from the view carry the time ClickHouse wrote their event row (`inserted_at`, in ms),
--   so a later version of an event row has a higher or equal version (equal: within one
--   millisecond, where the last inserted wins, as it does in `events`; the server's clock stepping
--   back between two writes of one event row is the one case where the two could differ);
-- * rows of the backfill carry version 0: it copies `events FINAL` as it stands, and any event
--   row written while it runs reaches this table through the view with a higher version, so a
--   backfill that lands after it cannot hide it. (`inserted_at` itself cannot order those: rows
--   written before migration 11 read its default, the time of the read.)
-- `failures` stays filled for readers of the schema before this one (an API not yet upgraded,
-- analysts' queries); the API reads this table. Keeping both costs ClickHouse one more part per
-- `events` insert: ~5 ms on a 2,500-event insert here (36 against 41 ms, four rounds of ten);
-- a later migration can drop `failures` and `failures_mv` once nothing reads them.
CREATE TABLE IF NOT EXISTS attributed_failures
(
    tenant        LowCardinality(String),
    occurred_at   DateTime64(3, 'UTC'),
    event_id      String,
    delivery_key  String,
    channel       LowCardinality(String),
    provider      LowCardinality(String),
    event_type    LowCardinality(String),
    bounce_class  LowCardinality(String),
    recipient     String,
    error_code    Nullable(String),
    error_reason  Nullable(String),
    broadcast_id  Nullable(String),
    sequence_id   Nullable(String),
    template_key  Nullable(String),
    version       UInt64 COMMENT 'the event row''s write time in ms (0: copied by the migration''s backfill): the highest is the latest'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, occurred_at, event_id)
TTL toDateTime(occurred_at) + INTERVAL {events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 10000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS attributed_failures_mv TO attributed_failures AS
SELECT tenant, occurred_at, event_id, delivery_key, channel, provider, event_type, bounce_class, recipient, error_code, error_reason,
       broadcast_id, sequence_id, template_key, toUInt64(toUnixTimestamp64Milli(inserted_at)) AS version
FROM events
WHERE event_type IN ('bounced', 'failed')
;
INSERT INTO attributed_failures
SELECT tenant, occurred_at, event_id, delivery_key, channel, provider, event_type, bounce_class, recipient, error_code, error_reason,
       broadcast_id, sequence_id, template_key, toUInt64(0) AS version
FROM events FINAL
WHERE event_type IN ('bounced', 'failed')
SETTINGS do_not_merge_across_partitions_select_final = 1
