//! The flow every route shares: find the tenant, let the provider verify the
//! request, wrap it unchanged in a raw envelope, store it, answer.

use super::limits::{Admission, Limit};
use super::AppState;
use crate::error::IngestError;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use normalizer::providers::{registry, RawRequest, TenantCredentials, VerifyError};
use schemas::{ProviderId, RawEnvelope, Route};
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::{debug, info, warn};

/// One request to accept.
pub struct Incoming<'a> {
    pub provider: ProviderId,
    pub tenant: &'a str,
    /// The route it came in on; the provider must declare it.
    pub route: Route,
    /// Path and query as received.
    pub url: String,
    pub headers: &'a HeaderMap,
    pub body: bytes::Bytes,
    /// Its places in the edge's limits (`limits::apply` sets it; absent, no limit applies).
    pub admission: Option<Admission>,
}

fn lower_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_string())))
        .collect()
}

/// `sendtrace_ingest_requests_total{provider,outcome}`: each series' handle registered once,
/// when first counted (`runtime::telemetry::Handles`).
fn count_outcome(provider: &'static str, outcome: &'static str) {
    static HANDLES: runtime::telemetry::Handles<(&str, &str), metrics::Counter> = runtime::telemetry::Handles::new();
    let register = || ((provider, outcome), metrics::counter!("sendtrace_ingest_requests_total", "provider" => provider, "outcome" => outcome));
    HANDLES.get(|k| *k == (provider, outcome), register).increment(1);
}

/// Verifies and stores one request. Its log lines name the provider and the tenant (fields of
/// their own, not a span's: a span a request, created, formatted and entered at every poll,
/// was 2–4 % of ingest's CPU under load, BENCHMARKS.md §7).
pub async fn accept(state: &AppState, req: Incoming<'_>) -> Result<(StatusCode, Json<serde_json::Value>), IngestError> {
    let (id, tenant) = (req.provider, req.tenant);
    let provider = registry(id);
    let result = match provider.routes().contains(&req.route) {
        true => verify_and_store(state, req, provider).await,
        false => Err(IngestError::WrongRoute(format!("{} has no route {}", id, req.route.path(id, "{tenant}")))),
    };
    let outcome = match &result {
        Ok(_) => "stored",
        Err(e) => e.code(),
    };
    count_outcome(id.as_str(), outcome);
    if let Err(e) = &result {
        warn!(message = "Request refused.", provider = id.as_str(), tenant, reason = e.code(), status = e.status().as_u16(), error = %e);
    }
    result
}

async fn verify_and_store(
    state: &AppState,
    req: Incoming<'_>,
    provider: &dyn normalizer::providers::Provider,
) -> Result<(StatusCode, Json<serde_json::Value>), IngestError> {
    let (id, tenant) = (req.provider, req.tenant);
    // An unknown tenant goes through the same checks with no credentials, so its reply is the
    // one a known tenant gets for wrong credentials (no tenant enumeration).
    let known = state.config.tenants.get(req.tenant);
    let no_creds = TenantCredentials::default();
    let creds = known.unwrap_or(&no_creds);
    let all_headers = lower_headers(req.headers);
    let now_ms = chrono::Utc::now().timestamp_millis();
    // Verified inline (an SNS signature is ~30 µs with `ring`), through a context that never
    // fetches: only a request whose signing certificate is not cached yet goes to a blocking
    // thread, where it may fetch it (once per URL). Handing every request to the blocking pool
    // cost more than the check itself (BENCHMARKS.md §7).
    let raw_req = RawRequest { tenant: req.tenant, route: &req.route, url: &req.url, headers: &all_headers, body: &req.body, now_ms };
    let verified = match provider.verify(&raw_req, creds, &state.verify.cached_only()) {
        Err(VerifyError::CertificateNotCached) => {
            metrics::counter!("sendtrace_ingest_certificate_fetch_handoffs_total").increment(1);
            let (id, tenant, route, url, headers, body) = (req.provider, req.tenant.to_string(), req.route.clone(), req.url.clone(), all_headers.clone(), req.body.clone());
            let (ctx, creds) = (state.verify.clone(), creds.clone());
            tokio::task::spawn_blocking(move || {
                let raw_req = RawRequest { tenant: &tenant, route: &route, url: &url, headers: &headers, body: &body, now_ms };
                registry(id).verify(&raw_req, &creds, &ctx)
            })
            .await
            .map_err(|e| IngestError::NotStored(format!("verification task failed: {e}")))?
        }
        other => other,
    };
    let verified = match (known, verified) {
        (Some(_), v) => v?,
        (None, Err(e)) if !e.is_authentication_failure() => return Err(e.into()),
        (None, _) => return Err(IngestError::UnknownTenant),
    };
    if let Some(note) = &verified.control {
        // The note may carry a SubscribeURL (a token that confirms the subscription): debug only.
        info!(message = "Control message received; recorded, no delivery events.", provider = req.provider.as_str(), tenant = req.tenant);
        debug!(message = "Control message.", provider = req.provider.as_str(), tenant = req.tenant, note = %note);
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
        provider: req.provider,
        route: req.route.clone(),
        url: req.url.clone(),
        content_type: kept.get("content-type").cloned().unwrap_or_default(),
        received_at: now_ms,
        headers: kept,
        body: req.body.to_vec(),
    };
    let payload = schemas::avro::encode_raw(&envelope).map_err(|e| IngestError::NotStored(e.to_string()))?;
    drop(envelope);
    let key = format!("{}/{}", req.tenant, verified.partition_key);
    // Checked here too (the producer checks again): a record the broker can never take is the
    // caller's to shrink (413), not a reason to answer 503 and be retried forever.
    let max = runtime::kafka::producer_max_message_bytes(&state.config.kafka);
    if !runtime::kafka::record_fits(key.len(), payload.len(), max) {
        return Err(IngestError::TooLarge { record_bytes: key.len() + payload.len(), limit_bytes: max });
    }
    let timeout = Duration::from_millis(state.config.store_timeout_ms);
    let body_bytes = req.body.len();
    let not_stored = |e: runtime::kafka::SendError| match e {
        e if e.too_large => IngestError::TooLarge { record_bytes: body_bytes, limit_bytes: max },
        e if e.permanent => IngestError::RecordRefused(e.message),
        e => IngestError::NotStored(e.message),
    };
    // A place among the requests waiting for the broker, before the record is queued; once it
    // is, the request's place among those being handled is given back, and so is its body.
    let waiting = match &req.admission {
        Some(a) => Some(a.reserve_broker_wait().ok_or_else(|| IngestError::Overloaded(Limit::MaxAwaitingBroker.count_refusal()))?),
        None => None,
    };
    let acknowledged = state.sink.enqueue(key, payload, timeout).await.map_err(not_stored)?;
    if let Some(a) = &req.admission {
        a.handled();
    }
    drop(req);
    acknowledged.await.map_err(not_stored)?;
    drop(waiting);
    debug!(message = "Raw record stored.", provider = id.as_str(), tenant, %request_id, bytes = body_bytes);
    Ok((StatusCode::OK, Json(serde_json::json!({ "stored": true, "request_id": request_id }))))
}
