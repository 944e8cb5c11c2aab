//! Per-tenant secrets and mapping options. Secrets come from configuration, never from the request.

use serde::{Deserialize, Serialize};

/// Secrets of one tenant, one optional entry per provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantCredentials {
    /// SES via SNS: the topic ARN, or a list of ARNs, the tenant's notifications come from
    /// (`ses_topic_arn = "arn:aws:sns:…"` or `["arn:…", "arn:…"]`). Required for the SNS route:
    /// an SNS signature proves a message came from AWS, not from the tenant's account, so
    /// anyone could publish SES-shaped notifications from a topic of their own.
    #[serde(deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub ses_topic_arn: Vec<String>,
    /// SES via SNS: accept notifications from any topic (experiments only; warned about at startup).
    pub ses_accept_any_topic: Option<bool>,
    /// SES via SNS: check the SNS message signature (on by default; off only for local
    /// experiments, warned about at startup).
    pub ses_verify_signature: Option<bool>,
    /// API key for the tenant's own endpoints (send records, app events, push results, EventBridge).
    pub api_key: Option<String>,
    /// SendGrid Event Webhook verification key (base64 DER / PEM public key, ECDSA P-256).
    pub sendgrid_public_key: Option<String>,
    /// Mailgun HTTP webhook signing key.
    pub mailgun_signing_key: Option<String>,
    /// Resend (Svix) endpoint secret, `whsec_...`.
    pub resend_secret: Option<String>,
    /// Postmark webhook basic-auth user and password.
    pub postmark_user: Option<String>,
    pub postmark_password: Option<String>,
    /// Twilio auth token and the public URL Twilio calls (the edge may sit behind a proxy).
    pub twilio_auth_token: Option<String>,
    pub twilio_public_url: Option<String>,
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

impl TenantCredentials {
    /// A tenant receives SES through SNS when any `ses_*` key is set: then it must name its
    /// topics (or, for experiments, set `ses_accept_any_topic = true`). A tenant with no `ses_*`
    /// key gets no SNS route (refused like wrong credentials).
    pub fn receives_ses_via_sns(&self) -> bool {
        !self.ses_topic_arn.is_empty() || self.ses_accept_any_topic.is_some() || self.ses_verify_signature.is_some()
    }

    /// Whether SNS notifications from `topic_arn` are this tenant's. `None`: no SNS route.
    pub fn accepts_sns_topic(&self, topic_arn: &str) -> Option<bool> {
        if self.ses_accept_any_topic == Some(true) {
            return Some(true);
        }
        if self.ses_topic_arn.is_empty() {
            return None;
        }
        Some(self.ses_topic_arn.iter().any(|t| t == topic_arn))
    }

    /// Refuses settings that cannot be meant: empty secrets, half-configured pairs, an SNS route
    /// without a topic pin.
    pub fn validate(&self) -> Result<(), String> {
        let secrets = [
            ("api_key", &self.api_key),
            ("sendgrid_public_key", &self.sendgrid_public_key),
            ("mailgun_signing_key", &self.mailgun_signing_key),
            ("resend_secret", &self.resend_secret),
            ("postmark_user", &self.postmark_user),
            ("postmark_password", &self.postmark_password),
            ("twilio_auth_token", &self.twilio_auth_token),
            ("twilio_public_url", &self.twilio_public_url),
        ];
        for (name, value) in secrets {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(format!("`{name}` is empty; remove the key or set a value"));
            }
        }
        if self.postmark_user.is_some() != self.postmark_password.is_some() {
            return Err("`postmark_user` and `postmark_password` go together".into());
        }
        if self.twilio_auth_token.is_some() != self.twilio_public_url.is_some() {
            return Err("`twilio_auth_token` and `twilio_public_url` go together".into());
        }
        if let Some(bad) = self.ses_topic_arn.iter().find(|t| !t.starts_with("arn:") || !t.contains(":sns:")) {
            return Err(format!("`ses_topic_arn` `{bad}` is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"));
        }
        if self.receives_ses_via_sns() && self.ses_topic_arn.is_empty() && self.ses_accept_any_topic != Some(true) {
            return Err("SES via SNS needs `ses_topic_arn` (the topic ARN or ARNs notifications come from); \
                        `ses_accept_any_topic = true` accepts any topic, for experiments only"
                .into());
        }
        Ok(())
    }

    /// Settings that weaken verification, to log loudly at startup.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.ses_verify_signature == Some(false) {
            out.push("ses_verify_signature = false: SNS signatures are NOT checked; anyone who knows the URL can post forged SES events");
        }
        if self.ses_accept_any_topic == Some(true) {
            out.push("ses_accept_any_topic = true: notifications from ANY SNS topic are accepted; anyone can publish SES-shaped events from their own topic");
        }
        out
    }
}

/// How provider tags and custom fields become attribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeOptions {
    /// Tag / custom-arg name that carries the broadcast id.
    pub broadcast_tag: String,
    /// Tag / custom-arg name that carries the sequence id.
    pub sequence_tag: String,
    /// Tag / custom-arg name that carries the contact id.
    pub contact_tag: String,
    /// Tag / custom-arg name that carries the template key.
    pub template_tag: String,
    /// Tag / custom-arg name that carries the message class (`marketing` | `transactional`).
    pub message_class_tag: String,
    /// Email headers with this prefix are copied into metadata (prefix stripped, lower-cased).
    pub metadata_header_prefix: String,
    /// Bounds on what one record may become (`[mapping.limits]`).
    pub limits: super::limits::Limits,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            broadcast_tag: "broadcast".into(),
            sequence_tag: "sequence".into(),
            contact_tag: "contact".into(),
            template_tag: "template".into(),
            message_class_tag: "message_class".into(),
            metadata_header_prefix: "X-Metadata-".into(),
            limits: Default::default(),
        }
    }
}
