-- Typed contracts between the stages, persisted: who reported each event (`origin`, from the
-- canonical event's field of the same name) and, per delivery, the priority its attribution
-- values were chosen with (`attribution_prio`), so a delivery reloaded from ClickHouse keeps
-- them exactly instead of guessing from `first_queued_at`.
ALTER TABLE events ADD COLUMN IF NOT EXISTS origin LowCardinality(String) DEFAULT '' COMMENT 'provider, send_record or app_event (empty in rows written before 0010)'
;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS attribution_prio UInt16 DEFAULT 0 COMMENT 'internal: 2 bits per attribution field (broadcast, sequence, contact, template, message class): 2 send record, 1 provider tags; 0 in rows written before 0010'
