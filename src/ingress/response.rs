//! The one place the public listener turns outcomes and errors into HTTP
//! responses. 5xx bodies are generic; causes go to the log. 401 bodies never
//! say why.

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use hyper::Response;
use serde_json::{Value, json};

use crate::pipeline::{Accepted, IngestError};
use crate::providers::{Answer, Handshake};
use crate::store::{Claim, StoreError};

pub type Resp = Response<Full<Bytes>>;

/// Set on the answer to a webhook whose events were all seen before.
pub const DUPLICATE_HEADER: &str = "countersign-duplicate";
const ADOBE_HEADER: &str = "X-AdobeSign-ClientId";

/// Why a webhook was refused, wrapping the pipeline's reasons.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("not found")]
    NotFound,
    #[error("unknown source")]
    UnknownSource,
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("body not received in time")]
    BodyTimeout,
    #[error("body could not be read: {0}")]
    BodyRead(String),
    /// The client address is over `server.client_rate_limit`.
    #[error("client over its rate limit")]
    RateLimited(u64),
    /// `server.max_requests_in_flight` requests are being processed.
    #[error("too many requests in flight")]
    Shed,
    /// The client has `server.max_requests_per_client` requests open already.
    #[error("too many requests at once from this client")]
    ClientBusy,
    #[error("{0}")]
    Ingest(#[from] IngestError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl IngressError {
    /// Stable label for logs and metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            IngressError::NotFound | IngressError::UnknownSource => "unknown_source",
            IngressError::MethodNotAllowed(_) => "method_not_allowed",
            IngressError::TooLarge(_) => "too_large",
            IngressError::BodyTimeout => "timeout",
            IngressError::BodyRead(_) => "invalid",
            IngressError::RateLimited(_) | IngressError::ClientBusy => "rate_limited",
            IngressError::Shed => "overloaded",
            IngressError::Ingest(e) => e.outcome(),
            IngressError::Store(StoreError::Overloaded) => "overloaded",
            IngressError::Store(_) => "error",
        }
    }
}

pub fn json(status: StatusCode, body: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn unavailable(retry_after: &'static str) -> Resp {
    let mut r = json(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"error": "temporarily unavailable"}),
    );
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static(retry_after));
    r
}

fn store_error(e: &StoreError) -> Resp {
    match e {
        StoreError::Overloaded => unavailable("1"),
        _ => unavailable("5"),
    }
}

/// The answer to a request whose handling panicked (the cause is logged).
pub fn internal_error() -> Resp {
    json(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({"error": "internal error"}),
    )
}

/// Maps an error to its response.
pub fn error(e: &IngressError) -> Resp {
    let msg = |s: StatusCode, m: &str| json(s, &json!({"error": m}));
    match e {
        IngressError::NotFound => msg(StatusCode::NOT_FOUND, "not found"),
        IngressError::UnknownSource => msg(StatusCode::NOT_FOUND, "unknown source"),
        IngressError::MethodNotAllowed(allow) => {
            let mut r = msg(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            r
        }
        IngressError::TooLarge(n) => {
            let mut r = msg(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("body exceeds {n} bytes"),
            );
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            r
        }
        IngressError::BodyTimeout => {
            let mut r = msg(StatusCode::REQUEST_TIMEOUT, "body not received in time");
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            r
        }
        IngressError::BodyRead(m) => msg(StatusCode::BAD_REQUEST, m),
        IngressError::RateLimited(secs) | IngressError::Ingest(IngestError::RateLimited(secs)) => {
            let mut r = msg(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(*secs));
            r
        }
        IngressError::Shed => unavailable("1"),
        IngressError::ClientBusy => {
            let mut r = msg(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests at once from this client",
            );
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        IngressError::Ingest(IngestError::Unauthorized(_)) => {
            msg(StatusCode::UNAUTHORIZED, "unauthorized")
        }
        IngressError::Ingest(IngestError::Malformed(m)) => {
            msg(StatusCode::BAD_REQUEST, &format!("malformed payload: {m}"))
        }
        IngressError::Ingest(IngestError::MethodNotAllowed) => {
            error(&IngressError::MethodNotAllowed("POST"))
        }
        IngressError::Ingest(IngestError::Store(s)) | IngressError::Store(s) => store_error(s),
    }
}

fn adobe_echo(id: &str) -> Resp {
    let mut r = json(StatusCode::OK, &json!({"xAdobeSignClientId": id}));
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert(ADOBE_HEADER, v);
    }
    r
}

/// Maps a taken webhook to the answer its provider expects.
pub fn accepted(a: &Accepted) -> Resp {
    let mut r = match a {
        Accepted::Handshake(Handshake::AdobeIntent(id)) => adobe_echo(id),
        Accepted::Handshake(Handshake::BoldSignVerification) => json(
            StatusCode::OK,
            &json!({"status": "verification acknowledged"}),
        ),
        Accepted::Events {
            answer: Answer::AdobeEcho(id),
            ..
        } => adobe_echo(id),
        Accepted::Events {
            answer: Answer::Text(t),
            ..
        } => {
            let mut r = Response::new(Full::new(Bytes::from_static(t.as_bytes())));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        Accepted::Events {
            events,
            answer: Answer::Standard,
        } => {
            let list: Vec<Value> = events
                .iter()
                .map(|(id, o)| match o {
                    Claim::Stored { .. } => json!({"id": id, "status": "accepted"}),
                    Claim::Duplicate { .. } => json!({"id": id, "status": "duplicate"}),
                })
                .collect();
            let status = if a.all_duplicates() {
                "duplicate"
            } else {
                "accepted"
            };
            json(StatusCode::OK, &json!({"status": status, "events": list}))
        }
    };
    if a.all_duplicates() {
        r.headers_mut()
            .insert(DUPLICATE_HEADER, HeaderValue::from_static("true"));
    }
    r
}
