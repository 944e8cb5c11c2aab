//! Providers: one folder per provider, each implementing [`Provider`].
//!
//! This file is the only list of providers ([`registry`]). Adding one means a
//! folder with `mod.rs` (the trait impl), its mapping, its fixtures and one line here.

pub mod build;
pub mod credentials;
pub mod error;
pub mod limits;
pub mod apns;
pub mod fcm;
pub mod mailgun;
pub mod postmark;
pub mod resend;
pub mod sender;
pub mod sendgrid;
pub mod ses;
pub mod signature;
pub mod twilio;
#[cfg(test)]
pub mod testkit;

pub use build::{EventDraft, Normalized, RawRecord, Rejected};
pub use limits::Limits;
pub use credentials::{NormalizeOptions, TenantCredentials};
pub use error::{NormalizeError, VerifyError};

use schemas::ProviderId;
use std::collections::BTreeMap;

/// An HTTP request as ingest received it, before it is stored.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    pub tenant: &'a str,
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

/// One provider: how to check its requests and how to read its payloads.
pub trait Provider: Send + Sync {
    fn id(&self) -> ProviderId;

    /// Request headers that `verify` or `normalize` need later; ingest keeps only these.
    fn kept_headers(&self) -> &'static [&'static str];

    /// Checks that the request really comes from the provider, for this tenant.
    fn verify(&self, req: &RawRequest<'_>, creds: &TenantCredentials) -> Result<Verified, VerifyError>;

    /// Maps one stored raw record to canonical events, one per recipient, through
    /// [`Normalized::push`] (which applies `opts.limits`). `Err` when the body as a whole
    /// cannot be read; items that cannot be read are [`Normalized::rejected`] and the others
    /// still flow. No events and no rejections means a control message with nothing to report.
    fn normalize(&self, raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError>;
}

/// Every provider, looked up by id.
pub fn registry(id: ProviderId) -> &'static dyn Provider {
    // One line per provider; the match is exhaustive so a new ProviderId cannot be forgotten.
    match id {
        ProviderId::Ses => &ses::Ses,
        ProviderId::Sendgrid => &sendgrid::Sendgrid,
        ProviderId::Mailgun => &mailgun::Mailgun,
        ProviderId::Resend => &resend::Resend,
        ProviderId::Postmark => &postmark::Postmark,
        ProviderId::Twilio => &twilio::Twilio,
        ProviderId::Fcm => &fcm::Fcm,
        ProviderId::Apns => &apns::Apns,
        ProviderId::Sender => &sender::Sender,
    }
}
