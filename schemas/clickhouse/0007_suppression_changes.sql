-- Suppression changes made by hand through the API (POST / DELETE /v1/suppressions): who
-- (the API key's name), when and why. The API is the only writer (its one write grant);
-- the aggregator keeps owning `suppressions`. An address is suppressed when its entry in
-- `suppressions` or a suppressing event (complaint, hard bounce, unsubscribe) is newer than its
-- latest removal here, or when its latest manual add is.
CREATE TABLE IF NOT EXISTS suppression_changes
(
    tenant    LowCardinality(String),
    address   String COMMENT 'lower case',
    at        DateTime64(3, 'UTC'),
    change_id String,
    action    LowCardinality(String) COMMENT 'added | removed',
    scope     LowCardinality(String) COMMENT 'all | email | email_marketing | sms | whatsapp | push',
    note      String COMMENT 'why, as the caller gave it',
    who       String COMMENT 'API key name'
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant, address, at, change_id)
SETTINGS non_replicated_deduplication_window = 10000
;
