//! SendGrid samples: Signed Event Webhook POSTs (ECDSA P-256 over timestamp ‖ body) with a
//! demo key derived from the tenant.

use crate::providers::samples::{fixture_bodies, json_refreshed, now_secs, Context, Sample};
use crate::providers::signature::hmac_sha256;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use p256::ecdsa::{signature::Signer, DerSignature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use schemas::{ProviderId, Route};

/// The tenant's demo signing key (deterministic).
pub fn demo_key(tenant: &str) -> SigningKey {
    let seed = hmac_sha256(b"sendtrace-demo", &[tenant.as_bytes()]);
    SigningKey::from_slice(&seed).expect("a 32-byte HMAC output is a valid P-256 scalar")
}

/// Its public key as SendGrid's console shows it (base64 DER).
pub fn demo_public_key(ctx: &Context) -> String {
    let der = demo_key(&ctx.tenant).verifying_key().to_public_key_der().expect("encodable key");
    B64.encode(der.as_bytes())
}

/// Headers of a Signed Event Webhook POST of `body` for `tenant`, signed now.
pub fn signed_headers(tenant: &str, body: &[u8]) -> Vec<(String, String)> {
    let ts = now_secs().to_string();
    let mut signed = ts.as_bytes().to_vec();
    signed.extend_from_slice(body);
    let sig: DerSignature = demo_key(tenant).sign(&signed);
    vec![
        ("content-type".into(), "application/json".into()),
        (super::verify::HEADER_SIGNATURE.into(), B64.encode(sig.as_bytes())),
        (super::verify::HEADER_TIMESTAMP.into(), ts),
    ]
}

pub fn samples(ctx: &Context) -> Vec<Sample> {
    let p = ProviderId::Sendgrid;
    fixture_bodies(p)
        .into_iter()
        .map(|(name, body)| {
            let body = json_refreshed(&body);
            Sample { provider: p, fixture: name, route: Route::Webhook, path: Route::Webhook.path(p, &ctx.tenant), headers: signed_headers(&ctx.tenant, &body), body }
        })
        .collect()
}
