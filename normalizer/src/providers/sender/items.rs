//! Batches of the sender's own JSON items (send records, app events, push results):
//! one parser, one set of field checks, and errors that name the offending item.

use crate::providers::edge_limits::EdgeLimits;
use crate::providers::{NormalizeError, VerifyError};
use rust_decimal::Decimal;
use schemas::event::{rfc3339_millis, Attribution};
use schemas::{MessageClass, Money, ProviderId};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Why a batch was refused: the first offending item (if any) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub index: Option<usize>,
    pub reason: String,
}

impl ItemError {
    fn body(reason: impl Into<String>) -> Self {
        ItemError { index: None, reason: reason.into() }
    }
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "item {i}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl From<ItemError> for VerifyError {
    fn from(e: ItemError) -> Self {
        VerifyError::Malformed(e.to_string())
    }
}

impl From<ItemError> for NormalizeError {
    fn from(e: ItemError) -> Self {
        NormalizeError::InvalidField { field: "body", reason: e.to_string() }
    }
}

/// One kind of batch item: its accepted keys and the checks serde cannot express.
pub trait Item: DeserializeOwned {
    /// Every key an item may carry; any other key refuses the item (typos must not pass silently).
    const FIELDS: &'static [&'static str];
    fn validate(&self) -> Result<(), String>;
}

/// Parses a JSON array of items, checking each; the first bad item refuses the batch.
pub fn parse_batch<T: Item>(body: &[u8]) -> Result<Vec<T>, ItemError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ItemError::body(format!("invalid JSON: {e}")))?;
    parse_values(value)
}

fn parse_values<T: Item>(value: Value) -> Result<Vec<T>, ItemError> {
    let Value::Array(items) = value else {
        return Err(ItemError::body("body must be a JSON array of items"));
    };
    if items.is_empty() {
        return Err(ItemError::body("body is an empty array"));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| parse_item::<T>(v).map_err(|reason| ItemError { index: Some(i), reason }))
        .collect()
}

/// As [`parse_batch`], and within `limits` (the edge's check, before anything is stored): the
/// number of items, then each item's recipient, field, label, metadata and attribution sizes.
pub fn parse_batch_within<T: Item>(body: &[u8], limits: &EdgeLimits) -> Result<Vec<T>, ItemError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ItemError::body(format!("invalid JSON: {e}")))?;
    if let Value::Array(items) = &value {
        if items.len() > limits.max_items_per_request {
            return Err(ItemError::body(format!(
                "{} items, over the limit of {} per request (max_items_per_request); split the batch",
                items.len(),
                limits.max_items_per_request
            )));
        }
        for (i, item) in items.iter().enumerate() {
            if let Value::Object(map) = item {
                check_item(map, limits).map_err(|reason| ItemError { index: Some(i), reason })?;
            }
        }
    }
    parse_values(value)
}

/// Fields holding the item's recipient.
const RECIPIENT_FIELDS: [&str; 2] = ["recipient", "token"];
/// Scalar attribution fields, copied into the item's event.
const ATTRIBUTION_FIELDS: [&str; 4] = ["broadcast", "sequence", "contact", "template"];

fn check_item(map: &serde_json::Map<String, Value>, limits: &EdgeLimits) -> Result<(), String> {
    let mut attribution = 0usize;
    for (key, v) in map {
        match (key.as_str(), v) {
            (k, Value::String(s)) if RECIPIENT_FIELDS.contains(&k) && s.len() > limits.max_recipient_bytes => {
                return Err(format!("`{k}` is {} bytes, over the limit of {} (max_recipient_bytes)", s.len(), limits.max_recipient_bytes));
            }
            (k, Value::String(s)) if !RECIPIENT_FIELDS.contains(&k) && s.len() > limits.max_field_bytes => {
                return Err(format!("`{k}` is {} bytes, over the limit of {} (max_field_bytes)", s.len(), limits.max_field_bytes));
            }
            ("labels", Value::Array(labels)) => {
                if labels.len() > limits.max_labels_per_item {
                    return Err(format!("`labels` has {} entries, over the limit of {} (max_labels_per_item)", labels.len(), limits.max_labels_per_item));
                }
                attribution += labels.iter().map(json_len).sum::<usize>();
            }
            ("metadata", Value::Object(m)) => {
                if m.len() > limits.max_metadata_entries_per_item {
                    return Err(format!(
                        "`metadata` has {} entries, over the limit of {} (max_metadata_entries_per_item)",
                        m.len(),
                        limits.max_metadata_entries_per_item
                    ));
                }
                attribution += m.iter().map(|(k, v)| k.len() + json_len(v)).sum::<usize>();
            }
            (k, v) if ATTRIBUTION_FIELDS.contains(&k) => attribution += json_len(v),
            // `response` (a push provider's answer) is kept verbatim; bounded as a field.
            (k, v @ (Value::Object(_) | Value::Array(_))) if k != "labels" && k != "metadata" => {
                let n = json_len(v);
                if n > limits.max_field_bytes {
                    return Err(format!("`{k}` is {n} bytes, over the limit of {} (max_field_bytes)", limits.max_field_bytes));
                }
            }
            _ => {}
        }
    }
    if attribution > limits.max_attribution_bytes_per_item {
        return Err(format!(
            "attribution (labels, metadata, broadcast, sequence, contact, template) is {attribution} bytes, over the limit of {} \
             (max_attribution_bytes_per_item)",
            limits.max_attribution_bytes_per_item
        ));
    }
    Ok(())
}

/// Bytes of a value: a string's own length, else its JSON text's (each string inside counted once).
fn json_len(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(json_len).sum::<usize>() + a.len(),
        Value::Object(o) => o.iter().map(|(k, v)| k.len() + json_len(v) + 1).sum(),
        other => other.to_string().len(),
    }
}

fn parse_item<T: Item>(v: Value) -> Result<T, String> {
    let Value::Object(map) = &v else {
        return Err("must be a JSON object".into());
    };
    if let Some(unknown) = map.keys().find(|k| !T::FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field `{unknown}`"));
    }
    let item: T = serde_json::from_value(v).map_err(|e| e.to_string())?;
    item.validate()?;
    Ok(item)
}

/// A required string that must not be blank.
pub fn required(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err(format!("`{field}` must not be empty"))
    } else {
        Ok(())
    }
}

/// An optional RFC 3339 time, as UTC milliseconds.
pub fn time(field: &str, value: Option<&str>) -> Result<Option<i64>, String> {
    value
        .map(|s| rfc3339_millis::parse(s).ok_or_else(|| format!("`{field}` is not an RFC 3339 time: {s}")))
        .transpose()
}

/// The provider a record names, in its canonical spelling; never `sender` itself.
pub fn provider(value: &str) -> Result<ProviderId, String> {
    match ProviderId::from_str(value) {
        Ok(ProviderId::Sender) | Err(_) => Err(format!("`provider` is not a delivery provider: {value}")),
        Ok(id) => Ok(id),
    }
}

/// Attribution the sender attaches to an item (all optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Attrs {
    pub broadcast: Option<String>,
    pub sequence: Option<String>,
    pub contact: Option<String>,
    pub template: Option<String>,
    pub message_class: Option<MessageClass>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl Attrs {
    pub const FIELDS: [&'static str; 7] = ["broadcast", "sequence", "contact", "template", "message_class", "labels", "metadata"];

    pub fn attribution(&self) -> Attribution {
        let mut labels = self.labels.clone();
        labels.sort();
        labels.dedup();
        Attribution {
            broadcast_id: self.broadcast.clone(),
            sequence_id: self.sequence.clone(),
            contact_id: self.contact.clone(),
            template_key: self.template.clone(),
            message_class: self.message_class,
            labels,
            metadata: self.metadata.clone(),
        }
    }
}

/// A cost as the sender reports it: the amount is a decimal string, never a JSON number.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostIn {
    amount: Value,
    unit: String,
}

impl CostIn {
    pub fn money(&self) -> Result<Money, String> {
        let Value::String(amount) = &self.amount else {
            return Err("`cost.amount` must be a decimal string such as \"0.0075\", not a JSON number".into());
        };
        let amount = Decimal::from_str(amount.trim()).map_err(|_| format!("`cost.amount` is not a decimal: {amount}"))?;
        if amount.is_sign_negative() {
            return Err("`cost.amount` must not be negative".into());
        }
        if self.unit.len() != 3 || !self.unit.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!("`cost.unit` is not an ISO 4217 code: {}", self.unit));
        }
        Ok(Money::new(amount, self.unit.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Thing {
        name: String,
        at: Option<String>,
    }

    impl Item for Thing {
        const FIELDS: &'static [&'static str] = &["name", "at"];
        fn validate(&self) -> Result<(), String> {
            required("name", &self.name)?;
            time("at", self.at.as_deref()).map(|_| ())
        }
    }

    #[test]
    fn errors_name_the_first_bad_item() {
        let err = parse_batch::<Thing>(br#"[{"name":"a"},{"name":"b","at":"yesterday"},{}]"#).unwrap_err();
        assert_eq!(err.to_string(), "item 1: `at` is not an RFC 3339 time: yesterday");
        let err = parse_batch::<Thing>(br#"[{"name":"a"},{"nam":"b"}]"#).unwrap_err();
        assert_eq!(err.to_string(), "item 1: unknown field `nam`");
        let err = parse_batch::<Thing>(br#"[{"at":"2024-01-01T00:00:00Z"}]"#).unwrap_err();
        assert_eq!(err.to_string(), "item 0: missing field `name`");
        assert_eq!(parse_batch::<Thing>(b"[]").unwrap_err().to_string(), "body is an empty array");
        assert_eq!(parse_batch::<Thing>(b"{}").unwrap_err().index, None);
        assert_eq!(parse_batch::<Thing>(b"[1]").unwrap_err().to_string(), "item 0: must be a JSON object");
    }

    fn limits() -> EdgeLimits {
        EdgeLimits {
            max_items_per_request: 3,
            max_recipient_bytes: 10,
            max_field_bytes: 20,
            max_labels_per_item: 2,
            max_metadata_entries_per_item: 2,
            max_attribution_bytes_per_item: 30,
            ..EdgeLimits::default()
        }
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Rec {
        recipient: String,
        #[serde(default)]
        labels: Vec<String>,
        #[serde(default)]
        metadata: BTreeMap<String, String>,
        broadcast: Option<String>,
        note: Option<String>,
        response: Option<Value>,
    }

    impl Item for Rec {
        const FIELDS: &'static [&'static str] = &["recipient", "labels", "metadata", "broadcast", "note", "response"];
        fn validate(&self) -> Result<(), String> {
            Ok(())
        }
    }

    /// Each bound refuses the batch with the index of the first item over it and the limit's name;
    /// a batch at every bound passes.
    #[test]
    fn limits_name_the_item_and_the_limit() {
        let l = limits();
        let at_bounds = br#"[{"recipient":"0123456789","labels":["aaaaa","bbbbb"],"metadata":{"k":"vvvvvvvvv"},"broadcast":"b","note":"01234567890123456789"},{"recipient":"a"},{"recipient":"b"}]"#;
        assert_eq!(parse_batch_within::<Rec>(at_bounds, &l).unwrap().len(), 3);
        let cases: [(&[u8], Option<usize>, &str); 8] = [
            (br#"[{"recipient":"a"},{"recipient":"a"},{"recipient":"a"},{"recipient":"a"}]"#, None, "max_items_per_request"),
            (br#"[{"recipient":"a"},{"recipient":"01234567890"}]"#, Some(1), "max_recipient_bytes"),
            (br#"[{"recipient":"a","note":"012345678901234567890"}]"#, Some(0), "max_field_bytes"),
            (br#"[{"recipient":"a"},{"recipient":"a","labels":["a","b","c"]}]"#, Some(1), "max_labels_per_item"),
            (br#"[{"recipient":"a","metadata":{"a":"1","b":"2","c":"3"}}]"#, Some(0), "max_metadata_entries_per_item"),
            (br#"[{"recipient":"a","labels":["aaaaaaaaaa","bbbbbbbbbb"],"metadata":{"k":"vvvvvvvvvv"}}]"#, Some(0), "max_attribution_bytes_per_item"),
            (br#"[{"recipient":"a","broadcast":"0123456789012345678901234567890"}]"#, Some(0), "max_field_bytes"),
            (br#"[{"recipient":"a","response":{"error":{"message":"0123456789012345678901"}}}]"#, Some(0), "max_field_bytes"),
        ];
        for (body, index, limit) in cases {
            let err = parse_batch_within::<Rec>(body, &l).unwrap_err();
            assert_eq!(err.index, index, "{err}");
            assert!(err.reason.contains(limit), "{err}");
            // Without limits the same batch parses: the limit, not the shape, refused it.
            assert!(parse_batch::<Rec>(body).is_ok());
        }
    }

    #[test]
    fn cost_amount_must_be_a_decimal_string() {
        let ok: CostIn = serde_json::from_str(r#"{"amount":"0.0075","unit":"usd"}"#).unwrap();
        assert_eq!(ok.money().unwrap(), Money::new(Decimal::new(75, 4), "USD"));
        let float: CostIn = serde_json::from_str(r#"{"amount":0.0075,"unit":"USD"}"#).unwrap();
        assert!(float.money().unwrap_err().contains("not a JSON number"));
        let bad: CostIn = serde_json::from_str(r#"{"amount":"abc","unit":"USD"}"#).unwrap();
        assert!(bad.money().is_err());
        let neg: CostIn = serde_json::from_str(r#"{"amount":"-1","unit":"USD"}"#).unwrap();
        assert!(neg.money().is_err());
    }

    #[test]
    fn provider_must_be_a_delivery_provider() {
        assert_eq!(provider("SES"), Ok(ProviderId::Ses));
        assert!(provider("sender").is_err());
        assert!(provider("pigeon").is_err());
    }
}
