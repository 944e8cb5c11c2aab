//! `[tenants.<tenant>.ses]`: SES through SNS. (SES through EventBridge authenticates with the
//! tenant's `api_key` and needs no table.)

use crate::providers::credentials::ProviderCredentials;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Credentials {
    /// The topic ARN, or a list of ARNs, the tenant's notifications come from
    /// (`topic_arn = "arn:aws:sns:…"` or `["arn:…", "arn:…"]`). Required: an SNS signature
    /// proves a message came from AWS, not from the tenant's account, so anyone could publish
    /// SES-shaped notifications from a topic of their own.
    #[serde(deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub topic_arn: Vec<String>,
    /// Accept notifications from any topic (experiments only; warned about at startup).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_any_topic: Option<bool>,
    /// Check the SNS message signature (on by default; off only for local experiments,
    /// warned about at startup).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_signature: Option<bool>,
}

/// A string or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl Credentials {
    /// Whether SNS notifications from `topic_arn` are this tenant's.
    pub fn accepts_topic(&self, topic_arn: &str) -> Option<bool> {
        if self.accept_any_topic == Some(true) {
            return Some(true);
        }
        if self.topic_arn.is_empty() {
            return None;
        }
        Some(self.topic_arn.iter().any(|t| t == topic_arn))
    }
}

impl ProviderCredentials for Credentials {
    fn validate(&self) -> Result<(), String> {
        if let Some(bad) = self.topic_arn.iter().find(|t| !t.starts_with("arn:") || !t.contains(":sns:")) {
            return Err(format!("`topic_arn` `{bad}` is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"));
        }
        if self.topic_arn.is_empty() && self.accept_any_topic != Some(true) {
            return Err("SES via SNS needs `topic_arn` (the topic ARN or ARNs notifications come from); \
                        `accept_any_topic = true` accepts any topic, for experiments only"
                .into());
        }
        Ok(())
    }

    fn warnings(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.verify_signature == Some(false) {
            out.push("ses.verify_signature = false: SNS signatures are NOT checked; anyone who knows the URL can post forged SES events");
        }
        if self.accept_any_topic == Some(true) {
            out.push("ses.accept_any_topic = true: notifications from ANY SNS topic are accepted; anyone can publish SES-shaped events from their own topic");
        }
        out
    }
}
