-- sendtrace ClickHouse schema, version 4: broadcast_stats also by sequence, with cost per currency.
CREATE OR REPLACE VIEW broadcast_stats AS
SELECT
    tenant,
    channel,
    ifNull(broadcast_id, '') AS broadcast_id,
    ifNull(sequence_id, '') AS sequence_id,
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
    uniqExact(recipient) AS unique_recipients,
    cost_unit,
    sum(cost_amount) AS cost
FROM deliveries FINAL
GROUP BY tenant, channel, broadcast_id, sequence_id, template_key, cost_unit
