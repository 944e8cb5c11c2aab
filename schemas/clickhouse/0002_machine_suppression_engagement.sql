-- sendtrace ClickHouse schema, version 2: machine opens, suppression list, engagement, broadcast stats.

-- Opens/clicks fired by privacy proxies or security scanners are kept but flagged
-- ('' = human or not applicable; else apple_mpp | scanner_ua | too_fast).
ALTER TABLE events ADD COLUMN IF NOT EXISTS machine LowCardinality(String) DEFAULT ''
;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS machine_open_count UInt32 DEFAULT 0
;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS machine_click_count UInt32 DEFAULT 0
;
-- Machine events are counted apart: `machine` joins the counters' key.
ALTER TABLE counters
    ADD COLUMN IF NOT EXISTS machine LowCardinality(String),
    MODIFY ORDER BY (tenant, period, bucket_start, channel, provider, event_type, bounce_class, cost_unit, machine)
;
-- The suppression list: one row per tenant and address (email, phone or device token),
-- the strongest suppression wins (version = severity, then time). Never deleted by imports.
CREATE TABLE IF NOT EXISTS suppressions
(
    tenant      LowCardinality(String),
    address     String,
    scope       LowCardinality(String) COMMENT 'all | email | email_marketing | sms | whatsapp | push',
    reason      LowCardinality(String) COMMENT 'complaint | hard_bounce | push_token_invalid | unsubscribe | soft_bounces',
    severity    UInt8,
    channel     LowCardinality(String),
    event_id    String,
    occurred_at DateTime64(3, 'UTC'),
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, address)
SETTINGS non_replicated_deduplication_window = 10000
;
-- Engagement per recipient, computed on read from the event rows (human signals only).
-- Score: open +{open_weight}, a third open +{third_open_bonus} more, click +{click_weight},
-- reply +{reply_weight}; 0 after {score_reset_days} days without a signal; unsubscribe clicks excluded.
CREATE VIEW IF NOT EXISTS engagement AS
SELECT
    tenant,
    recipient,
    maxIf(occurred_at, event_type IN ('opened', 'read') AND machine = '') AS last_open_at,
    maxIf(occurred_at, event_type = 'clicked' AND machine = '' AND NOT positionCaseInsensitive(ifNull(click_url, ''), 'unsubscribe')) AS last_click_at,
    maxIf(occurred_at, event_type = 'replied') AS last_reply_at,
    countIf(event_type IN ('opened', 'read') AND machine = '') AS human_opens,
    countIf(event_type IN ('opened', 'read') AND machine != '') AS machine_opens,
    countIf(event_type = 'clicked' AND machine = '' AND NOT positionCaseInsensitive(ifNull(click_url, ''), 'unsubscribe')) AS human_clicks,
    countIf(event_type = 'replied') AS replies,
    greatest(last_open_at, last_click_at, last_reply_at) AS last_signal_at,
    if(last_signal_at < now64(3) - INTERVAL {score_reset_days} DAY OR human_opens + human_clicks + replies = 0, 0,
       human_opens * {open_weight} + if(human_opens >= 3, {third_open_bonus}, 0) + human_clicks * {click_weight} + replies * {reply_weight}) AS score
FROM events FINAL
GROUP BY tenant, recipient
;
-- Per broadcast (and template), from the latest delivery rows: attribution from send records
-- applies to events that arrived before them, so these numbers follow late joins exactly.
CREATE VIEW IF NOT EXISTS broadcast_stats AS
SELECT
    tenant,
    channel,
    ifNull(broadcast_id, '') AS broadcast_id,
    ifNull(template_key, '') AS template_key,
    count() AS deliveries,
    countIf(first_sent_at IS NOT NULL OR first_delivered_at IS NOT NULL) AS sent,
    countIf(first_delivered_at IS NOT NULL) AS delivered,
    countIf(open_count > 0) AS unique_opens,
    countIf(machine_open_count > 0 AND open_count = 0) AS machine_only_opens,
    countIf(click_count > 0) AS unique_clicks,
    countIf(status = 'bounced') AS hard_bounces,
    countIf(status = 'complained') AS complaints,
    countIf(status = 'unsubscribed') AS unsubscribes,
    countIf(status = 'failed') AS failed,
    uniqExact(recipient) AS unique_recipients
FROM deliveries FINAL
GROUP BY tenant, channel, broadcast_id, template_key
