-- The summary's exact unique recipients (`/v1/stats/summary`: people delivered to, opening,
-- clicking over N days and the N days before), made to cost what the range holds. From
-- `unique_recipients` they merge one uniqExact state per day and (channel, provider, event type,
-- machine, broadcast, sequence, template): ~240,000 small sets for 30 days of a 5 M-event
-- tenant, ~63 ms a period on one core (BENCHMARKS.md §5). `recipient_days` keeps the same
-- recipients as rows, one per (day, event type, recipient), people only, without the other
-- dimensions: a range is a contiguous run of the primary key and uniqExact() over its 128-bit
-- hashes counts it. Exact under duplicates and replays as `unique_recipients` is (a recipient
-- twice is counted once, so reads need no FINAL; merges drop the copies). The hash is the one
-- uniqExact(String) keeps for `lower(recipient)` (SipHash-128), so both tables count alike.
-- No TTL: the rows outlive the event rows, as the sets do.
-- Periods: `day` in UTC and `day:{reporting_time_zone}`, as `unique_recipients_mv` fixes them at
-- migration time (the `day:UTC` duplicate dropped).
CREATE TABLE IF NOT EXISTS recipient_days
(
    tenant       LowCardinality(String),
    period       LowCardinality(String) COMMENT 'day, or day:<zone>',
    bucket_start Date,
    event_type   LowCardinality(String) COMMENT 'delivered | opened | read | clicked (people: machine = empty)',
    recipient    UInt128 COMMENT 'reinterpretAsUInt128(sipHash128(lower(recipient))): count with uniqExact(recipient)'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (tenant, period, bucket_start, event_type, recipient)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS recipient_days_mv TO recipient_days AS
SELECT
    tenant,
    b.1 AS period,
    b.2 AS bucket_start,
    event_type,
    reinterpretAsUInt128(sipHash128(lower(recipient))) AS recipient
FROM events
ARRAY JOIN arrayFilter(p -> p.1 != 'day:UTC', [
    ('day', toDate(occurred_at, 'UTC')),
    ('day:{reporting_time_zone}', toDate(occurred_at, '{reporting_time_zone}'))
]) AS b
WHERE event_type IN ('delivered', 'opened', 'read', 'clicked') AND machine = ''
GROUP BY tenant, period, bucket_start, event_type, recipient
;
-- The event rows already stored, with the view's SELECT (kept identical; a unit test checks).
-- Harmless to repeat: a recipient twice is the same count.
INSERT INTO recipient_days
SELECT
    tenant,
    b.1 AS period,
    b.2 AS bucket_start,
    event_type,
    reinterpretAsUInt128(sipHash128(lower(recipient))) AS recipient
FROM events
ARRAY JOIN arrayFilter(p -> p.1 != 'day:UTC', [
    ('day', toDate(occurred_at, 'UTC')),
    ('day:{reporting_time_zone}', toDate(occurred_at, '{reporting_time_zone}'))
]) AS b
WHERE event_type IN ('delivered', 'opened', 'read', 'clicked') AND machine = ''
GROUP BY tenant, period, bucket_start, event_type, recipient
;
-- What a backfill could not copy. `events` keeps rows for {events_ttl_days} days, the sets of
-- `unique_recipients` for ever: on a database that already held events, days older than that
-- may be missing here, so the readers ask `unique_recipients` for a range that starts before
-- `complete_from` (the first UTC day surely whole). A database without any row yet misses
-- nothing. Re-running the migration records a later day (the newest record wins), which only
-- sends more ranges to the slower, equally exact table.
CREATE TABLE IF NOT EXISTS backfills
(
    name          String COMMENT 'the table a migration filled from events',
    complete_from Date COMMENT 'first UTC day whose rows are all there',
    recorded_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY name
;
INSERT INTO backfills
SELECT
    'recipient_days' AS name,
    if((SELECT count() FROM unique_recipients) = 0, toDate('1970-01-01'), toDate(now('UTC') - INTERVAL {events_ttl_days} DAY, 'UTC') + 1) AS complete_from,
    now64(3, 'UTC') AS recorded_at
