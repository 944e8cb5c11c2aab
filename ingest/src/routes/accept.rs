//! The flow every route shares: find the tenant, let the provider verify the
//! request, wrap it unchanged in a raw envelope, store it, answer.

use super::AppState;
use crate::error::IngestError;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use normalizer::providers::{registry, RawRequest};
use schemas::{ProviderId, RawEnvelope};
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::{info, warn};

/// One request to accept.
pub struct Incoming<'a> {
    pub provider: ProviderId,
    pub tenant: &'a str,
    /// Route template, e.g. `/webhooks/{provider}/{tenant}`.
    pub route: &'static str,
    /// Path and query as received.
    pub url: String,
    pub headers: &'a HeaderMap,
    pub body: bytes::Bytes,
}

fn lower_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_string())))
        .collect()
}

#[tracing::instrument(skip_all, fields(provider = %req.provider, tenant = %req.tenant))]
pub async fn accept(state: &AppState, req: Incoming<'_>) -> Result<(StatusCode, Json<serde_json::Value>), IngestError> {
    let provider = registry(req.provider);
    let result = verify_and_store(state, &req, provider).await;
    let outcome = match &result {
        Ok(_) => "stored",
        Err(e) => e.code(),
    };
    metrics::counter!("sendtrace_ingest_requests_total", "provider" => req.provider.as_str(), "outcome" => outcome).increment(1);
    if let Err(e) = &result {
        warn!(message = "Request refused.", reason = e.code(), status = e.status().as_u16(), error = %e);
    }
    result
}

async fn verify_and_store(
    state: &AppState,
    req: &Incoming<'_>,
    provider: &dyn normalizer::providers::Provider,
) -> Result<(StatusCode, Json<serde_json::Value>), IngestError> {
    let creds = state
        .config
        .tenants
        .get(req.tenant)
        .ok_or_else(|| IngestError::UnknownTenant(req.tenant.to_string()))?;
    let all_headers = lower_headers(req.headers);
    let now_ms = chrono::Utc::now().timestamp_millis();
    // Verification may fetch a certificate (blocking, once per URL): keep it off the async workers.
    let (id, tenant, url, headers, body, creds) =
        (req.provider, req.tenant.to_string(), req.url.clone(), all_headers.clone(), req.body.clone(), creds.clone());
    let verified = tokio::task::spawn_blocking(move || {
        let raw_req = RawRequest { tenant: &tenant, url: &url, headers: &headers, body: &body, now_ms };
        registry(id).verify(&raw_req, &creds)
    })
    .await
    .map_err(|e| IngestError::NotStored(format!("verification task failed: {e}")))??;
    if let Some(note) = &verified.control {
        info!(message = "Control message received; recorded, no delivery events.", note = %note);
        metrics::counter!("sendtrace_ingest_control_messages_total", "provider" => req.provider.as_str()).increment(1);
    }
    let kept: BTreeMap<String, String> = all_headers
        .into_iter()
        .filter(|(k, _)| k == "content-type" || provider.kept_headers().contains(&k.as_str()))
        .collect();
    let request_id = uuid::Uuid::new_v4().to_string();
    let envelope = RawEnvelope {
        request_id: request_id.clone(),
        tenant: req.tenant.to_string(),
        provider: req.provider.as_str().to_string(),
        route: req.route.to_string(),
        url: req.url.clone(),
        content_type: kept.get("content-type").cloned().unwrap_or_default(),
        received_at: now_ms,
        headers: kept,
        body: req.body.to_vec(),
    };
    let payload = schemas::avro::encode_raw(&envelope).map_err(|e| IngestError::NotStored(e.to_string()))?;
    let key = format!("{}/{}", req.tenant, verified.partition_key);
    let timeout = Duration::from_millis(state.config.store_timeout_ms);
    state.sink.store(key, payload, timeout).await.map_err(IngestError::NotStored)?;
    Ok((StatusCode::OK, Json(serde_json::json!({ "stored": true, "request_id": request_id }))))
}
