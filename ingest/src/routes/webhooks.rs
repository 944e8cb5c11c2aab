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

type Reply = Result<(StatusCode, Json<serde_json::Value>), IngestError>;

pub async fn receive(
    State(state): State<AppState>,
    Path((provider, tenant)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Reply {
    webhook(&state, &provider, &tenant, "/webhooks/{provider}/{tenant}", &uri, &headers, body).await
}

/// The same with a variant suffix; the provider tells variants apart by `url`.
pub async fn receive_variant(
    State(state): State<AppState>,
    Path((provider, tenant, _variant)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Reply {
    webhook(&state, &provider, &tenant, "/webhooks/{provider}/{tenant}/{variant}", &uri, &headers, body).await
}

async fn webhook(
    state: &AppState,
    provider: &str,
    tenant: &str,
    route: &'static str,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: bytes::Bytes,
) -> Reply {
    let provider = webhook_provider(provider)?;
    let url = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    accept(state, Incoming { provider, tenant, route, url, headers, body }).await
}
