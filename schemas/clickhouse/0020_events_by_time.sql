-- The activity feed (`/v1/events`, the API's `db/events.rs`) lists a tenant's events newest
-- first, optionally of one type, broadcast, template or sequence. `events` is ordered by
-- (tenant, event_id), so every page read the sort columns of the tenant's whole range before
-- the newest 50 could be picked (106-117 ms for the first page of 30 days on the 10 M-event
-- benchmark, 152-161 ms for one broadcast; BENCHMARKS.md §5).
--
-- `events_by_time` keeps, in each part, the few columns the feed picks its page by, in time
-- order: the page's keys come from the newest end of it (read in order, a few granules), and
-- the page's rows are then read by their primary key. It holds every version of a row, as the
-- table does (a projection is not `FINAL`); the feed decides the latest version itself.
-- `recipient` is left out on purpose: a recipient's events are found by the table's own bloom
-- filter (`recipient_bf`), and ClickHouse uses a projection only when it holds every column a
-- query reads. About a fifth of the table's bytes on disk; +4-14 % on a bulk insert's time.
--
-- A ReplacingMergeTree keeps a projection through merges only when told how: `rebuild`
-- builds it again from the merged rows (the default, `throw`, refuses the projection). A
-- lightweight `DELETE FROM events` (an operator erasing a person's events) drops the projection
-- of the parts it changes, which merges build again: with the default, `throw`, it would be
-- refused, and with `rebuild` the engine (26.9) still answered from the deleted rows' old
-- projection rows (a count of 500 where the table held 499).
ALTER TABLE events MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild', lightweight_mutation_projection_mode = 'drop'
;
ALTER TABLE events ADD PROJECTION IF NOT EXISTS events_by_time (
    SELECT tenant, occurred_at, event_id, event_type, broadcast_id, template_key, sequence_id
    ORDER BY tenant, occurred_at, event_id
)
;
ALTER TABLE events MATERIALIZE PROJECTION events_by_time
