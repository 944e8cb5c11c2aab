-- sendtrace ClickHouse schema, version 17: funnels per broadcast, sequence and template as
-- signed sums. The API's funnels (`/v1/broadcasts`, `/v1/sequences`, `/v1/templates`) read every
-- delivery of the tenant with FINAL (~300 ms on 10 M events, BENCHMARKS.md §5); these tables hold
-- a few rows per id. When a batch changes a delivery, the aggregator writes -1 for what it
-- counted for before (attribution, cost unit, status, counts) and +1 for what it counts for now
-- (`aggregator/src/funnels.rs`), as it does for `delivery_status_counts`: `sum()` of a funnel's
-- rows equals the same count over `deliveries FINAL` (tests/tests/exactly_once.rs checks it).
CREATE TABLE IF NOT EXISTS funnels
(
    tenant         LowCardinality(String),
    dimension      Enum8('broadcast' = 1, 'sequence' = 2, 'template' = 3),
    id             String,
    cost_unit      LowCardinality(String) COMMENT 'the deliveries'' currency; empty: no cost',
    deliveries     Int64,
    sent           Int64 COMMENT 'deliveries sent or delivered',
    delivered      Int64,
    opened_human   Int64 COMMENT 'deliveries opened by a person',
    opened_all     Int64 COMMENT 'deliveries opened by anyone (people or machines)',
    opens_human    Int64,
    opens_all      Int64,
    clicked_human  Int64,
    clicked_all    Int64,
    clicks_human   Int64,
    clicks_all     Int64,
    hard_bounces   Int64 COMMENT 'deliveries whose status is bounced',
    complaints     Int64,
    unsubscribes   Int64,
    failed         Int64,
    cost_amount    Decimal(38, 10),
    last_status_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'the latest status time a delivery of it reached while in it',
    changes        UInt64 COMMENT 'delivery changes summed here; never 0, so a merge keeps the row (and its last_status_at)'
)
ENGINE = SummingMergeTree
ORDER BY (tenant, dimension, id, cost_unit)
SETTINGS non_replicated_deduplication_window = 10000
;
-- Each id's distinct recipients: +1 when a delivery to the recipient enters the id, -1 when it
-- leaves (its attribution changed). A recipient is the id's while its sum is above 0.
CREATE TABLE IF NOT EXISTS funnel_recipients
(
    tenant     LowCardinality(String),
    dimension  Enum8('broadcast' = 1, 'sequence' = 2, 'template' = 3),
    id         String,
    recipient  String COMMENT 'ASCII lower case, as deliveries.recipient',
    deliveries Int64
)
ENGINE = SummingMergeTree
ORDER BY (tenant, dimension, id, recipient)
SETTINGS non_replicated_deduplication_window = 10000
;
-- The deliveries already stored (only into empty tables: a second run adds nothing).
INSERT INTO funnels
SELECT tenant, d.1 AS dimension, assumeNotNull(d.2) AS id, cost_unit,
       count(), countIf(first_sent_at IS NOT NULL OR first_delivered_at IS NOT NULL), countIf(first_delivered_at IS NOT NULL),
       countIf(open_count > 0), countIf(open_count + machine_open_count > 0), sum(open_count), sum(open_count + machine_open_count),
       countIf(click_count > 0), countIf(click_count + machine_click_count > 0), sum(click_count), sum(click_count + machine_click_count),
       countIf(status = 'bounced'), countIf(status = 'complained'), countIf(status = 'unsubscribed'), countIf(status = 'failed'),
       sumIf(cost_amount, cost_unit != ''), max(status_at), count()
FROM deliveries FINAL
ARRAY JOIN arrayFilter(x -> x.2 IS NOT NULL, [('broadcast', broadcast_id), ('sequence', sequence_id), ('template', template_key)]) AS d
WHERE (SELECT count() FROM funnels) = 0
GROUP BY tenant, dimension, id, cost_unit
;
INSERT INTO funnel_recipients
SELECT tenant, d.1 AS dimension, assumeNotNull(d.2) AS id, recipient, count()
FROM deliveries FINAL
ARRAY JOIN arrayFilter(x -> x.2 IS NOT NULL, [('broadcast', broadcast_id), ('sequence', sequence_id), ('template', template_key)]) AS d
WHERE (SELECT count() FROM funnel_recipients) = 0
GROUP BY tenant, dimension, id, recipient
;
