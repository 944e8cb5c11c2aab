-- The aggregator reads the stored state of every delivery a batch touches that is not in its
-- memory (`load_deliveries`: `deliveries FINAL WHERE tenant = ? AND delivery_key IN (…)`), and
-- most of those keys are new: nothing is stored for them. Delivery keys are SHA-256 digests,
-- so 1,000 of them fall into up to 1,000 different granules of the primary key, and the read
-- grew with the table (4 M rows: 421 of 489 granules read to find nothing; BENCHMARKS.md §10,
-- `scripts/bench-state-reads.sh`). A bloom filter per granule with 1 in 10,000 false positives
-- skips the granules that hold none of the keys: 43 of 421 read there, 1,000 keys × granules
-- × 0.0001 in general. It is exact under FINAL: every version of a delivery has the same
-- key, and a bloom filter never rejects a key it holds. About 2.3 bytes per delivery on disk.
ALTER TABLE deliveries ADD INDEX IF NOT EXISTS delivery_key_bf delivery_key TYPE bloom_filter(0.0001) GRANULARITY 1
;
ALTER TABLE deliveries MATERIALIZE INDEX delivery_key_bf
