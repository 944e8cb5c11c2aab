//! Bounds on what one request may carry, checked at the edge (the normalizer's own bounds on
//! what a stored record may become are in `limits`) by `verify` (after authentication,
//! before anything is stored): a request over a bound is refused with a 400 that names the
//! item and the limit. ingest reads them from its config (`[limits]`) into its `VerifyContext`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeLimits {
    /// Items in one JSON batch (send records, app events, push results).
    pub max_items_per_request: usize,
    /// Bytes of one item's recipient (`recipient`, or a push `token`). Each item names exactly
    /// one recipient, so this bounds the recipients of an item too. The same bound as the
    /// normalizer's and the aggregator's `max_recipient_bytes` (320): what the edge accepts flows.
    pub max_recipient_bytes: usize,
    /// Bytes of any other string field of an item (ids, URLs, user agents ..).
    pub max_field_bytes: usize,
    /// Entries of `labels` in one item.
    pub max_labels_per_item: usize,
    /// Entries of `metadata` in one item.
    pub max_metadata_entries_per_item: usize,
    /// Bytes of one item's attribution, copied into its event: labels, metadata keys and values,
    /// broadcast, sequence, contact, template.
    pub max_attribution_bytes_per_item: usize,
    /// Fields of a form-encoded body (Twilio), counted before the body is parsed.
    pub max_form_fields: usize,
    /// Mailgun signature tokens remembered to refuse replays within the timestamp window; when
    /// full, the oldest are forgotten first.
    pub max_remembered_tokens: usize,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            max_items_per_request: 1000,
            max_recipient_bytes: 320,
            max_field_bytes: 8 * 1024,
            max_labels_per_item: 64,
            max_metadata_entries_per_item: 64,
            max_attribution_bytes_per_item: 16 * 1024,
            max_form_fields: 200,
            max_remembered_tokens: 200_000,
        }
    }
}

impl EdgeLimits {
    /// Every bound must be positive.
    pub fn validate(&self) -> Result<(), String> {
        let all = [
            ("max_items_per_request", self.max_items_per_request),
            ("max_recipient_bytes", self.max_recipient_bytes),
            ("max_field_bytes", self.max_field_bytes),
            ("max_labels_per_item", self.max_labels_per_item),
            ("max_metadata_entries_per_item", self.max_metadata_entries_per_item),
            ("max_attribution_bytes_per_item", self.max_attribution_bytes_per_item),
            ("max_form_fields", self.max_form_fields),
            ("max_remembered_tokens", self.max_remembered_tokens),
        ];
        match all.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(format!("limits.{name} must be greater than 0")),
            None => Ok(()),
        }
    }
}
