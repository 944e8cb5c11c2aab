-- Migration 8's bloom filter on `events.delivery_key` at 1 in 1,000 false positives instead of
-- 1 in 100. `events` is ordered by (tenant, event_id), so a delivery's events lie in as many
-- granules as it has events, and at 1 % every key asked for also kept ~1 % of the tenant's
-- granules that do not hold it. At 10 M events (626 granules of the tenant): 10 keys kept 85
-- granules, 58 now; the aggregator's read of the events of re-attributed deliveries
-- (`store::load_events`) 330–345 → 240–268 ms for 10 deliveries and 1.83–1.85 → 1.32–1.37 s
-- for 100; the read API's message chronology p50 46–50 → 40–45 ms (BENCHMARKS.md §10, "a
-- tighter delivery-key filter on events"). About 0.6 bytes more per event. (`recipient_bf`
-- stays at 1 %: one recipient's read measured the same at 0.1 %, ~70 ms, its larger filter
-- costing what the fewer granules saved.) Replacing a skip index is dropping it and adding it
-- again; until the rebuild below has reached a part, reads of that part go without the filter
-- (slower, not different). Safe to run again: a second run drops and rebuilds the 0.1 % filter.
ALTER TABLE events DROP INDEX IF EXISTS delivery_key_bf
;
ALTER TABLE events ADD INDEX IF NOT EXISTS delivery_key_bf delivery_key TYPE bloom_filter(0.001) GRANULARITY 1
;
ALTER TABLE events MATERIALIZE INDEX delivery_key_bf
