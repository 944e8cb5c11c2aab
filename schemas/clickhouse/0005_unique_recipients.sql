-- sendtrace ClickHouse schema, version 5: exact unique recipients per bucket.

-- Unique recipients (address, number or token, ASCII lower-cased) per tenant × period × bucket × channel ×
-- provider × event type × machine × broadcast × sequence × template, e.g. unique human openers per day.
-- A row holds a uniqExact state, the set of recipients; AggregatingMergeTree merges the rows of one key
-- by set union, and a read merges across keys: SELECT uniqExactMerge(recipients) ... GROUP BY ...
-- Exact under duplicates and replays: adding a recipient that is already in a set changes nothing,
-- so a duplicate event row, a replayed or retried batch, or the backfill below run twice cannot
-- inflate a count. No TTL: the sets outlive the event rows (events TTL), as counters do.
-- Periods and bucket starts are those of `counters` (aggregator/src/buckets.rs): `day`, `week` (ISO,
-- Monday), `month` in UTC, plus `day:<zone>`, `week:<zone>`, `month:<zone>` for reporting_time_zone.
-- broadcast_id / sequence_id / template_key are the event row's ('' when null). When a late send
-- record re-attributes earlier event rows (written again, reattributed = 1), their recipients join the
-- new attribution's set but stay in the old one ('' or an overridden provider tag): a set cannot drop
-- a member. So the final attribution's sets and merges across broadcasts are exact; '' is an upper bound.
CREATE TABLE IF NOT EXISTS unique_recipients
(
    tenant       LowCardinality(String),
    period       LowCardinality(String) COMMENT 'day | week | month, or day:<zone> | week:<zone> | month:<zone>',
    bucket_start Date,
    channel      LowCardinality(String),
    provider     LowCardinality(String),
    event_type   LowCardinality(String),
    machine      LowCardinality(String) COMMENT 'empty for people; else the machine reason (apple_mpp | scanner_ua | too_fast)',
    broadcast_id String,
    sequence_id  String,
    template_key String,
    recipients   AggregateFunction(uniqExact, String) COMMENT 'read with uniqExactMerge()'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (tenant, period, bucket_start, channel, provider, event_type, machine, broadcast_id, sequence_id, template_key)
;
-- Fills unique_recipients from every block inserted into events: one row per period and key.
-- The reporting zone ({reporting_time_zone}, UTC when none) is fixed here at migration time: changing
-- reporting_time_zone later needs this view dropped and created again by a later migration (and the
-- new zone's periods backfilled from the event rows still kept), as counters only hold a new zone's
-- periods from the change on. The `*:UTC` periods are dropped: UTC is the plain `day`/`week`/`month`.
CREATE MATERIALIZED VIEW IF NOT EXISTS unique_recipients_mv TO unique_recipients AS
SELECT
    tenant,
    b.1 AS period,
    b.2 AS bucket_start,
    channel,
    provider,
    event_type,
    machine,
    ifNull(broadcast_id, '') AS broadcast_id,
    ifNull(sequence_id, '') AS sequence_id,
    ifNull(template_key, '') AS template_key,
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
GROUP BY tenant, period, bucket_start, channel, provider, event_type, machine, broadcast_id, sequence_id, template_key
;
-- Backfill: the event rows already stored, with the view's SELECT (kept identical; a unit test checks).
-- Runs after the view exists, so rows inserted meanwhile are in the sets once or twice, which is the same.
-- Harmless to repeat for the same reason (an interrupted migration is simply run again).
INSERT INTO unique_recipients
SELECT
    tenant,
    b.1 AS period,
    b.2 AS bucket_start,
    channel,
    provider,
    event_type,
    machine,
    ifNull(broadcast_id, '') AS broadcast_id,
    ifNull(sequence_id, '') AS sequence_id,
    ifNull(template_key, '') AS template_key,
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
GROUP BY tenant, period, bucket_start, channel, provider, event_type, machine, broadcast_id, sequence_id, template_key
