//! Sender health: bounce and complaint rates per tenant × provider × sending domain ×
//! sending account over a sliding window, flagged when over a threshold (defaults:
//! 3 % hard bounces, 0.1 % complaints, of messages sent) and unflagged when they recover.
//! Evaluated periodically from the event rows; every change is written to `sender_health`
//! and published on a topic (key `tenant/provider/domain/account`, JSON value).
//!
//! The sending domain comes from the event's `from_domain` metadata (SES `ses:from-domain`)
//! or the part after `@` of `from` metadata; the account from `sending_account` metadata.
//! Senders with fewer than `min_sent` messages in the window are not judged.

pub use crate::store::rows::SenderStats;
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// How often to evaluate.
    pub interval_secs: u64,
    /// Sliding window.
    pub window_hours: u32,
    /// Hard bounces / sent above this flags the sender (0.03 = 3 %).
    pub max_bounce_rate: f64,
    /// Complaints / sent above this flags the sender (0.001 = 0.1 %).
    pub max_complaint_rate: f64,
    /// Fewer sent messages than this in the window: not judged.
    pub min_sent: u64,
    /// Topic flag changes are published on.
    pub topic: String,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { interval_secs: 60, window_hours: 24, max_bounce_rate: 0.03, max_complaint_rate: 0.001, min_sent: 100, topic: "sendtrace.sender-health.v1".into() }
    }
}


#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct HealthRow {
    pub tenant: String,
    pub provider: String,
    pub sending_domain: String,
    pub sending_account: String,
    pub flagged: u8,
    pub reasons: Vec<String>,
    pub sent: u64,
    pub hard_bounces: u64,
    pub complaints: u64,
    pub bounce_rate: f64,
    pub complaint_rate: f64,
    pub window_hours: u32,
    pub evaluated_at: i64,
}

impl HealthRow {
    pub fn key(&self) -> String {
        format!("{}/{}/{}/{}", self.tenant, self.provider, self.sending_domain, self.sending_account)
    }
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Judges every sender; returns the rows whose flag changed against `previous` (key → flagged).
pub fn evaluate(stats: &[SenderStats], previous: &HashMap<String, bool>, cfg: &HealthConfig, now_ms: i64) -> Vec<HealthRow> {
    stats
        .iter()
        .filter(|s| s.sent >= cfg.min_sent)
        .filter_map(|s| {
            let bounce_rate = s.hard_bounces as f64 / s.sent as f64;
            let complaint_rate = s.complaints as f64 / s.sent as f64;
            let mut reasons = Vec::new();
            // counts against rate × sent (multiply rather than divide): exactly at the threshold is not over it
            if (s.hard_bounces as f64) > cfg.max_bounce_rate * s.sent as f64 {
                reasons.push("bounce_rate".to_string());
            }
            if (s.complaints as f64) > cfg.max_complaint_rate * s.sent as f64 {
                reasons.push("complaint_rate".to_string());
            }
            let row = HealthRow {
                tenant: s.tenant.clone(),
                provider: s.provider.clone(),
                sending_domain: s.sending_domain.clone(),
                sending_account: s.sending_account.clone(),
                flagged: u8::from(!reasons.is_empty()),
                reasons,
                sent: s.sent,
                hard_bounces: s.hard_bounces,
                complaints: s.complaints,
                bounce_rate,
                complaint_rate,
                window_hours: cfg.window_hours,
                evaluated_at: now_ms,
            };
            let was = previous.get(&row.key()).copied().unwrap_or(false);
            (was != (row.flagged == 1)).then_some(row)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(sent: u64, bounces: u64, complaints: u64) -> SenderStats {
        SenderStats { tenant: "t".into(), provider: "ses".into(), sending_domain: "example.com".into(), sending_account: "1".into(), sent, hard_bounces: bounces, complaints }
    }

    #[test]
    fn flags_over_threshold_and_unflags_on_recovery() {
        let cfg = HealthConfig::default();
        let mut prev = HashMap::new();
        let rows = evaluate(&[stats(1000, 31, 0)], &prev, &cfg, 1);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].reasons, vec!["bounce_rate"]);
        prev.insert(rows[0].key(), true);
        assert!(evaluate(&[stats(1000, 40, 0)], &prev, &cfg, 2).is_empty(), "still flagged: no change to report");
        let rows = evaluate(&[stats(2000, 40, 0)], &prev, &cfg, 3);
        assert_eq!((rows.len(), rows[0].flagged), (1, 0), "recovered: 2 % bounces");
        assert_eq!(evaluate(&[stats(1000, 0, 2)], &HashMap::new(), &cfg, 4)[0].reasons, vec!["complaint_rate"]);
        assert!(evaluate(&[stats(1000, 30, 1)], &HashMap::new(), &cfg, 5).is_empty(), "exactly at the thresholds is fine");
        assert!(evaluate(&[stats(50, 50, 0)], &HashMap::new(), &cfg, 6).is_empty(), "too few to judge");
    }
}
