-- sendtrace ClickHouse schema, version 19: each funnel's deliveries by latest status, as signed
-- sums. A broadcast's report (`/v1/broadcasts/{id}/report`, the dashboard's broadcast page)
-- counted its deliveries by status over `deliveries FINAL`, every delivery of the tenant
-- (~95 ms on 10 M events, BENCHMARKS.md §5); these are a few rows per id. The aggregator writes
-- them with `funnels` (`aggregator/src/funnels.rs`): -1 under a changed delivery's old status
-- and ids, +1 under its new ones, so `sum(deliveries)` per status equals the same count over
-- `deliveries FINAL` (tests/src/funnels.rs checks it).
CREATE TABLE IF NOT EXISTS funnel_statuses
(
    tenant     LowCardinality(String),
    dimension  Enum8('broadcast' = 1, 'sequence' = 2, 'template' = 3),
    id         String,
    status     LowCardinality(String) COMMENT 'the deliveries'' latest status, as deliveries.status',
    deliveries Int64
)
ENGINE = SummingMergeTree
ORDER BY (tenant, dimension, id, status)
SETTINGS non_replicated_deduplication_window = 10000
;
-- The deliveries already stored (only into an empty table: a second run adds nothing).
INSERT INTO funnel_statuses
SELECT tenant, d.1 AS dimension, assumeNotNull(d.2) AS id, status, count()
FROM deliveries FINAL
ARRAY JOIN arrayFilter(x -> x.2 IS NOT NULL, [('broadcast', broadcast_id), ('sequence', sequence_id), ('template', template_key)]) AS d
WHERE (SELECT count() FROM funnel_statuses) = 0
GROUP BY tenant, dimension, id, status
