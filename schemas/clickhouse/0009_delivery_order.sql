-- Deliveries in the order the API lists them: by first known time (the earliest of status,
-- queued, sent, delivered, bounced and failed times), newest first. `deliveries` is ordered by
-- delivery key, so a page of it sorted by time reads the whole tenant; this copy is ordered by
-- (tenant, sort_at, delivery_key), so a page reads a few granules in order, at any depth.
-- Filled by a view on `deliveries` inserts (every version of a delivery lands here too); when
-- a delivery's first known time changes, the aggregator writes a tombstone (`is_deleted = 1`,
-- a newer version) at its old place, so `FINAL` keeps each delivery exactly once, where it is now.
-- (Columns have defaults: a tombstone carries only the key, version and is_deleted.)
CREATE TABLE IF NOT EXISTS delivery_order
(
    tenant              LowCardinality(String),
    sort_at             Int64 COMMENT 'first known time, UTC ms',
    delivery_key        String,
    channel             LowCardinality(String) DEFAULT '',
    provider            LowCardinality(String) DEFAULT '',
    provider_message_id String DEFAULT '',
    recipient           String DEFAULT '',
    broadcast_id        Nullable(String) DEFAULT NULL,
    sequence_id         Nullable(String) DEFAULT NULL,
    template_key        Nullable(String) DEFAULT NULL,
    labels              Array(String) DEFAULT [],
    status              LowCardinality(String) DEFAULT '',
    status_at           DateTime64(3, 'UTC') DEFAULT 0,
    bounce_class        LowCardinality(String) DEFAULT '',
    first_sent_at       Nullable(DateTime64(3, 'UTC')) DEFAULT NULL,
    first_delivered_at  Nullable(DateTime64(3, 'UTC')) DEFAULT NULL,
    first_opened_at     Nullable(DateTime64(3, 'UTC')) DEFAULT NULL,
    first_clicked_at    Nullable(DateTime64(3, 'UTC')) DEFAULT NULL,
    open_count          UInt32 DEFAULT 0,
    click_count         UInt32 DEFAULT 0,
    machine_open_count  UInt32 DEFAULT 0,
    machine_click_count UInt32 DEFAULT 0,
    event_count         UInt32 DEFAULT 0,
    last_error          Nullable(String) DEFAULT NULL,
    cost_amount         Decimal(38, 10) DEFAULT 0,
    cost_unit           LowCardinality(String) DEFAULT '',
    version             UInt64,
    is_deleted          UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (tenant, sort_at, delivery_key)
SETTINGS non_replicated_deduplication_window = 10000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS delivery_order_mv TO delivery_order AS
SELECT tenant,
       toUnixTimestamp64Milli(least(status_at, ifNull(first_queued_at, status_at), ifNull(first_sent_at, status_at),
           ifNull(first_delivered_at, status_at), ifNull(first_bounced_at, status_at), ifNull(first_failed_at, status_at))) AS sort_at,
       delivery_key, channel, provider, provider_message_id, recipient, broadcast_id, sequence_id, template_key, labels, status,
       status_at, bounce_class, first_sent_at, first_delivered_at, first_opened_at, first_clicked_at, open_count, click_count,
       machine_open_count, machine_click_count, event_count, last_error, cost_amount, cost_unit, version, toUInt8(0) AS is_deleted
FROM deliveries
;
-- The deliveries already there (their current version only; run once: skipped when the copy holds rows).
INSERT INTO delivery_order
SELECT tenant,
       toUnixTimestamp64Milli(least(status_at, ifNull(first_queued_at, status_at), ifNull(first_sent_at, status_at),
           ifNull(first_delivered_at, status_at), ifNull(first_bounced_at, status_at), ifNull(first_failed_at, status_at))) AS sort_at,
       delivery_key, channel, provider, provider_message_id, recipient, broadcast_id, sequence_id, template_key, labels, status,
       status_at, bounce_class, first_sent_at, first_delivered_at, first_opened_at, first_clicked_at, open_count, click_count,
       machine_open_count, machine_click_count, event_count, last_error, cost_amount, cost_unit, version, toUInt8(0) AS is_deleted
FROM deliveries FINAL
WHERE (SELECT count() FROM delivery_order) = 0
;
