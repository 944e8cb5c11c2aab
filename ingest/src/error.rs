//! Why ingest refuses a request: an HTTP status and a reason the caller can read.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use normalizer::providers::VerifyError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("unknown provider `{0}`")]
    UnknownProvider(String),
    #[error("unknown tenant `{0}`")]
    UnknownTenant(String),
    #[error("route not available for provider `{0}`")]
    WrongRoute(String),
    #[error("{0}")]
    Verify(#[from] VerifyError),
    #[error("not stored: {0}")]
    NotStored(String),
}

impl IngestError {
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::UnknownProvider(_) => "unknown_provider",
            IngestError::UnknownTenant(_) => "unknown_tenant",
            IngestError::WrongRoute(_) => "wrong_route",
            IngestError::Verify(e) => e.code(),
            IngestError::NotStored(_) => "not_stored",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::UnknownProvider(_) | IngestError::UnknownTenant(_) | IngestError::WrongRoute(_) => StatusCode::NOT_FOUND,
            IngestError::Verify(e) => StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN),
            IngestError::NotStored(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code(), "reason": self.to_string() });
        let mut resp = (self.status(), Json(body)).into_response();
        if let IngestError::NotStored(_) = self {
            // Providers retry on 5xx; tell them when.
            resp.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("5"));
        }
        resp
    }
}
