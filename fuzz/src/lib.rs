//! Shared input format and helpers for the fuzz targets (see `FUZZING.md`).
//!
//! Request-shaped targets (`provider`, `pipeline`, `avro` mode 3/4) read one input as:
//!
//! ```text
//! byte 0   provider: ProviderId::ALL[byte % 9]
//! byte 1   flags: bit 0  the tenant has credentials for every provider
//!                 bit 1  SES: check the SNS signature (certificates come from a local
//!                        source serving the committed test certificate: never the network)
//!                 bit 2  sign: the target adds the right API key / basic auth / Svix headers
//!                 bits 4-6 route: 0 /webhooks/{p}/acme, 1 /webhooks/{p}/acme/eventbridge,
//!                        2 /v1/sends/acme, 3 /v1/events/acme, 4 /v1/push-results/acme/{p}
//! then     header lines `name: value\n` up to an empty line (`\n`), then the body.
//! ```
//!
//! The format keeps fixture seeds readable (`fuzz/seed.sh` writes them) and lets the fuzzer
//! mutate headers and body independently.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use normalizer::providers::{NormalizeOptions, RawRecord, RawRequest, TenantCredentials, VerifyContext};
use schemas::{ProviderId, RawEnvelope, Route};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// 2030-01-01: inside the committed SNS test certificate's validity window.
pub const NOW_MS: i64 = 1_893_456_000_000;
pub const TENANT: &str = "acme";
pub const API_KEY: &str = "fuzz-api-key";
pub const POSTMARK_USER: &str = "fuzz-user";
pub const POSTMARK_PASSWORD: &str = "fuzz-password";
/// `whsec_` + base64("fuzz-resend-secret").
pub const RESEND_SECRET: &str = "whsec_ZnV6ei1yZXNlbmQtc2VjcmV0";
pub const MAILGUN_KEY: &str = "fuzz-mailgun-key";
pub const TWILIO_TOKEN: &str = "fuzz-twilio-token";
pub const SES_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-events";
/// The committed SNS test certificate (self-signed, test key); served for every URL.
const TEST_CERT: &[u8] = include_bytes!("../../normalizer/src/providers/ses/fixtures/test_signing_cert.pem");

/// A request as decoded from fuzz input.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub provider: ProviderId,
    pub creds: TenantCredentials,
    pub route: Route,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: &'a [u8],
}

/// The verification context of every target: default limits and a certificate source that
/// never touches the network (the committed test certificate for every URL).
pub fn context() -> &'static VerifyContext {
    static CTX: OnceLock<VerifyContext> = OnceLock::new();
    CTX.get_or_init(|| VerifyContext::new(Default::default(), Arc::new(|_url: &str| -> Result<Vec<u8>, String> { Ok(TEST_CERT.to_vec()) })))
}

/// Every credential the code knows, set; SNS signature checks per `verify_signature`.
pub fn full_credentials(verify_signature: bool) -> TenantCredentials {
    use normalizer::providers::{mailgun, postmark, resend, sendgrid, ses, twilio};
    TenantCredentials {
        ses: Some(ses::Credentials { topic_arn: vec![SES_TOPIC.into()], accept_any_topic: None, verify_signature: Some(verify_signature) }),
        api_key: Some(API_KEY.into()),
        // A valid P-256 public key (base64 DER), the one normalizer's SendGrid tests use.
        sendgrid: Some(sendgrid::Credentials::new(
            "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==",
        )),
        mailgun: Some(mailgun::Credentials { signing_key: MAILGUN_KEY.into() }),
        resend: Some(resend::Credentials { secret: RESEND_SECRET.into() }),
        postmark: Some(postmark::Credentials { user: POSTMARK_USER.into(), password: POSTMARK_PASSWORD.into() }),
        twilio: Some(twilio::Credentials { auth_token: TWILIO_TOKEN.into(), public_url: "https://hooks.example.com".into() }),
        ..TenantCredentials::default()
    }
}

/// Decodes the request format above; `None` when the input is too short.
pub fn request(data: &[u8]) -> Option<Request<'_>> {
    let (&p, rest) = data.split_first()?;
    let (&flags, rest) = rest.split_first()?;
    let provider = ProviderId::ALL[p as usize % ProviderId::ALL.len()];
    let name = provider.as_str();
    let creds = if flags & 1 != 0 {
        full_credentials(flags & 2 != 0)
    } else {
        // No credentials, but never a network fetch either (the source is local anyway).
        let ses = normalizer::providers::ses::Credentials { verify_signature: Some(flags & 2 != 0), ..Default::default() };
        TenantCredentials { ses: Some(ses), ..TenantCredentials::default() }
    };
    let route = match (flags >> 4) & 7 {
        1 => Route::WebhookVariant("eventbridge".into()),
        2 => Route::Sends,
        3 => Route::Events,
        4 => Route::PushResults,
        _ => Route::Webhook,
    };
    let url = route.path(provider, TENANT);
    let _ = name;
    let mut headers = BTreeMap::new();
    let mut rest = rest;
    loop {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = after;
        if line.is_empty() {
            break;
        }
        let line = String::from_utf8_lossy(line);
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        if rest.is_empty() {
            break;
        }
    }
    let mut req = Request { provider, creds, route, url, headers, body: rest };
    if flags & 4 != 0 {
        sign(&mut req);
    }
    Some(req)
}

/// Adds the headers a correctly authenticated request carries, where that is cheap to compute.
fn sign(req: &mut Request<'_>) {
    let h = &mut req.headers;
    h.insert("x-api-key".into(), API_KEY.into());
    match req.provider {
        ProviderId::Postmark => {
            let auth = STANDARD.encode(format!("{POSTMARK_USER}:{POSTMARK_PASSWORD}"));
            h.insert("authorization".into(), format!("Basic {auth}"));
        }
        ProviderId::Resend => {
            let id = h.get("svix-id").cloned().unwrap_or_else(|| "msg_fuzz".into());
            let ts = (NOW_MS / 1000).to_string();
            let key = STANDARD.decode(RESEND_SECRET.trim_start_matches("whsec_")).expect("base64 secret");
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
            mac.update(format!("{id}.{ts}.").as_bytes());
            mac.update(req.body);
            let sig = STANDARD.encode(mac.finalize().into_bytes());
            h.insert("svix-id".into(), id);
            h.insert("svix-timestamp".into(), ts);
            h.insert("svix-signature".into(), format!("v1,{sig}"));
        }
        _ => {}
    }
}

impl<'a> Request<'a> {
    pub fn raw_request(&self) -> RawRequest<'_> {
        RawRequest { tenant: TENANT, route: &self.route, url: &self.url, headers: &self.headers, body: self.body, now_ms: NOW_MS }
    }

    /// The raw envelope ingest would store for this request (only the kept headers).
    pub fn envelope(&self) -> RawEnvelope {
        let kept = normalizer::providers::registry(self.provider).kept_headers();
        RawEnvelope {
            request_id: "fuzz".into(),
            tenant: TENANT.into(),
            provider: self.provider,
            route: self.route.clone(),
            url: self.url.clone(),
            content_type: self.headers.get("content-type").cloned().unwrap_or_else(|| "application/json".into()),
            received_at: NOW_MS,
            headers: self.headers.iter().filter(|(k, _)| kept.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect(),
            body: self.body.to_vec(),
        }
    }
}

/// Runs `normalize` for `env` at fixed coordinates.
pub fn normalize(env: &RawEnvelope) -> Result<normalizer::providers::Normalized, normalizer::providers::NormalizeError> {
    let raw = RawRecord::new(env, "raw", 3, 42);
    normalizer::normalize::normalize(&raw, &NormalizeOptions::default())
}

/// Arbitrary canonical values built from fuzz input (`arbitrary`), for the targets that start
/// from values rather than bytes (`avro`'s encoders, `aggregator`).
pub mod values {
    use arbitrary::{Arbitrary, Unstructured};
    use rust_decimal::Decimal;
    use schemas::{BounceClass, Channel, Event, EventType, MessageClass, Money, TimeSource};

    pub fn pick<T: Copy>(u: &mut Unstructured, values: &[T]) -> arbitrary::Result<T> {
        Ok(*u.choose(values)?)
    }

    pub fn opt_pick<T: Copy>(u: &mut Unstructured, values: &[T]) -> arbitrary::Result<Option<T>> {
        Ok(if bool::arbitrary(u)? { Some(pick(u, values)?) } else { None })
    }

    pub fn money(u: &mut Unstructured) -> arbitrary::Result<Option<Money>> {
        if !bool::arbitrary(u)? {
            return Ok(None);
        }
        let mantissa: i128 = u.arbitrary()?;
        let scale = u.int_in_range(0..=28)?;
        // Decimal holds 96-bit mantissas; anything wider is not a Money value at all.
        let Ok(amount) = Decimal::try_from_i128_with_scale(mantissa >> 32, scale) else { return Ok(None) };
        Ok(Some(Money::new(amount, u.arbitrary::<String>()?)))
    }

    pub fn event(u: &mut Unstructured) -> arbitrary::Result<Event> {
        Ok(Event {
            event_id: u.arbitrary()?,
            tenant: u.arbitrary()?,
            channel: pick(u, Channel::VALUES)?,
            provider: u.arbitrary()?,
            provider_message_id: u.arbitrary()?,
            provider_event_id: u.arbitrary()?,
            provider_event_name: u.arbitrary()?,
            delivery_key: u.arbitrary()?,
            recipient: u.arbitrary()?,
            broadcast_id: u.arbitrary()?,
            sequence_id: u.arbitrary()?,
            contact_id: u.arbitrary()?,
            template_key: u.arbitrary()?,
            message_class: opt_pick(u, MessageClass::VALUES)?,
            labels: u.arbitrary()?,
            metadata: u.arbitrary()?,
            event_type: pick(u, EventType::VALUES)?,
            bounce_class: opt_pick(u, BounceClass::VALUES)?,
            occurred_at: u.arbitrary()?,
            received_at: u.arbitrary()?,
            time_source: pick(u, TimeSource::VALUES)?,
            click_url: u.arbitrary()?,
            user_agent: u.arbitrary()?,
            ip: u.arbitrary()?,
            error_code: u.arbitrary()?,
            error_reason: u.arbitrary()?,
            cost: money(u)?,
            raw_topic: u.arbitrary()?,
            raw_partition: u.arbitrary()?,
            raw_offset: u.arbitrary()?,
            origin: *u.choose(&[schemas::Origin::Provider, schemas::Origin::SendRecord, schemas::Origin::AppEvent])?,
        })
    }
}
