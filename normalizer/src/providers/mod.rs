//! Providers: one folder per provider, each implementing [`Provider`].
//!
//! This file is the only list of providers ([`registry`]). Adding one means a
//! folder with `mod.rs` (the trait impl), its mapping, its fixtures and one line here.

pub mod build;
pub mod context;
pub mod credentials;
pub mod error;
pub mod edge_limits;
pub mod json;
pub mod json_str;
pub mod limits;
#[cfg(any(test, feature = "samples"))]
pub mod samples;
pub mod signature;
#[cfg(test)]
pub mod testkit;

pub use build::{EventDraft, Normalized, RawRecord, Rejected};
pub use context::VerifyContext;
pub use limits::Limits;
pub use credentials::{NormalizeOptions, ProviderCredentials};
pub use error::{NormalizeError, VerifyError};

use schemas::{ProviderId, Route};
use std::collections::BTreeMap;

/// An HTTP request as ingest received it, before it is stored.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    pub tenant: &'a str,
    /// The route it came in on (one of the provider's [`Provider::routes`]).
    pub route: &'a Route,
    /// Path and query as received (`/webhooks/twilio/acme?x=1`).
    pub url: &'a str,
    /// Header names in lower case.
    pub headers: &'a BTreeMap<String, String>,
    pub body: &'a [u8],
    /// Milliseconds since the epoch, for replay windows.
    pub now_ms: i64,
}

impl RawRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// What a successful verification tells ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Kafka key for the raw record: all records of one message share it.
    pub partition_key: String,
    /// A control message (e.g. an SNS subscription confirmation) to report, not a delivery event.
    pub control: Option<String>,
}

/// One provider: where its requests come in, how to check them and how to read its payloads.
pub trait Provider: Send + Sync {
    fn id(&self) -> ProviderId;

    /// The routes its requests come in on; ingest answers any other 404 for this provider.
    fn routes(&self) -> &'static [Route];

    /// Request headers that `verify` or `normalize` need later; ingest keeps only these.
    fn kept_headers(&self) -> &'static [&'static str];

    /// Checks that the request really comes from the provider, for this tenant. `ctx` holds
    /// what verification keeps between requests (certificates, replay tokens, edge limits).
    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials, ctx: &VerifyContext) -> Result<Verified, VerifyError>;

    /// Maps one stored raw record to canonical events, one per recipient, through
    /// [`Normalized::push`] (which applies `opts.limits`). `Err` when the body as a whole
    /// cannot be read; items that cannot be read are [`Normalized::rejected`] and the others
    /// still flow. No events and no rejections means a control message with nothing to report.
    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError>;

    /// Demo credentials for `ctx.tenant` (deterministic, never production secrets), set into
    /// `creds`: what `samples` signs with.
    #[cfg(any(test, feature = "samples"))]
    fn demo_credentials(&self, ctx: &samples::Context, creds: &mut TenantCredentials);

    /// Requests as the provider sends them, one per documented fixture, signed with
    /// `demo_credentials` (for `sample-traffic`, the all-providers test and the demo).
    #[cfg(any(test, feature = "samples"))]
    fn samples(&self, ctx: &samples::Context) -> Vec<samples::Sample>;
}

/// Declares every provider's module, the registry and the per-provider credentials, from the
/// one provider list (`schemas::for_each_provider!`). Each module `m` with variant `V` defines
/// `pub struct V` implementing [`Provider`] and `pub type Credentials` (its
/// `[tenants.<tenant>.m]` table, a [`ProviderCredentials`]).
macro_rules! providers {
    ($($variant:ident $module:ident,)*) => {
        $(pub mod $module;)*

        /// Every provider, looked up by id (generated from the provider list).
        pub fn registry(id: ProviderId) -> &'static dyn Provider {
            match id {
                $(ProviderId::$variant => &$module::$variant,)*
            }
        }

        /// Secrets of one tenant: the tenant's API key (its own endpoints and the API-key
        /// routes of providers such as SES EventBridge) and one optional table per provider
        /// (`[tenants.<tenant>.<provider>]`). Secrets come from configuration, never from the request.
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct TenantCredentials {
            /// API key for the tenant's own endpoints (send records, app events, push results)
            /// and API-key routes (SES EventBridge).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub api_key: Option<String>,
            $(
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $module: Option<$module::Credentials>,
            )*
        }

        impl TenantCredentials {
            /// Each configured provider table, with its provider.
            pub fn providers(&self) -> Vec<(ProviderId, &dyn ProviderCredentials)> {
                let mut out: Vec<(ProviderId, &dyn ProviderCredentials)> = Vec::new();
                $(
                    if let Some(c) = &self.$module {
                        out.push((ProviderId::$variant, c));
                    }
                )*
                out
            }
        }
    };
}

schemas::for_each_provider!(providers);

/// One line per provider: name, routes (as HTTP paths) and headers ingest keeps. Generated
/// from the registry, so it lists a new provider with no line of its own.
pub fn describe() -> String {
    let mut out = String::new();
    for id in ProviderId::ALL {
        let p = registry(id);
        let routes: Vec<String> = p.routes().iter().map(|r| format!("POST {}", r.path(id, "{tenant}"))).collect();
        out.push_str(&format!("{id}\t{}\theaders kept: {}\tcredentials: [tenants.<tenant>.{id}]\n", routes.join(", "), p.kept_headers().join(" ")));
    }
    out
}
