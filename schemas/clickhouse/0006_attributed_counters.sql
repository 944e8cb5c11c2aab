-- sendtrace ClickHouse schema, version 6: counters by broadcast, sequence and template.
--
-- Written by the aggregator with the same batch dedup tokens as `counters`. An event counts
-- under its delivery's attribution (send record first, else provider tags). When a send
-- record arrives after some of its delivery's provider events, the aggregator moves those
-- events: -1 (and -cost) under the old attribution, +1 under the new one, so `events` is
-- signed and the table always equals a count over `events FINAL` grouped by the event rows'
-- attribution columns (the event rows are written again with the new attribution,
-- `reattributed = 1`). Day / ISO week / month, UTC and the reporting zone, as `counters`.
CREATE TABLE IF NOT EXISTS attributed_counters
(
    tenant       LowCardinality(String),
    period       LowCardinality(String),
    bucket_start Date,
    broadcast_id String,
    sequence_id  String,
    template_key String,
    channel      LowCardinality(String),
    provider     LowCardinality(String),
    event_type   LowCardinality(String),
    bounce_class LowCardinality(String),
    machine      LowCardinality(String),
    cost_unit    LowCardinality(String),
    events       Int64,
    cost_amount  Decimal(38, 10)
)
ENGINE = SummingMergeTree((events, cost_amount))
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (tenant, period, bucket_start, broadcast_id, sequence_id, template_key, channel, provider, event_type, bounce_class, machine, cost_unit)
SETTINGS non_replicated_deduplication_window = 10000
;
-- 1 on an event row written again because its delivery's attribution changed (the
-- ReplacingMergeTree keeps the later row); 0 on the first write.
ALTER TABLE events ADD COLUMN IF NOT EXISTS reattributed UInt8 DEFAULT 0
;
-- Existing counts, attributed as the event rows already are (UTC periods; the reporting
-- zone's periods start with the events written from now on). The token makes a re-run of
-- this statement a no-op.
INSERT INTO attributed_counters
SETTINGS insert_deduplication_token = 'migration-6-attributed-counters-backfill'
SELECT tenant, pb.1 AS period, pb.2 AS bucket_start, ifNull(broadcast_id, '') AS b, ifNull(sequence_id, '') AS s, ifNull(template_key, '') AS t,
       channel, provider, event_type, bounce_class, machine, cost_unit, toInt64(count()) AS n, sum(cost_amount) AS c
FROM events FINAL
ARRAY JOIN [('day', toDate(occurred_at)), ('week', toMonday(occurred_at)), ('month', toStartOfMonth(occurred_at))] AS pb
GROUP BY tenant, period, bucket_start, b, s, t, channel, provider, event_type, bounce_class, machine, cost_unit
;
