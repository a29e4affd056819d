//! `/hooks/{source}[/{token}]`: route, read the body within its limits, run the
//! pipeline, answer as the provider expects.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::Request;
use hyper::body::Incoming;

use super::response::{self, HttpError, Resp};
use crate::pipeline::{Accepted, IngestError, Pipeline};
use crate::stats::IngestStats;
use crate::verify::Inbound;

/// What the public listener needs.
pub struct Ingest {
    pub pipeline: Arc<Pipeline>,
    pub body_read_timeout: Duration,
    pub stats: Arc<IngestStats>,
}

/// `/hooks/{source}` → (source, None); `/hooks/{source}/{token}` → (source, token).
fn route(path: &str) -> Option<(&str, Option<&str>)> {
    let rest = path.strip_prefix("/hooks/")?;
    let mut parts = rest.split('/');
    let source = parts.next().filter(|s| !s.is_empty())?;
    let token = parts.next().filter(|t| !t.is_empty());
    match parts.next() {
        None => Some((source, token)),
        Some(_) => None,
    }
}

pub async fn handle(ingest: Arc<Ingest>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_owned();
    match handle_inner(&ingest, req).await {
        Ok((accepted, r)) => {
            ingest.stats.record(match &accepted {
                Accepted::Handshake(_) => "handshake",
                a if a.all_duplicates() => "duplicate",
                _ => "accepted",
            });
            r
        }
        Err(e) => {
            ingest.stats.record(e.outcome());
            match &e {
                HttpError::Ingest(IngestError::Unauthorized(v)) => {
                    tracing::warn!(path, reason = v.reason(), detail = %v, "webhook rejected: authentication failed")
                }
                HttpError::Ingest(IngestError::Store(s)) | HttpError::Store(s) => {
                    tracing::error!(path, error = %s, "webhook not stored")
                }
                other => {
                    tracing::info!(path, outcome = other.outcome(), error = %other, "webhook rejected")
                }
            }
            response::error(&e)
        }
    }
}

async fn handle_inner(
    ingest: &Ingest,
    req: Request<Incoming>,
) -> Result<(Accepted, Resp), HttpError> {
    let (source_id, token) = route(req.uri().path()).ok_or(HttpError::NotFound)?;
    let source = ingest
        .pipeline
        .source(source_id)
        .ok_or(HttpError::UnknownSource)?;
    let token = token.map(str::to_owned);
    let get = match *req.method() {
        Method::POST => false,
        Method::GET => true,
        _ => return Err(HttpError::MethodNotAllowed("POST")),
    };
    let (parts, body) = req.into_parts();
    let limit = source.max_body_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(HttpError::TooLarge(limit));
    }
    let body = read_body(body, limit, ingest.body_read_timeout).await?;
    let received_ms = crate::time::now_ms();
    let inbound = Inbound {
        headers: &parts.headers,
        query: parts.uri.query(),
        token: token.as_deref(),
        body: &body,
        now: received_ms / 1000,
    };
    let accepted = ingest
        .pipeline
        .ingest(&source, get, &inbound, received_ms)
        .await?;
    tracing::debug!(source = %source.id, duplicate = accepted.all_duplicates(), "webhook accepted");
    let resp = response::accepted(&accepted);
    Ok((accepted, resp))
}

/// Reads at most `limit` bytes within `timeout`.
async fn read_body(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, HttpError> {
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(HttpError::BodyTimeout),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(HttpError::TooLarge(limit))
        }
        Ok(Err(e)) => Err(HttpError::BodyRead(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn routes() {
        assert_eq!(route("/hooks/ds"), Some(("ds", None)));
        assert_eq!(route("/hooks/ds/"), Some(("ds", None)));
        assert_eq!(route("/hooks/sk/tok123"), Some(("sk", Some("tok123"))));
        assert_eq!(route("/hooks/sk/tok/extra"), None);
        assert_eq!(route("/hooks/"), None);
        assert_eq!(route("/other"), None);
    }
}
