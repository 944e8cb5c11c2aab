//! The failures copy with attribution (`attributed_failures`, migration 21) against `events
//! FINAL`, which it must always equal (`api/src/db/insights.rs::failure_groups` reads it).

use crate::Pipeline;

/// `attributed_failures FINAL` holds every bounced and failed event once, with the columns and
/// the attribution of its latest version in `events`. Returns the events compared.
pub async fn assert_failures_equal_events(p: &Pipeline) -> usize {
    const COLUMNS: &str = "event_id AS id, toString(tuple(tenant, occurred_at, delivery_key, channel, provider, event_type, bounce_class, recipient, \
                           error_code, error_reason)) AS event, toString(tuple(broadcast_id, sequence_id, template_key)) AS attribution";
    let listing = |sql: String| async move {
        p.rows(&sql).await.into_iter().map(|r| ["id", "event", "attribution"].map(|c| Pipeline::cell(&r, c))).collect::<Vec<_>>()
    };
    let copied = listing(format!("SELECT {COLUMNS} FROM attributed_failures FINAL ORDER BY id")).await;
    let latest = listing(format!("SELECT {COLUMNS} FROM events FINAL WHERE event_type IN ('bounced', 'failed') ORDER BY id")).await;
    assert_eq!(copied.len(), latest.len(), "attributed_failures: one row per bounced or failed event");
    assert_eq!(copied, latest, "attributed_failures FINAL = events FINAL (bounced, failed)");
    latest.len()
}
