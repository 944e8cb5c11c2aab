//! Bounds on what one raw record may become.
//!
//! A record comes from the outside: its tags are copied into every per-recipient event,
//! its recipients and items multiply, its times are whatever the sender wrote. Every
//! bound is checked here, once, before an event is built (so a hostile record never
//! costs more than the bounds allow), and a part beyond a bound becomes a dead letter
//! that names the bound, never an output the broker or ClickHouse would refuse.

use super::NormalizeError;
use schemas::event::Attribution;
use serde::{Deserialize, Serialize};

/// Bounds per record and per event. Defaults suit every provider's documented payloads
/// with a wide margin; each is a `[mapping.limits]` key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most events one raw record may become (items × recipients). An item that would pass
    /// it is dead-lettered (`too_many_events`); the items before it still flow.
    pub max_events_per_record: usize,
    /// Most bytes (estimated from the events' strings) one raw record may become: with the
    /// batch bounds, this bounds the normalizer's memory whatever a record holds.
    pub max_record_output_bytes: usize,
    /// Most labels (tags, categories) on one event.
    pub max_labels: usize,
    /// Most bytes of all labels of one event together.
    pub max_labels_bytes: usize,
    /// Most metadata entries (custom args, user variables, headers) on one event.
    pub max_metadata: usize,
    /// Most bytes of all metadata keys and values of one event together.
    pub max_metadata_bytes: usize,
    /// Longest recipient (address, phone number, device token), in bytes.
    pub max_recipient_bytes: usize,
    /// Longest identifier (message, event, broadcast, sequence, template, contact id), in bytes.
    pub max_id_bytes: usize,
    /// Longest free text (click URL, user agent, error reason, provider event name), in bytes.
    pub max_text_bytes: usize,
    /// Earliest accepted event time, ms since the epoch (default 2000-01-01T00:00:00Z).
    pub min_event_time_ms: i64,
    /// Latest accepted event time, as seconds after the record was received (clock skew).
    pub max_event_time_ahead_secs: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events_per_record: 10_000,
            max_record_output_bytes: 32 * 1024 * 1024,
            max_labels: 64,
            max_labels_bytes: 4 * 1024,
            max_metadata: 64,
            max_metadata_bytes: 8 * 1024,
            max_recipient_bytes: 320,
            max_id_bytes: 512,
            max_text_bytes: 8 * 1024,
            min_event_time_ms: 946_684_800_000,
            max_event_time_ahead_secs: 86_400,
        }
    }
}

fn exceeded(what: &str, value: usize, limit: usize) -> NormalizeError {
    NormalizeError::LimitExceeded(format!("{what}: {value} > {limit}"))
}

impl Limits {
    /// The attribution one item shares with all its recipients: checked once per item.
    pub fn check_attribution(&self, a: &Attribution) -> Result<(), NormalizeError> {
        if a.labels.len() > self.max_labels {
            return Err(exceeded("labels", a.labels.len(), self.max_labels));
        }
        let label_bytes: usize = a.labels.iter().map(String::len).sum();
        if label_bytes > self.max_labels_bytes {
            return Err(exceeded("label bytes", label_bytes, self.max_labels_bytes));
        }
        if a.metadata.len() > self.max_metadata {
            return Err(exceeded("metadata entries", a.metadata.len(), self.max_metadata));
        }
        let meta_bytes: usize = a.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if meta_bytes > self.max_metadata_bytes {
            return Err(exceeded("metadata bytes", meta_bytes, self.max_metadata_bytes));
        }
        for (name, id) in [
            ("broadcast id", &a.broadcast_id),
            ("sequence id", &a.sequence_id),
            ("contact id", &a.contact_id),
            ("template key", &a.template_key),
        ] {
            self.check_len(name, id.as_deref(), self.max_id_bytes)?;
        }
        Ok(())
    }

    /// A string field against its bound.
    pub fn check_len(&self, what: &str, value: Option<&str>, limit: usize) -> Result<(), NormalizeError> {
        match value {
            Some(v) if v.len() > limit => Err(exceeded(what, v.len(), limit)),
            _ => Ok(()),
        }
    }

    /// An event time against the accepted range, given when the record was received.
    pub fn check_time(&self, occurred_at: i64, received_at: i64) -> Result<(), NormalizeError> {
        let latest = received_at.saturating_add(self.max_event_time_ahead_secs.saturating_mul(1000));
        if occurred_at < self.min_event_time_ms || occurred_at > latest {
            return Err(NormalizeError::InvalidField {
                field: "time",
                reason: format!(
                    "{occurred_at} ms is outside [{}, received + {} s]",
                    self.min_event_time_ms, self.max_event_time_ahead_secs
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bound_is_enforced_at_its_value() {
        let l = Limits { max_labels: 2, max_labels_bytes: 6, max_metadata: 1, max_metadata_bytes: 4, max_id_bytes: 3, ..Limits::default() };
        let mut a = Attribution { labels: vec!["a".into(), "b".into()], ..Default::default() };
        assert!(l.check_attribution(&a).is_ok());
        a.labels.push("c".into());
        assert_eq!(l.check_attribution(&a).unwrap_err().code(), "limit_exceeded");
        a.labels = vec!["abcd".into(), "efg".into()];
        assert!(l.check_attribution(&a).unwrap_err().to_string().contains("label bytes: 7 > 6"));
        a.labels.clear();
        a.metadata.insert("ab".into(), "cd".into());
        assert!(l.check_attribution(&a).is_ok());
        a.metadata.insert("e".into(), "".into());
        assert!(l.check_attribution(&a).is_err());
        a.metadata = [("abc".to_string(), "de".to_string())].into();
        assert!(l.check_attribution(&a).is_err());
        a.metadata.clear();
        a.broadcast_id = Some("abcd".into());
        assert!(l.check_attribution(&a).unwrap_err().to_string().contains("broadcast id: 4 > 3"));
    }

    #[test]
    fn times_outside_the_range_are_refused_without_overflow() {
        let l = Limits::default();
        let now = 1_700_000_000_000;
        assert!(l.check_time(now, now).is_ok());
        assert!(l.check_time(now + 86_400_000, now).is_ok());
        assert!(l.check_time(now + 86_400_001, now).is_err());
        assert!(l.check_time(l.min_event_time_ms - 1, now).is_err());
        assert!(l.check_time(i64::MIN, now).is_err());
        assert!(l.check_time(i64::MAX, now).is_err());
        assert!(l.check_time(i64::MAX, i64::MAX).is_ok());
    }
}
