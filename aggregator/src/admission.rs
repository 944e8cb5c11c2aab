//! What an event must satisfy to enter a batch; the rest is dead-lettered (`dead_letter`).
//!
//! Checked per record before a batch is formed: cheap, and a function of the record alone
//! (never of the clock or the state), so a replayed record is refused again and a replayed
//! batch is the same batch. The bounds keep every value inside what the tables and the
//! arithmetic can hold (times fit `DateTime64(3)`, `Date` buckets and the TTL's `DateTime`;
//! no time difference can overflow) and keep the statements the aggregator builds from a
//! batch (`IN` lists of addresses and keys) small (`store::MAX_IN_LIST_BYTES`).

use schemas::EventRef;
use serde::{Deserialize, Serialize};

/// Earliest accepted `occurred_at` / `received_at`: 1970-01-01T00:00:00Z (UTC ms). Earlier
/// times have no `Date` bucket (ClickHouse `Date` starts at the epoch).
pub const MIN_EVENT_TIME_MS: i64 = 0;
/// First refused `occurred_at` / `received_at`: 2100-01-01T00:00:00Z (UTC ms). The events
/// TTL (`toDateTime`, to 2106) and `Date` buckets (to 2149) end soon after.
pub const MAX_EVENT_TIME_MS: i64 = 4_102_444_800_000;
/// Months an accepted time can fall in, one more for a reporting zone's day after the last:
/// the most partitions (by month) one insert of a batch can touch.
pub const MAX_MONTHS: u32 = 130 * 12 + 1;
/// Largest accepted cost of one event, in currency units (`Decimal(38, 10)` columns sum them).
pub const MAX_COST_UNITS: i64 = 1_000_000_000_000;

/// Bounds of one event (`Config`'s `max_*` keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest recipient (address, phone number, device token), in bytes. RFC 5321 allows
    /// 254 for a mail path; device tokens are shorter.
    pub max_recipient_bytes: usize,
    /// Longest identifier, in bytes: event id, tenant, provider, provider message/event id and
    /// name, delivery key, broadcast/sequence/contact/template ids, error code, IP, cost unit,
    /// raw topic, each label.
    pub max_id_bytes: usize,
    /// Longest free text, in bytes: click URL, user agent, error reason.
    pub max_text_bytes: usize,
    /// Most labels on one event.
    pub max_labels: usize,
    /// Most bytes of metadata (keys and values) on one event.
    pub max_metadata_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_recipient_bytes: 320, max_id_bytes: 512, max_text_bytes: 8192, max_labels: 64, max_metadata_bytes: 16 * 1024 }
    }
}

/// Why a record was refused: a bounded code (metric label, dead-letter `reason_code`) and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub reason: String,
}

impl Rejection {
    fn new(code: &'static str, reason: String) -> Self {
        Rejection { code, reason }
    }
}

/// Checks `e` against the bounds; `Err` says why it cannot be applied.
pub fn admit(e: &EventRef<'_>, limits: &Limits) -> Result<(), Rejection> {
    for (name, v) in [("event_id", &e.event_id), ("tenant", &e.tenant), ("delivery_key", &e.delivery_key)] {
        if v.is_empty() {
            return Err(Rejection::new("missing_field", format!("{name} is empty")));
        }
    }
    for (name, t) in [("occurred_at", e.occurred_at), ("received_at", e.received_at)] {
        if !(MIN_EVENT_TIME_MS..MAX_EVENT_TIME_MS).contains(&t) {
            return Err(Rejection::new(
                "time_out_of_range",
                format!("{name} {t} ms is outside [{MIN_EVENT_TIME_MS}, {MAX_EVENT_TIME_MS}) (1970-01-01 to 2100-01-01 UTC)"),
            ));
        }
    }
    if e.recipient.len() > limits.max_recipient_bytes {
        return Err(Rejection::new("recipient_too_long", format!("recipient is {} bytes, more than {}", e.recipient.len(), limits.max_recipient_bytes)));
    }
    let opt = |v: &Option<&str>| v.map_or(0, str::len);
    let ids = [
        ("event_id", e.event_id.len()),
        ("tenant", e.tenant.len()),
        ("provider", e.provider.len()),
        ("provider_message_id", e.provider_message_id.len()),
        ("provider_event_id", opt(&e.provider_event_id)),
        ("provider_event_name", e.provider_event_name.len()),
        ("delivery_key", e.delivery_key.len()),
        ("broadcast_id", opt(&e.broadcast_id)),
        ("sequence_id", opt(&e.sequence_id)),
        ("contact_id", opt(&e.contact_id)),
        ("template_key", opt(&e.template_key)),
        ("error_code", opt(&e.error_code)),
        ("ip", opt(&e.ip)),
        ("raw_topic", e.raw_topic.len()),
        ("cost.unit", e.cost.as_ref().map_or(0, |c| c.unit.len())),
        ("labels[]", e.labels.iter().map(|l| l.len()).max().unwrap_or(0)),
    ];
    let texts = [("click_url", opt(&e.click_url)), ("user_agent", opt(&e.user_agent)), ("error_reason", opt(&e.error_reason))];
    let too_long = ids
        .iter()
        .map(|(n, l)| (*n, *l, limits.max_id_bytes))
        .chain(texts.iter().map(|(n, l)| (*n, *l, limits.max_text_bytes)))
        .find(|(_, len, max)| len > max);
    if let Some((name, len, max)) = too_long {
        return Err(Rejection::new("field_too_long", format!("{name} is {len} bytes, more than {max}")));
    }
    if e.labels.len() > limits.max_labels {
        return Err(Rejection::new("too_many_labels", format!("{} labels, more than {}", e.labels.len(), limits.max_labels)));
    }
    let metadata: usize = e.metadata.iter().map(|(k, v)| k.len().saturating_add(v.len())).fold(0, usize::saturating_add);
    if metadata > limits.max_metadata_bytes {
        return Err(Rejection::new("metadata_too_large", format!("metadata is {metadata} bytes, more than {}", limits.max_metadata_bytes)));
    }
    if let Some(c) = &e.cost {
        if c.amount.abs() > rust_decimal::Decimal::from(MAX_COST_UNITS) {
            return Err(Rejection::new("cost_out_of_range", format!("cost beyond ±{MAX_COST_UNITS} {}", c.unit)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::Event;
    use schemas::EventType;

    fn ok() -> Event {
        schemas::testkit::event("e1", "dk", EventType::Delivered, 1_767_225_600_000)
    }

    fn code(e: &Event) -> Option<&'static str> {
        admit(&e.as_event_ref(), &Limits::default())
            .err()
            .map(|r| r.code)
    }

    #[test]
    fn each_bound_refuses_with_its_code() {
        assert_eq!(code(&ok()), None);
        type Mutation = Box<dyn Fn(&mut Event)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("missing_field", Box::new(|e: &mut Event| e.tenant.clear())),
            ("missing_field", Box::new(|e: &mut Event| e.delivery_key.clear())),
            ("time_out_of_range", Box::new(|e: &mut Event| e.occurred_at = i64::MAX)),
            ("time_out_of_range", Box::new(|e: &mut Event| e.occurred_at = i64::MIN)),
            ("time_out_of_range", Box::new(|e: &mut Event| e.occurred_at = -1)),
            ("time_out_of_range", Box::new(|e: &mut Event| e.occurred_at = MAX_EVENT_TIME_MS)),
            ("time_out_of_range", Box::new(|e: &mut Event| e.received_at = i64::MIN)),
            ("recipient_too_long", Box::new(|e: &mut Event| e.recipient = format!("{}@example.com", "a".repeat(320)))),
            ("field_too_long", Box::new(|e: &mut Event| e.user_agent = Some("x".repeat(8193)))),
            ("field_too_long", Box::new(|e: &mut Event| e.broadcast_id = Some("b".repeat(513)))),
            ("field_too_long", Box::new(|e: &mut Event| e.labels = vec!["l".repeat(513)])),
            ("too_many_labels", Box::new(|e: &mut Event| e.labels = (0..65).map(|i| i.to_string()).collect())),
            ("metadata_too_large", Box::new(|e: &mut Event| e.metadata = (0..20).map(|i| (i.to_string(), "v".repeat(1000))).collect())),
            ("cost_out_of_range", Box::new(|e: &mut Event| e.cost = Some(schemas::Money::new(rust_decimal::Decimal::MAX, "USD")))),
        ];
        for (want, f) in cases {
            let mut e = ok();
            f(&mut e);
            assert_eq!(code(&e), Some(want), "{e:?}");
        }
        // the edges themselves are accepted
        let mut e = ok();
        e.recipient = "r".repeat(320);
        e.occurred_at = MIN_EVENT_TIME_MS;
        e.received_at = MAX_EVENT_TIME_MS - 1;
        e.user_agent = Some("x".repeat(8192));
        e.labels = (0..64).map(|i| i.to_string()).collect();
        e.cost = Some(schemas::Money::new(rust_decimal::Decimal::from(MAX_COST_UNITS), "USD"));
        assert_eq!(code(&e), None);
    }
}
