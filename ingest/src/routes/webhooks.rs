//! Provider callbacks: `POST /webhooks/{provider}/{tenant}` (and a `/{variant}`
//! suffix, e.g. `/webhooks/ses/{tenant}/eventbridge`).

use super::accept::{accept, Incoming};
use super::AppState;
use crate::error::IngestError;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use schemas::ProviderId;

/// Providers that call us with their own webhooks (the others post through `/v1/...`).
fn webhook_provider(name: &str) -> Result<ProviderId, IngestError> {
    let id: ProviderId = name.parse().map_err(|_| IngestError::UnknownProvider(name.to_string()))?;
    match id {
        ProviderId::Fcm | ProviderId::Apns | ProviderId::Sender => Err(IngestError::WrongRoute(name.to_string())),
        _ => Ok(id),
    }
}

pub async fn receive(
    State(state): State<AppState>,
    Path((provider, tenant)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), IngestError> {
    let provider = webhook_provider(&provider)?;
    let url = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    accept(&state, Incoming { provider, tenant: &tenant, route: "/webhooks/{provider}/{tenant}", url, headers: &headers, body }).await
}

pub async fn receive_variant(
    State(state): State<AppState>,
    Path((provider, tenant, _variant)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), IngestError> {
    let provider = webhook_provider(&provider)?;
    let url = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    accept(&state, Incoming { provider, tenant: &tenant, route: "/webhooks/{provider}/{tenant}/{variant}", url, headers: &headers, body }).await
}
