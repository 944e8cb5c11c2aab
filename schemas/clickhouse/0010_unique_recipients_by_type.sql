-- Unique recipients per tenant, period, bucket, event type and machine only: the same sets as
-- `unique_recipients` without its channel, provider and attribution dimensions, so a summary
-- over N days merges a few states per day instead of one per broadcast, template, provider and
-- channel (585,000 states for 30 days of the 10 M-event benchmark). Filled by a view on `events`
-- inserts and backfilled from the event rows, like `unique_recipients` (migration 5).
CREATE TABLE IF NOT EXISTS unique_recipients_by_type
(
    tenant       LowCardinality(String),
    period       LowCardinality(String) COMMENT 'day | week | month, or day:<zone> | week:<zone> | month:<zone>',
    bucket_start Date,
    event_type   LowCardinality(String),
    machine      LowCardinality(String) COMMENT 'empty for people; else the machine reason (apple_mpp | scanner_ua | too_fast)',
    recipients   AggregateFunction(uniqExact, String) COMMENT 'read with uniqExactMerge()'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (tenant, period, bucket_start, event_type, machine)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS unique_recipients_by_type_mv TO unique_recipients_by_type AS
SELECT
    tenant,
    b.1 AS period,
    b.2 AS bucket_start,
    event_type,
    machine,
    uniqExactState(lower(recipient)) AS recipients
FROM events
ARRAY JOIN arrayFilter(p -> p.1 NOT IN ('day:UTC', 'week:UTC', 'month:UTC'), [
    ('day', toDate(occurred_at, 'UTC')),
    ('week', toMonday(occurred_at, 'UTC')),
    ('month', toStartOfMonth(occurred_at, 'UTC')),
    ('day:{reporting_time_zone}', toDate(occurred_at, '{reporting_time_zone}')),
    ('week:{reporting_time_zone}', toMonday(occurred_at, '{reporting_time_zone}')),
    ('month:{reporting_time_zone}', toStartOfMonth(occurred_at, '{reporting_time_zone}'))
]) AS b
GROUP BY tenant, period, bucket_start, event_type, machine
;
INSERT INTO unique_recipients_by_type
SELECT
    tenant,
    b.1 AS period,
    b.2 AS bucket_start,
    event_type,
    machine,
    uniqExactState(lower(recipient)) AS recipients
FROM events
ARRAY JOIN arrayFilter(p -> p.1 NOT IN ('day:UTC', 'week:UTC', 'month:UTC'), [
    ('day', toDate(occurred_at, 'UTC')),
    ('week', toMonday(occurred_at, 'UTC')),
    ('month', toStartOfMonth(occurred_at, 'UTC')),
    ('day:{reporting_time_zone}', toDate(occurred_at, '{reporting_time_zone}')),
    ('week:{reporting_time_zone}', toMonday(occurred_at, '{reporting_time_zone}')),
    ('month:{reporting_time_zone}', toStartOfMonth(occurred_at, '{reporting_time_zone}'))
]) AS b
GROUP BY tenant, period, bucket_start, event_type, machine
;
