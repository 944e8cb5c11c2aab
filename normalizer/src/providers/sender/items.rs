//! Batches of the sender's own JSON items (send records, app events, push results):
//! one parser, one set of field checks, and errors that name the offending item.

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
