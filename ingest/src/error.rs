//! Why ingest refuses a request: a bounded code for logs and metrics, and the reply the
//! caller sees ([`IngestError::problem`]), which never carries internal error text.

use crate::problem::Problem;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use normalizer::providers::VerifyError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("unknown provider `{0}`")]
    UnknownProvider(String),
    /// Answered like a failed authentication (see [`VerifyError::is_authentication_failure`]).
    #[error("unknown tenant")]
    UnknownTenant,
    #[error("route not available for provider `{0}`")]
    WrongRoute(String),
    #[error("{0}")]
    Verify(#[from] VerifyError),
    /// The raw record would exceed what the broker stores (the producer's `message.max.bytes`).
    #[error("raw record of {record_bytes} bytes exceeds the {limit_bytes}-byte record limit")]
    TooLarge { record_bytes: usize, limit_bytes: usize },
    /// The broker refused the record for good (not its size): retrying cannot help.
    #[error("record refused by the broker: {0}")]
    RecordRefused(String),
    /// Too many requests wait for the broker already (the limit named): the caller retries.
    #[error("overloaded: {} is full", .0.name())]
    Overloaded(crate::routes::limits::Limit),
    /// Not stored for now (broker unreachable, timeout): the caller retries.
    #[error("not stored: {0}")]
    NotStored(String),
}

impl IngestError {
    /// The precise cause, for logs and metric labels (never shown to callers for
    /// authentication failures).
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::UnknownProvider(_) => "unknown_provider",
            IngestError::UnknownTenant => "unknown_tenant",
            IngestError::WrongRoute(_) => "wrong_route",
            IngestError::Verify(e) => e.code(),
            IngestError::TooLarge { .. } => "body_too_large",
            IngestError::RecordRefused(_) => "record_refused",
            IngestError::NotStored(_) => "not_stored",
            IngestError::Overloaded(_) => "overloaded",
        }
    }

    pub fn status(&self) -> StatusCode {
        self.problem().status
    }

    /// The reply. Authentication failures of every kind, and unknown tenants, get one and the
    /// same reply.
    pub fn problem(&self) -> Problem {
        match self {
            IngestError::UnknownProvider(_) | IngestError::WrongRoute(_) => {
                Problem::new(StatusCode::NOT_FOUND, self.code(), "Not found", self.to_string())
            }
            IngestError::UnknownTenant => not_authenticated(),
            IngestError::Verify(e) if e.is_authentication_failure() => not_authenticated(),
            IngestError::Verify(VerifyError::CertificateUnavailable(_)) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "certificate_unavailable",
                "Signing certificate unavailable",
                "the SNS signing certificate could not be fetched; retry later",
            )
            .retry_after(30),
            IngestError::Verify(e) => {
                let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN);
                let title = match status.as_u16() {
                    400 => "Malformed request",
                    401 => "Not authenticated",
                    _ => "Request refused",
                };
                Problem::new(status, e.code(), title, e.to_string())
            }
            IngestError::TooLarge { limit_bytes, .. } => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "Request too large to store",
                format!("the request (body, URL and kept headers) exceeds the {limit_bytes}-byte record limit; send smaller batches"),
            ),
            IngestError::RecordRefused(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "record_refused",
                "Request cannot be stored",
                "the broker refuses this request as a record; retrying it will not help",
            ),
            IngestError::Overloaded(limit) => limit.problem(),
            IngestError::NotStored(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_stored",
                "Not stored",
                "the request could not be stored right now; retry later",
            )
            .retry_after(5),
        }
    }
}

/// The one reply for every failed authentication.
fn not_authenticated() -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "Not authenticated",
        "the request is not authenticated for this tenant: credentials or signature missing, wrong or not configured",
    )
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}
