//! Provider callbacks: `POST /webhooks/{provider}/{tenant}` (and a `/{variant}`
//! suffix, e.g. `/webhooks/ses/{tenant}/eventbridge`).

use super::accept::{accept, Incoming};
use super::AppState;
use crate::error::IngestError;
use super::limits::Admission;
use axum::extract::{Extension, OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use schemas::{ProviderId, Route};

type Reply = Result<(StatusCode, Json<serde_json::Value>), IngestError>;

fn provider_named(name: &str) -> Result<ProviderId, IngestError> {
    name.parse().map_err(|_| IngestError::UnknownProvider(name.to_string()))
}

pub async fn receive(
    State(state): State<AppState>,
    Path((provider, tenant)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    admission: Option<Extension<Admission>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Reply {
    let provider = provider_named(&provider)?;
    accept(&state, Incoming { provider, tenant: &tenant, route: Route::Webhook, url: url_of(&uri), headers: &headers, body, admission: admission.map(|Extension(a)| a) }).await
}

/// The same with a variant suffix (e.g. SES `eventbridge`): a route of its own, if the
/// provider declares it.
pub async fn receive_variant(
    State(state): State<AppState>,
    Path((provider, tenant, variant)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
    admission: Option<Extension<Admission>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Reply {
    let provider = provider_named(&provider)?;
    let route = Route::WebhookVariant(variant.into());
    accept(&state, Incoming { provider, tenant: &tenant, route, url: url_of(&uri), headers: &headers, body, admission: admission.map(|Extension(a)| a) }).await
}

pub(super) fn url_of(uri: &axum::http::Uri) -> String {
    uri.path_and_query().map(|p| p.to_string()).unwrap_or_default()
}
