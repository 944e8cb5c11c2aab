-- What the read API needs beyond the write path's tables: fast lookups and small aggregates.
-- `event_times`: the newest event time per tenant (`as_of` of every stats answer), kept by a
-- view on `events` inserts instead of a max() over the tenant's events per request.
CREATE TABLE IF NOT EXISTS event_times
(
    tenant LowCardinality(String),
    newest SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY tenant
;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_times_mv TO event_times AS
SELECT tenant, max(occurred_at) AS newest FROM events GROUP BY tenant
;
-- Rows inserted before the view existed (a second copy of a row changes no max).
INSERT INTO event_times SELECT tenant, max(occurred_at) FROM events GROUP BY tenant
;
-- One delivery's chronology and one recipient's events: bloom filters over the granules of
-- `events` (ordered by event id, so a delivery's events are spread over the table).
ALTER TABLE events ADD INDEX IF NOT EXISTS delivery_key_bf delivery_key TYPE bloom_filter(0.01) GRANULARITY 1
;
ALTER TABLE events ADD INDEX IF NOT EXISTS recipient_bf lower(recipient) TYPE bloom_filter(0.01) GRANULARITY 1
;
ALTER TABLE events MATERIALIZE INDEX delivery_key_bf
;
ALTER TABLE events MATERIALIZE INDEX recipient_bf
;
-- Deliveries by status and by the quarter hour of their first known time (the earliest of
-- their status, queued, sent, delivered, bounced and failed times), signed: when a delivery's
-- status or first known time changes, the aggregator writes -1 for the old pair and +1 for
-- the new one, so `sum(deliveries)` always equals a count over `deliveries FINAL`. The API's
-- `provisional` share reads it; quarter hours, since every zone's midnight falls on one.
CREATE TABLE IF NOT EXISTS delivery_status_counts
(
    tenant     LowCardinality(String),
    bucket     DateTime64(3, 'UTC') COMMENT 'quarter hour of the first known time',
    status     LowCardinality(String),
    deliveries Int64
)
ENGINE = SummingMergeTree(deliveries)
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, bucket, status)
SETTINGS non_replicated_deduplication_window = 10000
;
INSERT INTO delivery_status_counts
SELECT tenant,
       toStartOfFifteenMinutes(least(status_at, ifNull(first_queued_at, status_at), ifNull(first_sent_at, status_at),
           ifNull(first_delivered_at, status_at), ifNull(first_bounced_at, status_at), ifNull(first_failed_at, status_at))) AS bucket,
       status, toInt64(count())
FROM deliveries FINAL
WHERE (SELECT count() FROM delivery_status_counts) = 0
GROUP BY tenant, bucket, status
;
