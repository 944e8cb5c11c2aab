//! Per-tenant secrets and mapping options. Secrets come from configuration, never from the request.
//!
//! [`TenantCredentials`](super::TenantCredentials) is generated from the provider list (see
//! `providers/mod.rs`): the tenant's `api_key` and one table per provider, each of the
//! provider's own `Credentials` type (defined in its folder), checked by [`ProviderCredentials`].

use super::TenantCredentials;
use serde::{Deserialize, Serialize};

/// One provider's credentials table: checked at startup, warnings logged loudly.
pub trait ProviderCredentials: std::fmt::Debug + Send + Sync {
    /// Refuses settings that cannot be meant (empty secrets, half-configured pairs).
    fn validate(&self) -> Result<(), String>;

    /// Settings that weaken verification, to log loudly at startup.
    fn warnings(&self) -> Vec<&'static str> {
        Vec::new()
    }
}

/// The credentials of a provider whose requests the tenant's `api_key` authenticates:
/// its table takes no keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoCredentials {}

impl ProviderCredentials for NoCredentials {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// `Err` naming `name` when a configured secret is blank.
pub fn not_blank(name: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("`{name}` is empty; remove the key or set a value"));
    }
    Ok(())
}

impl TenantCredentials {
    /// Refuses settings that cannot be meant, naming the table and key.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(key) = &self.api_key {
            not_blank("api_key", key)?;
        }
        for (provider, creds) in self.providers() {
            creds.validate().map_err(|e| format!("{provider}: {e}"))?;
        }
        Ok(())
    }

    /// Settings that weaken verification, to log loudly at startup.
    pub fn warnings(&self) -> Vec<&'static str> {
        self.providers().into_iter().flat_map(|(_, c)| c.warnings()).collect()
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
