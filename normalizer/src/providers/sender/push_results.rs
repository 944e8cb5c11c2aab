//! `POST /v1/push-results/{tenant}/{fcm|apns}`: what FCM or APNs answered the sender,
//! one item per device token. Shared by the `fcm` and `apns` providers, which differ
//! only in how they read `response` ([`Outcome`]).

use super::items::{self, parse_batch, Attrs, Item};
use crate::providers::build::IdSource;
use crate::providers::signature::{check_api_key, API_KEY_HEADER};
use crate::providers::{EventDraft, NormalizeError, NormalizeOptions, Normalized, RawRecord, RawRequest, TenantCredentials, Verified, VerifyContext, VerifyError};
use schemas::{BounceClass, Channel, EventType};
use serde::Deserialize;
use serde_json::Value;

/// One push send result.
#[derive(Debug, Clone, Deserialize)]
pub struct PushResult {
    /// Device token (the recipient).
    pub token: String,
    /// The sender's id for the message (`provider_message_id`).
    pub message_id: String,
    pub http_status: u16,
    /// The provider's response body, verbatim; `null` when it had none.
    #[serde(default)]
    pub response: Option<Value>,
    pub sent_at: Option<String>,
    #[serde(flatten)]
    pub attrs: Attrs,
}

impl Item for PushResult {
    const FIELDS: &'static [&'static str] = &[
        "token", "message_id", "http_status", "response", "sent_at",
        "broadcast", "sequence", "contact", "template", "message_class", "labels",
    ];

    fn validate(&self) -> Result<(), String> {
        items::required("token", &self.token)?;
        items::required("message_id", &self.message_id)?;
        if !(100..=599).contains(&self.http_status) {
            return Err(format!("`http_status` is not an HTTP status: {}", self.http_status));
        }
        items::time("sent_at", self.sent_at.as_deref())?;
        Ok(())
    }
}

/// What one result means, as the provider's mapping reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `provider_event_name`: `success`, or the provider's error code.
    pub name: String,
    pub event_type: EventType,
    pub bounce_class: Option<BounceClass>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
}

impl Outcome {
    pub fn sent() -> Self {
        Outcome { name: "success".into(), event_type: EventType::Sent, bounce_class: None, error_code: None, error_reason: None }
    }

    /// The device token is gone for good: stop sending to it.
    pub fn hard_bounce(code: &str, reason: Option<String>) -> Self {
        Outcome {
            name: code.to_string(),
            event_type: EventType::Bounced,
            bounce_class: Some(BounceClass::Hard),
            error_code: Some(code.to_string()),
            error_reason: reason,
        }
    }

    pub fn failed(code: &str, reason: Option<String>) -> Self {
        Outcome { name: code.to_string(), event_type: EventType::Failed, bounce_class: None, error_code: Some(code.to_string()), error_reason: reason }
    }

    /// A non-2xx answer without a body we can read.
    pub fn http_failure(status: u16) -> Self {
        Outcome::failed(&format!("http_{status}"), None)
    }
}

/// API key, then the shape of every item.
pub fn verify(req: &RawRequest<'_>, creds: &TenantCredentials, ctx: &VerifyContext) -> Result<Verified, VerifyError> {
    check_api_key(req.header(API_KEY_HEADER), creds.api_key.as_deref())?;
    let results = items::parse_batch_within::<PushResult>(req.body, &ctx.limits)?;
    let partition_key = results.first().map_or_else(|| req.tenant.to_string(), |r| r.message_id.clone());
    Ok(Verified { partition_key, control: None })
}

/// One push event per item, classified by `classify`.
pub fn normalize(raw: &RawRecord<'_>, opts: &NormalizeOptions, classify: impl Fn(&PushResult) -> Outcome) -> Result<Normalized, NormalizeError> {
    let results = parse_batch::<PushResult>(raw.envelope.body)?;
    let mut out = Normalized::default();
    for (i, r) in results.iter().enumerate() {
        let draft = (|| {
            let outcome = classify(r);
            let mut d = EventDraft::new(Channel::Push, r.message_id.as_str(), outcome.name, outcome.event_type);
            d.id_source = IdSource::BodyItem(i);
            d.bounce_class = outcome.bounce_class;
            d.error_code = outcome.error_code;
            d.error_reason = outcome.error_reason;
            d.occurred_at = items::time("sent_at", r.sent_at.as_deref())
                .map_err(|reason| NormalizeError::InvalidField { field: "sent_at", reason })?;
            d.attribution = r.attrs.attribution();
            Ok(d)
        })();
        match draft {
            Ok(d) => out.push_owned(raw, opts, i, d, [r.token.as_str()]),
            Err(e) => out.reject(i, e),
        }
    }
    Ok(out)
}

/// The checks every push-result provider (FCM, APNs) shares: fixtures, API key and item
/// validation in `verify`, errors (not panics) for garbage bodies.
#[cfg(test)]
pub(crate) fn check_push_provider(p: &dyn super::super::Provider, min_fixtures: usize) {
    use crate::providers::signature::API_KEY_HEADER;
    use crate::providers::testkit::{check_fixtures, envelope};
    use crate::providers::{NormalizeOptions, RawRecord, RawRequest, TenantCredentials, VerifyError};
    use std::collections::BTreeMap;

    let name = p.id().as_str();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/providers/{name}/fixtures"));
    let n = check_fixtures(name, &fixtures);
    assert!(n >= min_fixtures, "{name}: only {n} fixtures checked");

    let body = std::fs::read(fixtures.join("success.json")).unwrap();
    let creds = TenantCredentials { api_key: Some("acme-key".into()), ..Default::default() };
    let headers: BTreeMap<String, String> = [(API_KEY_HEADER.to_string(), "acme-key".to_string())].into();
    let url = format!("/v1/push-results/acme/{name}");
    let req = RawRequest { tenant: "acme", route: crate::providers::testkit::route_of(&url), url: &url, headers: &headers, body: &body, now_ms: 0 };
    assert!(p.verify(&req, &creds, crate::providers::testkit::ctx()).is_ok());
    let other: BTreeMap<String, String> = [(API_KEY_HEADER.to_string(), "globex-key".to_string())].into();
    assert_eq!(p.verify(&RawRequest { headers: &other, ..req }, &creds, crate::providers::testkit::ctx()), Err(VerifyError::BadCredentials));
    let none = BTreeMap::new();
    assert_eq!(p.verify(&RawRequest { headers: &none, ..req }, &creds, crate::providers::testkit::ctx()), Err(VerifyError::MissingHeader(API_KEY_HEADER)));
    let bad = br#"[{"token":"t","message_id":"m","http_status":200},{"message_id":"m","http_status":200}]"#;
    let err = p.verify(&RawRequest { body: bad, ..req }, &creds, crate::providers::testkit::ctx()).unwrap_err();
    assert_eq!(err, VerifyError::Malformed("item 1: missing field `token`".into()));
    assert_eq!(err.http_status(), 400);

    for body in [&b""[..], b"[]", b"{}", b"[null]", br#"[{"token":"t","message_id":"m","http_status":"200"}]"#, br#"[{"token":"t","message_id":"m","http_status":200,"sent_at":"now"}]"#] {
        let env = envelope(name, body.to_vec(), BTreeMap::new());
        let raw = RawRecord::new(&env, "raw", 0, 0);
        assert!(crate::providers::testkit::all_events(p.normalize(&raw, &NormalizeOptions::default())).is_err(), "{name}: {}", String::from_utf8_lossy(body));
    }
}
