//! Per-tenant secrets and mapping options. Secrets come from configuration, never from the request.

use serde::{Deserialize, Serialize};

/// Secrets of one tenant, one optional entry per provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantCredentials {
    /// SES via SNS: when set, only notifications from this topic are accepted.
    pub ses_topic_arn: Option<String>,
    /// SES via SNS: check the SNS message signature (on by default; off only for local experiments).
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
