//! Every refusal and failure as RFC 9457 `application/problem+json`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// One offending request parameter of a 400.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ParamError {
    /// The parameter's name (`from`, `page_size`, `status`, ..).
    pub parameter: String,
    /// What is wrong with it.
    pub detail: String,
}

/// RFC 9457 problem details.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` style tags under `urn:sendtrace:problem:`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Per parameter, on 400.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ParamError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or unknown API key")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("invalid request parameters")]
    BadRequest(Vec<ParamError>),
    #[error("{0}")]
    NotFound(String),
    #[error("the query ran longer than the limit ({0} s); narrow the range or filters")]
    Timeout(u32),
    #[error("ClickHouse is unavailable")]
    Unavailable(#[source] clickhouse::error::Error),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("the change could not be published ({0}); nothing was recorded, retry")]
    PublishFailed(String),
    #[error("{0}")]
    Busy(String),
}

impl ApiError {
    /// A 400 naming one parameter.
    pub fn param(parameter: &str, detail: impl Into<String>) -> ApiError {
        ApiError::BadRequest(vec![ParamError { parameter: parameter.into(), detail: detail.into() }])
    }

    /// A bounded label for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadRequest(_) => "invalid_parameters",
            ApiError::NotFound(_) => "not_found",
            ApiError::Timeout(_) => "query_timeout",
            ApiError::Unavailable(_) => "clickhouse_unavailable",
            ApiError::NotAcceptable(_) => "not_acceptable",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::PublishFailed(_) => "publish_failed",
            ApiError::Busy(_) => "busy",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout(_) | ApiError::Unavailable(_) | ApiError::PublishFailed(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status();
        Problem {
            kind: format!("urn:sendtrace:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("error").into(),
            status: status.as_u16(),
            detail: self.to_string(),
            errors: match self {
                ApiError::BadRequest(e) => e.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl From<clickhouse::error::Error> for ApiError {
    fn from(e: clickhouse::error::Error) -> Self {
        ApiError::Unavailable(e)
    }
}

/// The problem+json response of any status (also used for axum's own 404/405).
pub fn problem_response(p: &Problem) -> Response {
    let body = serde_json::to_vec(p).unwrap_or_default();
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unavailable(error) => tracing::warn!(message = "ClickHouse query failed.", %error),
            ApiError::Timeout(secs) => tracing::warn!(message = "Query ran out of time.", secs),
            ApiError::PublishFailed(error) => tracing::warn!(message = "Publishing a suppression change failed.", %error),
            _ => {}
        }
        let mut resp = problem_response(&self.problem());
        match self {
            ApiError::Unauthorized => {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Timeout(_) | ApiError::Unavailable(_) | ApiError::PublishFailed(_) | ApiError::Busy(_) => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        resp
    }
}
