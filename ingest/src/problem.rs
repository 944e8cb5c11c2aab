//! Error replies as RFC 9457 problem details (`application/problem+json`): `type`, `title`,
//! `status`, `detail`, plus `error` (a bounded code) and `reason` (= `detail`), the members
//! replies had before, kept for existing clients.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// One error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    /// Bounded code (`bad_signature`, `body_too_large`): the `error` member and the type's suffix.
    pub code: &'static str,
    pub title: &'static str,
    /// What the caller can do about it; never internal error text (Kafka, HTTP client).
    pub detail: String,
    /// `Retry-After` seconds, for replies a caller should retry.
    pub retry_after_secs: Option<u32>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem { status, code, title, detail: detail.into(), retry_after_secs: None }
    }

    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The problem for a bare error status produced outside the handlers (unknown path, wrong
    /// method, unreadable path, body over the limit ..).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, title) = match status.as_u16() {
            400 => ("bad_request", "Bad request"),
            404 => ("not_found", "Not found"),
            405 => ("method_not_allowed", "Method not allowed"),
            408 => ("request_timeout", "Request timeout"),
            413 => ("body_too_large", "Request body too large"),
            415 => ("unsupported_media_type", "Unsupported media type"),
            431 => ("headers_too_large", "Request headers too large"),
            503 => ("unavailable", "Service unavailable"),
            s if s >= 500 => ("internal", "Internal error"),
            _ => ("refused", "Request refused"),
        };
        Problem::new(status, code, title, status.canonical_reason().unwrap_or("refused").to_string())
    }

    pub fn type_uri(&self) -> String {
        format!("urn:sendtrace:problem:{}", self.code)
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "type": self.type_uri(),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "error": self.code,
            "reason": self.detail,
        })
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Whether a response already is a problem document.
pub fn is_problem(resp: &Response) -> bool {
    resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(CONTENT_TYPE.as_bytes()))
}
