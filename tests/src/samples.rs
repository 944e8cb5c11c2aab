//! Sample traffic from every provider, signed the way each provider signs, with the local demo
//! secrets: a thin layer over the providers' own samples (`normalizer::providers::samples`,
//! one `samples.rs` per provider folder), so a new provider is covered without a line here.
//!
//! Used by the README's main job (`sample-traffic post`) and by the end-to-end tests.

pub use normalizer::providers::samples::{refresh_times, Context, Sample};
pub use normalizer::providers::ses::samples::{sign_sns, SNS_FIXTURE_TOPICS, TEST_CERT_URL};

/// An ingest config for `tenant` holding every provider's demo credentials (`[tenants.<tenant>]`
/// with one table per provider). SES via SNS is pinned to the topics of the SNS fixtures, with
/// signature checking off: the samples are signed with the committed test key, which no running
/// ingest trusts (ingest warns about this at startup).
pub fn ingest_toml(tenant: &str, ingest_url: &str) -> String {
    let creds = normalizer::providers::samples::demo_credentials(&Context::new(tenant, ingest_url));
    let mut tenants = toml::Table::new();
    tenants.insert(tenant.to_string(), toml::Value::try_from(&creds).expect("credentials serialize"));
    let mut root = toml::Table::new();
    root.insert("tenants".into(), toml::Value::Table(tenants));
    toml::to_string(&root).expect("a TOML table")
}

/// The tenant's demo API key.
pub fn api_key(tenant: &str) -> String {
    Context::new(tenant, "").api_key()
}

/// Every sample of every provider for `tenant`, signed for an ingest at `ingest_url`.
pub fn all(tenant: &str, ingest_url: &str) -> Vec<Sample> {
    normalizer::providers::samples::all(&Context::new(tenant, ingest_url))
}

/// Headers of a SendGrid Signed Event Webhook POST of `body` for `tenant`, signed now.
pub fn sendgrid_headers(tenant: &str, body: &[u8]) -> Vec<(String, String)> {
    normalizer::providers::sendgrid::samples::signed_headers(tenant, body)
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
