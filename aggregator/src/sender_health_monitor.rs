//! The sender-health task: every `health.interval_secs`, exact counts over the window from
//! the event rows (`store::sender_stats`), flag/unflag changes written to `sender_health` and
//! published on the health topic. With several aggregators in one group only the one assigned
//! partition 0 of the events topic evaluates (`HealthLeader`), so a change is written and
//! published once; a new leader starts from the flags in `sender_health`.

use crate::config::Config;
use crate::rebalance::HealthLeader;
use runtime::clock::now_ms;
use crate::store::retry::retry;
use runtime::kafka::ReplaceableProducer;
use runtime::shutdown::CancellationToken;
use std::collections::HashMap;
use std::time::Duration;
use tracing::{info, warn};

/// Evaluates sender health every `interval_secs` while `leader`, until shutdown; writes and
/// publishes changes.
pub async fn monitor_health(cfg: Config, leader: HealthLeader, shutdown: CancellationToken) {
    let hc = cfg.health.clone();
    let client = cfg.clickhouse.client();
    let producer = match ReplaceableProducer::new(cfg.kafka.clone()) {
        Ok(p) => p,
        Err(error) => {
            warn!(message = "Sender health disabled: no producer.", %error);
            return;
        }
    };
    let mb = cfg.max_retry_backoff_ms;
    let c = &client;
    // the flags as last written (by this or another aggregator); loaded when leadership starts
    let mut previous: Option<HashMap<String, bool>> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(hc.interval_secs.max(1))) => {}
        }
        if !leader.get() {
            previous = None;
            continue;
        }
        if previous.is_none() {
            let Some(flags) = retry("load_health_flags", mb, &shutdown, || crate::store::load_health_flags(c)).await else {
                return;
            };
            previous = Some(flags);
        }
        let Some(previous) = previous.as_mut() else { continue };
        let Some(stats) = retry("health_stats", mb, &shutdown, || crate::store::sender_stats(c, hc.window_hours)).await else { return };
        let changes = crate::sender_health::evaluate(&stats, previous, &hc, now_ms());
        if changes.is_empty() {
            continue;
        }
        let token = format!("sender_health:{}", changes[0].evaluated_at);
        if retry("insert_health", mb, &shutdown, || crate::store::insert_rows(c, "sender_health", &token, &changes)).await.is_none() {
            return;
        }
        let timeout = Duration::from_millis(cfg.kafka.message_timeout_ms as u64 + 1000);
        for r in &changes {
            info!(message = "Sender health changed.", sender = %r.key(), flagged = r.flagged, reasons = ?r.reasons, sent = r.sent);
            metrics::counter!("sendtrace_aggregator_sender_health_changes_total", "flagged" => r.flagged.to_string()).increment(1);
            if let Err(error) = producer.send(&hc.topic, &r.key(), &r.to_json(), timeout).await {
                // the table holds the change; the next change publishes the current state again
                warn!(message = "Publishing a sender health change failed.", %error);
            }
            previous.insert(r.key(), r.flagged == 1);
        }
    }
}
