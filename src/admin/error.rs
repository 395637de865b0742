//! The admin API's errors and their one mapping to HTTP.
//!
//! Every refusal the admin listener sends, from a bad field to an unknown route, is an
//! [`ApiError`] rendered as `{"error": {"code": …, "message": …}}` (plus `index` inside a
//! batch). [`ApiError::status`] is the only place statuses are chosen. Clients see stable
//! codes and short messages; internal detail (why the cluster is unavailable) rides to the
//! request log as an [`ErrorDetail`] response extension and is never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::adapter::AdapterError;

/// Why the admin API refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or not of the expected shape (object, or array of objects).
    #[error("{0}")]
    InvalidJson(String),
    /// A field has the wrong type or value, or a required one is missing.
    #[error("{0}")]
    InvalidField(String),
    /// A field (or query parameter) the route does not know.
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// Neither `to` nor `broadcast: true`.
    #[error("set `to` (a sid or room) or `broadcast: true`")]
    MissingTarget,
    /// `to` with `broadcast: true`, or `to` and `room` with different values.
    #[error("{0}")]
    ConflictingTarget(String),
    /// An event name Socket.IO reserves.
    #[error("`{0}` is a reserved event name")]
    ReservedEvent(String),
    /// No bearer token, or not one of `admin.tokens`.
    #[error("a valid `Authorization: Bearer <token>` header is required")]
    Unauthorized,
    /// The key is valid but the call is outside its scope; nothing was done.
    #[error("{0}")]
    Forbidden(String),
    /// No such route.
    #[error("no such route")]
    NotFound,
    /// The route exists, not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The body is over `admin.max_body_bytes`.
    #[error("the body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit in force.
        limit: u64,
    },
    /// A `Content-Type` the API does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The cluster engine is unreachable; nothing was done. The detail is logged only.
    #[error("the cluster is unavailable; nothing was done")]
    ClusterUnavailable(String),
    /// A repeat of an `Idempotency-Key` whose first request is still sending.
    #[error("the first request with this Idempotency-Key has not answered yet; retry later")]
    IdempotencyPending,
    /// `/readyz`: a listener or a backing service is not up.
    #[error("not ready: {0}")]
    NotReady(String),
    /// The relay's own fault; the detail is logged only.
    #[error("internal error")]
    Internal(String),
    /// An element of an emit batch was refused; nothing was sent.
    #[error("batch element {index}: {error}")]
    InBatch {
        /// 0-based position of the first bad element.
        index: usize,
        /// What was wrong with it.
        error: Box<ApiError>,
    },
}

impl ApiError {
    /// `invalid_field` with a message.
    pub fn field(message: impl Into<String>) -> Self {
        ApiError::InvalidField(message.into())
    }

    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidField(_) => "invalid_field",
            ApiError::UnknownField(_) => "unknown_field",
            ApiError::MissingTarget => "missing_target",
            ApiError::ConflictingTarget(_) => "conflicting_target",
            ApiError::ReservedEvent(_) => "reserved_event",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::ClusterUnavailable(_) => "cluster_unavailable",
            ApiError::NotReady(_) => "not_ready",
            ApiError::IdempotencyPending => "idempotency_pending",
            ApiError::Internal(_) => "internal",
            ApiError::InBatch { error, .. } => error.code(),
        }
    }

    /// The HTTP status: the only place the admin API chooses one for an error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_)
            | ApiError::InvalidField(_)
            | ApiError::UnknownField(_)
            | ApiError::MissingTarget
            | ApiError::ConflictingTarget(_)
            | ApiError::ReservedEvent(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::ClusterUnavailable(_) | ApiError::NotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::IdempotencyPending => StatusCode::CONFLICT,
            ApiError::InBatch { error, .. } => error.status(),
        }
    }

    /// The error a bare status stands for, for responses produced outside the handlers.
    pub(crate) fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::FORBIDDEN => ApiError::Forbidden("outside the key's scope".into()),
            StatusCode::NOT_FOUND => ApiError::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(
                "unsupported `Content-Type`; send `application/json`".into(),
            ),
            s if s.is_client_error() => ApiError::InvalidJson("the request is invalid".into()),
            s => ApiError::Internal(format!("unexpected {s} response")),
        }
    }

    /// Detail for the log, never sent to the client.
    fn detail(&self) -> Option<&str> {
        match self {
            ApiError::ClusterUnavailable(d) | ApiError::Internal(d) => Some(d),
            ApiError::InBatch { error, .. } => error.detail(),
            _ => None,
        }
    }
}

impl From<AdapterError> for ApiError {
    fn from(error: AdapterError) -> Self {
        match error {
            AdapterError::ClusterUnavailable(detail) => ApiError::ClusterUnavailable(detail),
        }
    }
}

/// Internal detail of an error response, for the request log (a response extension).
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let index = match &self {
            ApiError::InBatch { index, .. } => Some(*index),
            _ => None,
        };
        let envelope = Envelope {
            error: Body {
                code: self.code(),
                message: self.to_string(),
                index,
            },
        };
        let mut response = (self.status(), Json(envelope)).into_response();
        if let ApiError::Unauthorized = self {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(detail) = self.detail() {
            response
                .extensions_mut()
                .insert(ErrorDetail(detail.to_owned()));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_errors_keep_the_inner_code_and_status() {
        let error = ApiError::InBatch {
            index: 3,
            error: Box::new(ApiError::ReservedEvent("connect".into())),
        };
        assert_eq!(error.code(), "reserved_event");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            error.to_string(),
            "batch element 3: `connect` is a reserved event name"
        );
    }

    #[test]
    fn cluster_detail_is_not_in_the_message() {
        let error = ApiError::from(AdapterError::ClusterUnavailable("redis: refused".into()));
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!error.to_string().contains("redis"));
        assert_eq!(error.detail(), Some("redis: refused"));
    }
}
