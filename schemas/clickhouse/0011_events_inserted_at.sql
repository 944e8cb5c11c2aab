-- Freshness, measurable per event: when ClickHouse wrote the row (the server's clock at the
-- insert, filled by the DEFAULT since the aggregator does not send the column). With
-- `received_at` (ingest's clock when the provider's request arrived) it gives the time an
-- event took through the whole pipeline: `inserted_at - received_at`. A replayed copy of an
-- event is a later insert, so after a merge the row may carry the replay's time.
ALTER TABLE events ADD COLUMN IF NOT EXISTS inserted_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when the row was written (ClickHouse server clock); inserted_at - received_at is the pipeline''s freshness for this event'
