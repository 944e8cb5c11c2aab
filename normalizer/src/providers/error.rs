//! Why a request is refused or a record cannot be normalized.

/// A request that did not prove it came from the provider. ingest answers 401/403.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    #[error("header `{0}` does not match the body")]
    HeaderMismatch(&'static str),
    #[error("signature does not match")]
    BadSignature,
    #[error("timestamp outside the allowed window of {0} s")]
    StaleTimestamp(i64),
    #[error("no credentials configured for this tenant and provider")]
    NotConfigured,
    #[error("credentials rejected")]
    BadCredentials,
    #[error("signing certificate not allowed: {0}")]
    CertificateNotAllowed(String),
    #[error("signing certificate unavailable: {0}")]
    CertificateUnavailable(String),
    /// The signing certificate is not in the cache and the context forbids fetching it
    /// ([`super::VerifyContext::cached_only`]): the caller verifies again where it may block.
    #[error("signing certificate not cached; verify again with fetching allowed")]
    CertificateNotCached,
    #[error("topic `{0}` is not the one configured for this tenant")]
    WrongTopic(String),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("request already received (its signature token was used before)")]
    Replayed,
}

impl VerifyError {
    /// Bounded code for metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) => "missing_header",
            VerifyError::HeaderMismatch(_) => "header_mismatch",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::StaleTimestamp(_) => "stale_timestamp",
            VerifyError::NotConfigured => "not_configured",
            VerifyError::BadCredentials => "bad_credentials",
            VerifyError::CertificateNotAllowed(_) => "certificate_not_allowed",
            VerifyError::CertificateUnavailable(_) => "certificate_unavailable",
            VerifyError::CertificateNotCached => "certificate_not_cached",
            VerifyError::WrongTopic(_) => "wrong_topic",
            VerifyError::Malformed(_) => "malformed",
            VerifyError::Replayed => "replayed",
        }
    }

    /// The request did not authenticate as the tenant (no credentials configured, wrong ones,
    /// a bad signature, a foreign topic or certificate). ingest answers all of these, and an
    /// unknown tenant, alike, so replies do not tell which tenants exist or what they configured.
    pub fn is_authentication_failure(&self) -> bool {
        matches!(
            self,
            VerifyError::NotConfigured
                | VerifyError::BadCredentials
                | VerifyError::BadSignature
                | VerifyError::WrongTopic(_)
                | VerifyError::CertificateNotAllowed(_)
        )
    }

    /// 401 when credentials are missing or wrong, 403 when the request is refused for what it says,
    /// 400 when it cannot be read at all.
    pub fn http_status(&self) -> u16 {
        match self {
            VerifyError::MissingHeader(_) | VerifyError::BadCredentials | VerifyError::NotConfigured => 401,
            VerifyError::Malformed(_) => 400,
            VerifyError::CertificateUnavailable(_) | VerifyError::CertificateNotCached => 503,
            _ => 403,
        }
    }
}

/// A stored raw record that cannot become events. It goes to the dead-letter topic.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("invalid form body: {0}")]
    InvalidForm(String),
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("invalid field `{field}`: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("unsupported message type `{0}`")]
    Unsupported(String),
    #[error("no recipients in payload")]
    NoRecipients,
    #[error("unknown provider `{0}`")]
    UnknownProvider(String),
    #[error("raw record unreadable: {0}")]
    Envelope(String),
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
}

impl NormalizeError {
    pub fn code(&self) -> &'static str {
        match self {
            NormalizeError::InvalidJson(_) => "invalid_json",
            NormalizeError::InvalidForm(_) => "invalid_form",
            NormalizeError::MissingField(_) => "missing_field",
            NormalizeError::InvalidField { .. } => "invalid_field",
            NormalizeError::Unsupported(_) => "unsupported",
            NormalizeError::NoRecipients => "no_recipients",
            NormalizeError::UnknownProvider(_) => "unknown_provider",
            NormalizeError::Envelope(_) => "bad_envelope",
            NormalizeError::LimitExceeded(_) => "limit_exceeded",
        }
    }
}
