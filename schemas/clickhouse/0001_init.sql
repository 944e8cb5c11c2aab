-- sendtrace ClickHouse schema, version 1.
-- Applied by `aggregator migrate` (versioned, idempotent; applied versions in schema_migrations).
-- Statements are separated by a line holding only `;`.

-- Every canonical event, once. Replays and duplicates converge: the same event_id
-- replaces itself (ReplacingMergeTree) and batch inserts carry dedup tokens.
CREATE TABLE IF NOT EXISTS events
(
    event_id            String,
    tenant              LowCardinality(String),
    channel             LowCardinality(String),
    provider            LowCardinality(String),
    provider_message_id String,
    provider_event_id   Nullable(String),
    provider_event_name LowCardinality(String),
    delivery_key        String,
    recipient           String,
    broadcast_id        Nullable(String),
    sequence_id         Nullable(String),
    contact_id          Nullable(String),
    template_key        Nullable(String),
    message_class       LowCardinality(String),
    labels              Array(String),
    metadata            String COMMENT 'JSON object',
    event_type          LowCardinality(String),
    bounce_class        LowCardinality(String),
    occurred_at         DateTime64(3, 'UTC'),
    received_at         DateTime64(3, 'UTC'),
    time_source         LowCardinality(String),
    click_url           Nullable(String),
    user_agent          Nullable(String),
    ip                  Nullable(String),
    error_code          Nullable(String),
    error_reason        Nullable(String),
    cost_amount         Decimal(38, 10),
    cost_unit           LowCardinality(String),
    raw_topic           LowCardinality(String),
    raw_partition       Int32,
    raw_offset          Int64,
    events_partition    Int32,
    events_offset       Int64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, event_id)
TTL toDateTime(occurred_at) + INTERVAL {events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 10000
;
-- The latest state of each delivery (one message to one recipient).
-- A row is a full snapshot; the highest version wins (read with FINAL).
CREATE TABLE IF NOT EXISTS deliveries
(
    tenant              LowCardinality(String),
    delivery_key        String,
    channel             LowCardinality(String),
    provider            LowCardinality(String),
    provider_message_id String,
    recipient           String,
    broadcast_id        Nullable(String),
    sequence_id         Nullable(String),
    contact_id          Nullable(String),
    template_key        Nullable(String),
    message_class       LowCardinality(String),
    labels              Array(String),
    status              LowCardinality(String),
    status_at           DateTime64(3, 'UTC'),
    bounce_class        LowCardinality(String),
    first_queued_at     Nullable(DateTime64(3, 'UTC')),
    first_sent_at       Nullable(DateTime64(3, 'UTC')),
    first_delivered_at  Nullable(DateTime64(3, 'UTC')),
    last_delivered_at   Nullable(DateTime64(3, 'UTC')),
    first_opened_at     Nullable(DateTime64(3, 'UTC')),
    last_opened_at      Nullable(DateTime64(3, 'UTC')),
    first_clicked_at    Nullable(DateTime64(3, 'UTC')),
    last_clicked_at     Nullable(DateTime64(3, 'UTC')),
    first_bounced_at    Nullable(DateTime64(3, 'UTC')),
    first_complained_at Nullable(DateTime64(3, 'UTC')),
    first_failed_at     Nullable(DateTime64(3, 'UTC')),
    first_unsubscribed_at Nullable(DateTime64(3, 'UTC')),
    first_read_at       Nullable(DateTime64(3, 'UTC')),
    first_replied_at    Nullable(DateTime64(3, 'UTC')),
    open_count          UInt32,
    click_count         UInt32,
    soft_bounce_count   UInt32,
    deferral_count      UInt32,
    event_count         UInt32,
    last_error          Nullable(String),
    last_error_at       Nullable(DateTime64(3, 'UTC')),
    cost_amount         Decimal(38, 10),
    cost_unit           LowCardinality(String),
    seen_event_hashes   Array(UInt64) COMMENT 'events already applied; lets a reloaded state ignore replays',
    version             UInt64,
    updated_at          DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, delivery_key)
SETTINGS non_replicated_deduplication_window = 10000
;
-- Event counts and cost per UTC day, ISO week (Monday) and month.
-- Rows are deltas (one per new event and period); SummingMergeTree adds them up.
-- Read with sum(): SELECT sum(events) ... GROUP BY ...
CREATE TABLE IF NOT EXISTS counters
(
    tenant       LowCardinality(String),
    period       LowCardinality(String) COMMENT 'day | week | month',
    bucket_start Date,
    channel      LowCardinality(String),
    provider     LowCardinality(String),
    event_type   LowCardinality(String),
    bounce_class LowCardinality(String),
    cost_unit    LowCardinality(String),
    events       UInt64,
    cost_amount  Decimal(38, 10)
)
ENGINE = SummingMergeTree((events, cost_amount))
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (tenant, period, bucket_start, channel, provider, event_type, bounce_class, cost_unit)
SETTINGS non_replicated_deduplication_window = 10000
;
-- Batch manifests: which offsets of the events topic the aggregator has applied.
-- `pending` is written before a batch's data, `done` after; see aggregator/src/offsets.rs.
CREATE TABLE IF NOT EXISTS aggregator_offsets
(
    consumer_group String,
    topic          String,
    partition      Int32,
    first_offset   Int64,
    last_offset    Int64,
    state          LowCardinality(String) COMMENT 'pending | done',
    written_at     DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (consumer_group, topic, partition, last_offset)
