-- sendtrace ClickHouse schema, version 3: sender health flags.

-- Every change of a sender's health (flagged when over a threshold, unflagged when it recovers).
-- The latest row per sender is its current state (ReplacingMergeTree by evaluated_at).
CREATE TABLE IF NOT EXISTS sender_health
(
    tenant          LowCardinality(String),
    provider        LowCardinality(String),
    sending_domain  String,
    sending_account String,
    flagged         UInt8,
    reasons         Array(String),
    sent            UInt64,
    hard_bounces    UInt64,
    complaints      UInt64,
    bounce_rate     Float64 COMMENT 'a ratio for display; counts above are exact',
    complaint_rate  Float64,
    window_hours    UInt32,
    evaluated_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(evaluated_at)
ORDER BY (tenant, provider, sending_domain, sending_account)
