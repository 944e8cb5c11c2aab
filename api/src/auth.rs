//! Who is calling: a per-tenant read key sent as `Authorization: Bearer <key>`.
//!
//! The tenant comes from the key; a request never names the tenant it reads. A `tenant`
//! query parameter is optional and, when given, must be the key's tenant (else 403), so
//! a tool that names its tenant cannot silently read another one. Keys are compared as
//! SHA-256 digests in constant time, every configured key each time (no early exit), so
//! neither timing nor length tells how close a guess was.

use crate::config::Config;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, ToSchema};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, ToSchema)]
pub enum Scope {
    /// Aggregates only (stats, summaries, funnels, sender health).
    #[serde(rename = "stats")]
    Stats,
    /// Rows with recipients (messages, events, suppressions): personal data.
    #[serde(rename = "messages")]
    Messages,
    /// Changes to the suppression list.
    #[serde(rename = "suppressions:write")]
    SuppressionsWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Stats => "stats",
            Scope::Messages => "messages",
            Scope::SuppressionsWrite => "suppressions:write",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        [Scope::Stats, Scope::Messages, Scope::SuppressionsWrite].into_iter().find(|x| x.as_str() == s)
    }
}

struct Entry {
    digest: [u8; 32],
    tenant: String,
    name: String,
    scopes: Vec<Scope>,
}

/// Every configured key, as digests.
pub struct Keys(Vec<Entry>);

impl Keys {
    /// From a validated config (unknown scopes were refused by `Config::validate`).
    pub fn from_config(cfg: &Config) -> Keys {
        let mut v = Vec::new();
        for (tenant, keys) in &cfg.tenants {
            for (name, k) in &keys.keys {
                v.push(Entry {
                    digest: Sha256::digest(k.key.as_bytes()).into(),
                    tenant: tenant.clone(),
                    name: name.clone(),
                    scopes: k.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                });
            }
        }
        Keys(v)
    }

    /// The caller a presented key belongs to.
    pub fn find(&self, presented: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found: Option<&Entry> = None;
        for e in &self.0 {
            if bool::from(e.digest.ct_eq(&digest)) {
                found = Some(e);
            }
        }
        found.map(|e| Caller { tenant: e.tenant.clone(), key_name: e.name.clone(), scopes: e.scopes.clone() })
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: String,
    /// The key's name in the config: "who" in the suppression history.
    pub key_name: String,
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// 403 unless the key holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("this key lacks the `{}` scope", scope.as_str())))
        }
    }
}

/// The optional `tenant` parameter every `/v1` endpoint accepts.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantParam {
    /// The tenant the caller expects to read; must be the key's tenant (403 otherwise). Optional:
    /// the key alone decides the tenant.
    pub tenant: Option<String>,
}

impl FromRequestParts<crate::AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &crate::AppState) -> Result<Caller, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let presented = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).map(str::trim).unwrap_or_default();
        if presented.is_empty() {
            return Err(ApiError::Unauthorized);
        }
        let caller = state.keys.find(presented).ok_or(ApiError::Unauthorized)?;
        let query = parts.uri.query().unwrap_or_default();
        for (k, v) in serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default() {
            if k == "tenant" && v != caller.tenant {
                return Err(ApiError::Forbidden("this key belongs to another tenant".into()));
            }
        }
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KeyConfig, TenantKeys};

    #[test]
    fn finds_the_key_of_its_tenant_only() {
        let mut cfg = Config::default();
        for (t, key) in [("acme", "ka"), ("beta", "kb")] {
            let mut keys = TenantKeys::default();
            keys.keys.insert("read".into(), KeyConfig { key: key.into(), scopes: vec!["stats".into()] });
            cfg.tenants.insert(t.into(), keys);
        }
        let keys = Keys::from_config(&cfg);
        assert_eq!(keys.find("ka").unwrap().tenant, "acme");
        assert_eq!(keys.find("kb").unwrap().tenant, "beta");
        assert!(keys.find("k").is_none());
        assert!(keys.find("").is_none());
        let c = keys.find("ka").unwrap();
        assert!(c.require(Scope::Stats).is_ok());
        assert!(matches!(c.require(Scope::Messages), Err(ApiError::Forbidden(_))));
    }
}
