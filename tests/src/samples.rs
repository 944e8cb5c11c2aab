//! Sample traffic from every provider, signed the way each provider signs, with
//! the local demo secrets. Bodies are the documented fixtures beside each provider,
//! with their times moved into the last two hours, a minute apart in posting order
//! (so rows are within retention), and, for signed schemes, a fresh timestamp.
//!
//! Used by the README's main job (`sample-traffic post`) and by the end-to-end test.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use normalizer::providers::signature::{hmac_sha256, API_KEY_HEADER};
use p256::ecdsa::{signature::Signer, DerSignature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use serde_json::Value;
use std::path::PathBuf;

/// Local demo secrets (never production secrets).
pub struct Secrets {
    pub api_key: String,
    pub sendgrid_key: SigningKey,
    pub mailgun_signing_key: String,
    pub resend_secret: String,
    pub postmark_user: String,
    pub postmark_password: String,
    pub twilio_auth_token: String,
}

impl Secrets {
    /// Deterministic secrets for `tenant`.
    pub fn for_tenant(tenant: &str) -> Secrets {
        let seed = hmac_sha256(b"sendtrace-demo", &[tenant.as_bytes()]);
        let sendgrid_key = SigningKey::from_slice(&seed).expect("a 32-byte HMAC output is a valid P-256 scalar");
        Secrets {
            api_key: format!("{tenant}-api-key"),
            sendgrid_key,
            mailgun_signing_key: format!("{tenant}-mailgun-signing-key"),
            resend_secret: format!("whsec_{}", B64.encode(format!("{tenant}-resend-secret-0123456789"))),
            postmark_user: "postmark".into(),
            postmark_password: format!("{tenant}-postmark-password"),
            twilio_auth_token: format!("{tenant}-twilio-auth-token"),
        }
    }

    pub fn sendgrid_public_key_b64(&self) -> String {
        let der = self.sendgrid_key.verifying_key().to_public_key_der().expect("encodable key");
        B64.encode(der.as_bytes())
    }

    /// An ingest config for `tenant` holding these secrets; SNS certificates of the
    /// test signing key are served from the committed test certificate.
    pub fn ingest_toml(&self, tenant: &str, ingest_url: &str) -> String {
        format!(
            "[sns_certificate_files]\n\
             \"{TEST_CERT_URL}\" = \"{}\"\n\n\
             [tenants.{tenant}]\n\
             api_key = \"{}\"\n\
             sendgrid_public_key = \"{}\"\n\
             mailgun_signing_key = \"{}\"\n\
             resend_secret = \"{}\"\n\
             postmark_user = \"{}\"\n\
             postmark_password = \"{}\"\n\
             twilio_auth_token = \"{}\"\n\
             twilio_public_url = \"{ingest_url}/webhooks/twilio/{tenant}\"\n",
            ses_fixture_path("test_signing_cert.pem").display(),
            self.api_key,
            self.sendgrid_public_key_b64(),
            self.mailgun_signing_key,
            self.resend_secret,
            self.postmark_user,
            self.postmark_password,
            self.twilio_auth_token,
        )
    }
}

/// One request to make.
#[derive(Debug, Clone)]
pub struct Sample {
    pub provider: &'static str,
    pub fixture: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn fixtures_dir(provider: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../normalizer/src/providers").join(provider).join("fixtures")
}

/// Fixture bodies of `provider` that have an expected-events file (valid samples), sorted.
pub fn fixture_bodies(provider: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fixtures_dir(provider);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|n| n.strip_suffix(".expected.jsonl"))
        .filter_map(|stem| {
            ["json", "txt"].iter().find_map(|ext| {
                let f = format!("{stem}.{ext}");
                std::fs::read(dir.join(&f)).ok().map(|b| (f, b))
            })
        })
        .collect()
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The time the next sample's newest timestamp is moved to: samples get ascending times
/// (a minute apart, starting two hours ago) in the order they are built, so a documented
/// open posted after a documented delivery also happens after it.
fn next_sample_time() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static N: AtomicI64 = AtomicI64::new(0);
    chrono::Utc::now().timestamp_millis() - 7_200_000 + N.fetch_add(1, Ordering::Relaxed) * 60_000
}

/// Moves every RFC 3339 string and every `timestamp`-like epoch number so that the
/// newest lands at the next sample time (see `next_sample_time`); relative order is kept.
pub fn refresh_times(v: &mut Value) {
    fn collect(v: &Value, key: Option<&str>, out: &mut Vec<i64>) {
        match v {
            Value::String(s) => {
                if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                    out.push(t.timestamp_millis());
                }
            }
            Value::Number(n) if key.is_some_and(is_epoch_key) => {
                if let Some(f) = n.as_f64() {
                    if f > 1e9 && f < 1e10 {
                        out.push((f * 1000.0) as i64);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| collect(x, None, out)),
            Value::Object(o) => o.iter().for_each(|(k, x)| collect(x, Some(k), out)),
            _ => {}
        }
    }
    fn apply(v: &mut Value, key: Option<&str>, shift_ms: i64) {
        match v {
            Value::String(s) => {
                if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                    let moved = t.with_timezone(&chrono::Utc) + chrono::Duration::milliseconds(shift_ms);
                    *s = moved.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                }
            }
            Value::Number(n) if key.is_some_and(is_epoch_key) => {
                if let Some(f) = n.as_f64() {
                    if f > 1e9 && f < 1e10 {
                        let moved = f + shift_ms as f64 / 1000.0;
                        *v = if n.is_f64() { Value::from(moved) } else { Value::from(moved.round() as i64) };
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| apply(x, None, shift_ms)),
            Value::Object(o) => o.iter_mut().for_each(|(k, x)| apply(x, Some(k.as_str()), shift_ms)),
            _ => {}
        }
    }
    fn is_epoch_key(k: &str) -> bool {
        k == "timestamp" || k.ends_with("_at") || k == "time"
    }
    let mut times = Vec::new();
    collect(v, None, &mut times);
    if let Some(max) = times.iter().max() {
        apply(v, None, next_sample_time() - max);
    }
}

fn json_refreshed(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            refresh_times(&mut v);
            serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
        }
        Err(_) => body.to_vec(),
    }
}

/// Where the SNS test certificate claims to live (an allowed SNS host); ingest maps it to a file.
pub const TEST_CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-sendtrace-test.pem";

fn ses_fixture_path(name: &str) -> PathBuf {
    fixtures_dir("ses").canonicalize().unwrap_or_else(|_| fixtures_dir("ses")).join(name)
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
    let Ok(env) = normalizer::providers::ses::sns::parse(&unsigned) else { return body.to_vec() };
    let Ok(text) = normalizer::providers::ses::signature::string_to_sign(&env) else { return body.to_vec() };
    let pem = std::fs::read_to_string(ses_fixture_path("test_signing_key.pem")).unwrap_or_default();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).expect("committed test key");
    let sig = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key).sign(text.as_bytes());
    v["Signature"] = Value::from(B64.encode(sig.to_bytes()));
    serde_json::to_vec(&v).unwrap_or_default()
}

/// SNS envelope: refresh the SES event inside `Message`, then sign.
fn sns_refreshed(body: &[u8]) -> Vec<u8> {
    let Ok(mut sns) = serde_json::from_slice::<Value>(body) else { return body.to_vec() };
    if let Some(msg) = sns.get("Message").and_then(Value::as_str).and_then(|m| serde_json::from_str::<Value>(m).ok()) {
        let mut msg = msg;
        refresh_times(&mut msg);
        sns["Message"] = Value::from(msg.to_string());
    }
    sign_sns(&serde_json::to_vec(&sns).unwrap_or_else(|_| body.to_vec()))
}

/// Headers of a SendGrid Signed Event Webhook POST of `body`, signed now (ECDSA P-256 over timestamp ‖ body).
pub fn sendgrid_headers(secrets: &Secrets, body: &[u8]) -> Vec<(String, String)> {
    let ts = now_secs().to_string();
    let mut signed = ts.as_bytes().to_vec();
    signed.extend_from_slice(body);
    let sig: DerSignature = secrets.sendgrid_key.sign(&signed);
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-twilio-email-event-webhook-signature".into(), B64.encode(sig.as_bytes())),
        ("x-twilio-email-event-webhook-timestamp".into(), ts),
    ]
}

/// Every sample of every provider, signed for `tenant` with `secrets`.
pub fn all(tenant: &str, secrets: &Secrets, ingest_url: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    let h = |k: &str, v: &str| (k.to_string(), v.to_string());
    for (name, body) in fixture_bodies("ses") {
        if name.starts_with("eventbridge_") {
            let body = json_refreshed(&body);
            out.push(Sample { provider: "ses", fixture: name, path: format!("/webhooks/ses/{tenant}/eventbridge"), headers: vec![h(API_KEY_HEADER, &secrets.api_key), h("content-type", "application/json")], body });
            continue;
        }
        let body = sns_refreshed(&body);
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        let headers = vec![
            h("content-type", "text/plain; charset=UTF-8"),
            h("x-amz-sns-message-type", v["Type"].as_str().unwrap_or_default()),
            h("x-amz-sns-message-id", v["MessageId"].as_str().unwrap_or_default()),
            h("x-amz-sns-topic-arn", v["TopicArn"].as_str().unwrap_or_default()),
        ];
        out.push(Sample { provider: "ses", fixture: name, path: format!("/webhooks/ses/{tenant}"), headers, body });
    }
    for (name, body) in fixture_bodies("sendgrid") {
        let body = json_refreshed(&body);
        let headers = sendgrid_headers(secrets, &body);
        out.push(Sample { provider: "sendgrid", fixture: name, path: format!("/webhooks/sendgrid/{tenant}"), headers, body });
    }
    for (name, body) in fixture_bodies("mailgun") {
        let Ok(mut v) = serde_json::from_slice::<Value>(&body) else { continue };
        if let Some(ed) = v.get_mut("event-data") {
            refresh_times(ed);
        }
        let ts = now_secs().to_string();
        let token = hex::encode(hmac_sha256(b"token", &[name.as_bytes(), ts.as_bytes()]));
        let sig = hex::encode(hmac_sha256(secrets.mailgun_signing_key.as_bytes(), &[ts.as_bytes(), token.as_bytes()]));
        v["signature"] = serde_json::json!({ "timestamp": ts, "token": token, "signature": sig });
        let body = serde_json::to_vec(&v).unwrap_or_default();
        out.push(Sample { provider: "mailgun", fixture: name, path: format!("/webhooks/mailgun/{tenant}"), headers: vec![h("content-type", "application/json")], body });
    }
    let resend_key = normalizer::providers::resend::svix::secret_key(&secrets.resend_secret).unwrap_or_default();
    for (i, (name, body)) in fixture_bodies("resend").into_iter().enumerate() {
        let body = json_refreshed(&body);
        let id = format!("msg_demo{}_{i}", now_secs());
        let ts = now_secs().to_string();
        let sig = B64.encode(hmac_sha256(&resend_key, &[id.as_bytes(), b".", ts.as_bytes(), b".", &body]));
        let headers = vec![h("content-type", "application/json"), h("svix-id", &id), h("svix-timestamp", &ts), h("svix-signature", &format!("v1,{sig}"))];
        out.push(Sample { provider: "resend", fixture: name, path: format!("/webhooks/resend/{tenant}"), headers, body });
    }
    let basic = format!("Basic {}", B64.encode(format!("{}:{}", secrets.postmark_user, secrets.postmark_password)));
    for (name, body) in fixture_bodies("postmark") {
        let body = json_refreshed(&body);
        out.push(Sample { provider: "postmark", fixture: name, path: format!("/webhooks/postmark/{tenant}"), headers: vec![h("content-type", "application/json"), h("authorization", &basic)], body });
    }
    out.extend(twilio(tenant, secrets, ingest_url));
    for provider in ["fcm", "apns"] {
        for (name, body) in fixture_bodies(provider) {
            let body = json_refreshed(&body);
            out.push(Sample { provider: if provider == "fcm" { "fcm" } else { "apns" }, fixture: name, path: format!("/v1/push-results/{tenant}/{provider}"), headers: vec![h("content-type", "application/json"), h(API_KEY_HEADER, &secrets.api_key)], body });
        }
    }
    for (name, body) in fixture_bodies("sender") {
        let body = json_refreshed(&body);
        let route = if name.starts_with("events") { "events" } else { "sends" };
        out.push(Sample { provider: "sender", fixture: name, path: format!("/v1/{route}/{tenant}"), headers: vec![h("content-type", "application/json"), h(API_KEY_HEADER, &secrets.api_key)], body });
    }
    out
}

/// Twilio status callbacks, signed for the public URL ingest is configured with.
/// `public_base` is the base of `twilio_public_url` in the tenant's config ([`Secrets::ingest_toml`]).
pub fn twilio(tenant: &str, secrets: &Secrets, public_base: &str) -> Vec<Sample> {
    let base = public_base.trim_end_matches('/');
    fixture_bodies("twilio")
        .into_iter()
        .map(|(name, body)| {
            let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
            let url = format!("{base}/webhooks/twilio/{tenant}");
            let sig = normalizer::providers::twilio::signature(&secrets.twilio_auth_token, &url, &params);
            Sample {
                provider: "twilio",
                fixture: name,
                path: format!("/webhooks/twilio/{tenant}"),
                headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into()), ("x-twilio-signature".into(), sig)],
                body,
            }
        })
        .collect()
}

/// Posts every sample; returns (sample, status, response body).
pub async fn post_all(ingest_url: &str, samples: &[Sample]) -> Vec<(Sample, u16, String)> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for s in samples {
        let mut req = client.post(format!("{ingest_url}{}", s.path)).body(s.body.clone());
        for (k, v) in &s.headers {
            req = req.header(k, v);
        }
        let (status, text) = match req.send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        };
        out.push((s.clone(), status, text));
    }
    out
}
