//! The latency copy (`delivery_latency`, `delivery_send_lag`, migration 18) against
//! `deliveries FINAL`, which it must always equal (`api/src/db/insights.rs::latency` reads it).

use crate::Pipeline;

/// `delivery_latency FINAL` holds every delivery once, at its current first known time, with
/// its current send time, latencies and filter columns; and each tenant's `delivery_send_lag`
/// bounds how long after its first known time each current delivery was sent (the API reads
/// first known times from `from - lag` and relies on it). Returns the deliveries compared.
pub async fn assert_latency_equals_deliveries(p: &Pipeline) -> usize {
    let listing = |sql: &'static str| async move {
        p.rows(sql)
            .await
            .into_iter()
            .map(|r| ["k", "t", "a", "c", "sent", "d", "o"].map(|c| Pipeline::cell(&r, c)))
            .collect::<Vec<_>>()
    };
    let copied = listing(
        "SELECT delivery_key AS k, toString(sort_at) AS t, tenant || ' ' || provider || ' ' || channel AS c, \
         toString(tuple(broadcast_id, template_key)) AS a, toString(sent_at) AS sent, toString(to_delivered) AS d, toString(to_open) AS o \
         FROM delivery_latency FINAL ORDER BY k",
    )
    .await;
    let current = listing(
        "SELECT delivery_key AS k, toString(toUnixTimestamp64Milli(least(status_at, ifNull(first_queued_at, status_at), ifNull(first_sent_at, status_at), \
           ifNull(first_delivered_at, status_at), ifNull(first_bounced_at, status_at), ifNull(first_failed_at, status_at)))) AS t, \
         tenant || ' ' || provider || ' ' || channel AS c, toString(tuple(broadcast_id, template_key)) AS a, \
         toString(toUnixTimestamp64Milli(coalesce(first_sent_at, first_queued_at))) AS sent, \
         toString(ifNull(toUnixTimestamp64Milli(first_delivered_at) - toUnixTimestamp64Milli(coalesce(first_sent_at, first_queued_at)), -1)) AS d, \
         toString(ifNull(toUnixTimestamp64Milli(first_opened_at) - toUnixTimestamp64Milli(first_delivered_at), -1)) AS o \
         FROM deliveries FINAL ORDER BY k",
    )
    .await;
    assert_eq!(copied.len(), current.len(), "delivery_latency: one entry per delivery");
    assert_eq!(copied, current, "delivery_latency FINAL = deliveries FINAL");
    let beyond = p
        .number(
            "SELECT count() FROM (SELECT tenant, toUnixTimestamp64Milli(assumeNotNull(coalesce(first_sent_at, first_queued_at))) \
               - toUnixTimestamp64Milli(least(status_at, ifNull(first_queued_at, status_at), ifNull(first_sent_at, status_at), \
               ifNull(first_delivered_at, status_at), ifNull(first_bounced_at, status_at), ifNull(first_failed_at, status_at))) AS lag \
               FROM deliveries FINAL WHERE first_sent_at IS NOT NULL OR first_queued_at IS NOT NULL) AS d \
             LEFT JOIN (SELECT tenant AS bt, max(lag) AS bound FROM delivery_send_lag GROUP BY tenant) AS b ON d.tenant = b.bt \
             WHERE b.bt = '' OR d.lag > b.bound",
        )
        .await;
    assert_eq!(beyond, 0, "every delivery's send lag within its tenant's delivery_send_lag");
    current.len()
}
