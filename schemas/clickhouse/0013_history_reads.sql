-- Soft-bounce history (`store::soft_bounce_history`, every batch holding a soft email bounce),
-- made to cost what a batch asks for instead of what the tenant has stored (BENCHMARKS.md §10).
-- It read `events FINAL WHERE tenant = ? AND channel = 'email' AND event_type = 'bounced' AND
-- bounce_class = 'soft' AND lower(recipient) IN (…)`; `events` is ordered by (tenant, event_id),
-- so only migration 8's `recipient_bf` (1 % false positives per address and granule) narrowed
-- it, and FINAL's exact mode widened it again: a batch with 100 soft-bounce addresses read about
-- two thirds of the tenant's history. `soft_bounces` holds only those events, ordered by
-- (tenant, address), so a read finds each address through the primary index. Filled by a view on
-- `events` inserts; versions of one event (a re-attributed copy, a replayed batch) share
-- (tenant, address, event_id) and collapse under FINAL. Same TTL as `events`, so a read sees
-- exactly what the old one saw.
CREATE TABLE IF NOT EXISTS soft_bounces
(
    tenant       LowCardinality(String),
    address      String COMMENT 'lower(recipient)',
    event_id     String,
    occurred_at  DateTime64(3, 'UTC'),
    delivery_key String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, address, event_id)
TTL toDateTime(occurred_at) + INTERVAL {events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 10000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS soft_bounces_mv TO soft_bounces AS
SELECT tenant, lower(recipient) AS address, event_id, occurred_at, delivery_key
FROM events
WHERE channel = 'email' AND event_type = 'bounced' AND bounce_class = 'soft'
;
-- The soft bounces already stored. Unconditional and safe to run again: a row the view has
-- already written, or an earlier run of this, is the same (tenant, address, event_id) and
-- collapses under FINAL.
INSERT INTO soft_bounces
SELECT tenant, lower(recipient) AS address, event_id, occurred_at, delivery_key
FROM events
WHERE channel = 'email' AND event_type = 'bounced' AND bounce_class = 'soft'
