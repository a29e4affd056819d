//! The one place the admin listener chooses status codes: every handler
//! returns `Result<Json<T>, AdminError>` (or one of the answers here), and
//! this file maps each to its status. Store failures answer a generic 503 with
//! `Retry-After`; the cause goes to the log.

use axum::Json;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::api::{ErrorBody, Ready};
use crate::store::StoreError;

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No such route, or no such object behind a route.
    #[error("{0}")]
    NotFound(&'static str),
    /// A wrong method on a known route (the `Allow` header lists the right ones).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No (or a wrong) `Authorization: Bearer` token.
    #[error("unauthorized")]
    Unauthorized,
    /// A `Host` this listener does not serve.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request conflicts with the configuration.
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with the object's state (the message says how).
    #[error("{0}")]
    State(String),
    /// At a limit for now (503 with `Retry-After`).
    #[error("{0}")]
    Busy(&'static str),
    /// A body over its limit (bytes).
    #[error("body over {0} bytes")]
    TooLarge(usize),
    /// An event id several sources used: which one is meant.
    #[error("several sources used this event id; add ?source=")]
    Ambiguous(Vec<String>),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A blocking task that did not finish (it panicked).
    #[error("request failed: {0}")]
    Internal(String),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = |error: String| ErrorBody {
            error,
            sources: None,
        };
        match self {
            AdminError::NotFound(what) => {
                (StatusCode::NOT_FOUND, Json(body(what.into()))).into_response()
            }
            AdminError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, Json(body(self.to_string()))).into_response()
            }
            AdminError::BadRequest(m) => (StatusCode::BAD_REQUEST, Json(body(m))).into_response(),
            AdminError::State(m) => (StatusCode::CONFLICT, Json(body(m))).into_response(),
            AdminError::Busy(why) => {
                let mut r =
                    (StatusCode::SERVICE_UNAVAILABLE, Json(body(why.into()))).into_response();
                r.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("5"));
                r
            }
            AdminError::TooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, Json(body(self.to_string()))).into_response()
            }
            AdminError::Unauthorized => {
                let mut r =
                    (StatusCode::UNAUTHORIZED, Json(body(self.to_string()))).into_response();
                r.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            AdminError::Forbidden(why) => {
                (StatusCode::FORBIDDEN, Json(body(why.into()))).into_response()
            }
            AdminError::Conflict(why) => {
                (StatusCode::CONFLICT, Json(body(why.into()))).into_response()
            }
            AdminError::Ambiguous(sources) => {
                let error = AdminError::Ambiguous(vec![]).to_string();
                let b = ErrorBody {
                    error,
                    sources: Some(sources),
                };
                (StatusCode::CONFLICT, Json(b)).into_response()
            }
            AdminError::Store(e) => {
                tracing::error!(error = %e, "admin request failed");
                let retry = if matches!(e, StoreError::Overloaded) {
                    "1"
                } else {
                    "5"
                };
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(body("temporarily unavailable".into())),
                )
                    .into_response();
                r.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static(retry));
                r
            }
            AdminError::Internal(m) => {
                tracing::error!(error = %m, "admin request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(body("internal error".into())),
                )
                    .into_response()
            }
        }
    }
}

/// The answer to a request whose handling panicked (the cause is logged).
pub fn internal_error() -> Response {
    let body = ErrorBody {
        error: "internal error".into(),
        sources: None,
    };
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

/// 200 with `body` as JSON.
pub fn ok<T: Serialize>(body: T) -> Response {
    (StatusCode::OK, Json(body)).into_response()
}

/// 200 `text/event-stream` (never cached, never buffered by a proxy).
pub fn event_stream(body: axum::body::Body) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// 200 `application/x-ndjson`, streamed (an audit export).
pub fn ndjson(body: axum::body::Body) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    r
}

/// 409 with `body` as JSON (a conflict that carries data).
pub fn conflict<T: Serialize>(body: T) -> Response {
    (StatusCode::CONFLICT, Json(body)).into_response()
}

/// `/readyz`: 200 when ready, else 503, with the same body.
pub fn readiness(body: Ready, ready: bool) -> Response {
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// 200 with a text body of `content_type` (the Prometheus exposition).
pub fn text(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// 200 with an embedded asset of the status panel.
pub fn asset(
    content_type: &'static str,
    etag: HeaderValue,
    cache: &'static str,
    body: bytes::Bytes,
) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(http::header::ETAG, etag);
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// 304: the client's copy of an asset is current.
pub fn not_modified(etag: HeaderValue, cache: &'static str) -> Response {
    let mut r = StatusCode::NOT_MODIFIED.into_response();
    let h = r.headers_mut();
    h.insert(http::header::ETAG, etag);
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}
