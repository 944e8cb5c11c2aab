//! The sender's own records: send records, app-side events and push send results.
//! All authenticated with the tenant's API key (checked by the provider's `verify`).

use super::accept::{accept, Incoming};
use super::AppState;
use crate::error::IngestError;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use schemas::ProviderId;

type Reply = Result<(StatusCode, Json<serde_json::Value>), IngestError>;

fn url_of(uri: &axum::http::Uri) -> String {
    uri.path_and_query().map(|p| p.to_string()).unwrap_or_default()
}

pub async fn sends(State(state): State<AppState>, Path(tenant): Path<String>, OriginalUri(uri): OriginalUri, headers: HeaderMap, body: bytes::Bytes) -> Reply {
    accept(&state, Incoming { provider: ProviderId::Sender, tenant: &tenant, route: "/v1/sends/{tenant}", url: url_of(&uri), headers: &headers, body }).await
}

pub async fn events(State(state): State<AppState>, Path(tenant): Path<String>, OriginalUri(uri): OriginalUri, headers: HeaderMap, body: bytes::Bytes) -> Reply {
    accept(&state, Incoming { provider: ProviderId::Sender, tenant: &tenant, route: "/v1/events/{tenant}", url: url_of(&uri), headers: &headers, body }).await
}

pub async fn push_results(
    State(state): State<AppState>,
    Path((tenant, provider)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Reply {
    let id: ProviderId = provider.parse().map_err(|_| IngestError::UnknownProvider(provider.clone()))?;
    if !matches!(id, ProviderId::Fcm | ProviderId::Apns) {
        return Err(IngestError::WrongRoute(provider));
    }
    accept(&state, Incoming { provider: id, tenant: &tenant, route: "/v1/push-results/{tenant}/{provider}", url: url_of(&uri), headers: &headers, body }).await
}
