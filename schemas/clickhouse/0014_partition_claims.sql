-- Who writes each partition of the events topic: the fence between two aggregators that both
-- believe they own a partition (one of them a "zombie" whose group membership was lost while it
-- was busy, e.g. retrying through a ClickHouse outage past `max.poll.interval.ms`, or after the
-- broker lost the group). Without it, the new owner may load the partition's cursor before the
-- old one writes its next `pending` manifest; the two then form different batches over the same
-- offsets, with different dedup tokens, and the summing counters count them twice
-- (RELIABILITY.md, "two writers on one partition").
-- A writer claims a partition before it loads the partition's cursor (epoch = the newest + 1),
-- and after writing each batch's `pending` manifest, before any of its data, checks that its
-- claim is still the newest (epoch, then writer); a writer that finds a newer claim writes
-- nothing more of that batch (aggregator/src/offsets.rs).
CREATE TABLE IF NOT EXISTS aggregator_claims
(
    consumer_group String,
    topic          String,
    partition      Int32,
    epoch          UInt64,
    writer         String COMMENT 'host, process and start of the aggregator that claimed',
    claimed_at     DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (consumer_group, topic, partition, epoch, writer)
