//! SES samples: notifications through SNS, signed (SignatureVersion 2, SHA256withRSA) with the
//! committed test key as SNS signs with its own, and events through EventBridge with the API key.

use super::Credentials;
use crate::providers::samples::{fixture_bodies, header, json_refreshed, refresh_times, Context, Sample};
use crate::providers::signature::API_KEY_HEADER;
use crate::providers::TenantCredentials;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use schemas::{ProviderId, Route};
use serde_json::Value;

/// The SNS topics of the SES fixtures (notifications, and the subscription confirmation).
pub const SNS_FIXTURE_TOPICS: [&str; 2] = ["arn:aws:sns:us-east-1:123456789012:ses-events", "arn:aws:sns:us-west-2:123456789012:MyTopic"];

/// Where the SNS test certificate claims to live. No running ingest serves it: demo tenants
/// have SNS signature checking off, and in-process tests give their context a test source.
pub const TEST_CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-00000000000000000000000000000000.pem";

/// Pinned to the fixtures' topics, with signature checking off: the samples are signed with
/// the committed test key, which no running ingest trusts (ingest warns about this at startup).
pub fn demo_credentials(_ctx: &Context, creds: &mut TenantCredentials) {
    creds.ses = Some(Credentials {
        topic_arn: SNS_FIXTURE_TOPICS.iter().map(|t| t.to_string()).collect(),
        accept_any_topic: None,
        verify_signature: Some(false),
    });
}

pub fn samples(ctx: &Context) -> Vec<Sample> {
    let mut out = Vec::new();
    let p = ProviderId::Ses;
    for (name, body) in fixture_bodies(p) {
        if name.starts_with("eventbridge_") {
            let route = Route::WebhookVariant(super::eventbridge::VARIANT.into());
            let headers = vec![header(API_KEY_HEADER, &ctx.api_key()), header("content-type", "application/json")];
            out.push(Sample { provider: p, fixture: name, path: route.path(p, &ctx.tenant), route, headers, body: json_refreshed(&body) });
            continue;
        }
        let body = sns_refreshed(&body);
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        let headers = vec![
            header("content-type", "text/plain; charset=UTF-8"),
            header("x-amz-sns-message-type", v["Type"].as_str().unwrap_or_default()),
            header("x-amz-sns-message-id", v["MessageId"].as_str().unwrap_or_default()),
            header("x-amz-sns-topic-arn", v["TopicArn"].as_str().unwrap_or_default()),
        ];
        out.push(Sample { provider: p, fixture: name, route: Route::Webhook, path: Route::Webhook.path(p, &ctx.tenant), headers, body });
    }
    out
}

/// Signs an SNS envelope (SignatureVersion 2, SHA256withRSA) with the committed test key,
/// as Amazon SNS signs with its own; the certificate URL becomes [`TEST_CERT_URL`].
pub fn sign_sns(body: &[u8]) -> Vec<u8> {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer as _};
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else { return body.to_vec() };
    v["SigningCertURL"] = Value::from(TEST_CERT_URL);
    v["SignatureVersion"] = Value::from("2");
    let unsigned = serde_json::to_vec(&v).unwrap_or_default();
    let Ok(env) = super::sns::parse(&unsigned) else { return body.to_vec() };
    let Ok(text) = super::signature::string_to_sign(&env) else { return body.to_vec() };
    let pem = include_str!("fixtures/test_signing_key.pem");
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("committed test key");
    let sig = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key).sign(text.as_bytes());
    v["Signature"] = Value::from(B64.encode(sig.to_bytes()));
    serde_json::to_vec(&v).unwrap_or_default()
}

/// SNS envelope: refresh the SES event inside `Message`, then sign.
fn sns_refreshed(body: &[u8]) -> Vec<u8> {
    let Ok(mut sns) = serde_json::from_slice::<Value>(body) else { return body.to_vec() };
    if let Some(mut msg) = sns.get("Message").and_then(Value::as_str).and_then(|m| serde_json::from_str::<Value>(m).ok()) {
        refresh_times(&mut msg);
        sns["Message"] = Value::from(msg.to_string());
    }
    sign_sns(&serde_json::to_vec(&sns).unwrap_or_else(|_| body.to_vec()))
}
