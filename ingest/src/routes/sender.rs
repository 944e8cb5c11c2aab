//! The sender's own records: send records, app-side events and push send results.
//! All authenticated with the tenant's API key (checked by the provider's `verify`); which
//! provider may use which route is the provider's own declaration (`Provider::routes`).

use super::accept::{accept, Incoming};
use super::AppState;
use crate::error::IngestError;
use super::limits::Admission;
use axum::extract::{Extension, OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use super::webhooks::url_of;
use schemas::{ProviderId, Route};

type Reply = Result<(StatusCode, Json<serde_json::Value>), IngestError>;

pub async fn sends(State(state): State<AppState>, Path(tenant): Path<String>, OriginalUri(uri): OriginalUri, admission: Option<Extension<Admission>>, headers: HeaderMap, body: bytes::Bytes) -> Reply {
    accept(&state, Incoming { provider: ProviderId::Sender, tenant: &tenant, route: Route::Sends, url: url_of(&uri), headers: &headers, body, admission: admission.map(|Extension(a)| a) }).await
}

pub async fn events(State(state): State<AppState>, Path(tenant): Path<String>, OriginalUri(uri): OriginalUri, admission: Option<Extension<Admission>>, headers: HeaderMap, body: bytes::Bytes) -> Reply {
    accept(&state, Incoming { provider: ProviderId::Sender, tenant: &tenant, route: Route::Events, url: url_of(&uri), headers: &headers, body, admission: admission.map(|Extension(a)| a) }).await
}

pub async fn push_results(
    State(state): State<AppState>,
    Path((tenant, provider)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    admission: Option<Extension<Admission>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Reply {
    let id: ProviderId = provider.parse().map_err(|_| IngestError::UnknownProvider(provider.clone()))?;
    accept(&state, Incoming { provider: id, tenant: &tenant, route: Route::PushResults, url: url_of(&uri), headers: &headers, body, admission: admission.map(|Extension(a)| a) }).await
}
