//! `/hooks/{source}[/{token}]`: route, read the body within its limits, run the
//! pipeline, answer as the provider expects.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::Request;
use hyper::body::Incoming;

use tracing::Instrument as _;

use super::limit::Ingress;
use super::response::{self, IngressError, Resp};
use crate::metrics::{Metrics, UNKNOWN_SOURCE};
use crate::pipeline::{Accepted, IngestError, Pipeline};
use crate::time::Clock;
use crate::verify::Inbound;

/// What the public listener needs.
pub struct Ingest {
    pub pipeline: Arc<Pipeline>,
    pub body_read_timeout: Duration,
    pub metrics: Arc<Metrics>,
    pub limits: Ingress,
    /// Stamps `received_at`, and the time webhook timestamps are checked against.
    pub clock: Clock,
}

/// Counts a request in `countersign_requests_in_flight` while it lives.
struct InFlight<'a>(&'a prometheus::IntGauge);

impl<'a> InFlight<'a> {
    fn enter(g: &'a prometheus::IntGauge) -> InFlight<'a> {
        g.inc();
        InFlight(g)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The path as logs show it: `/hooks/{source}` and no more, as later segments
/// may be a URL token (a credential).
fn loggable(path: &str) -> String {
    let mut parts = path.splitn(4, '/');
    let (_, first, second) = (parts.next(), parts.next(), parts.next());
    let mut out = format!("/{}", first.unwrap_or(""));
    if let Some(s) = second {
        out.push('/');
        out.extend(s.chars().take(64));
    }
    if parts.next().is_some() {
        out.push_str("/…");
    }
    out
}

/// What the path names: the source, if configured, and the URL token.
struct Routed {
    source: Option<Arc<crate::providers::Source>>,
    token: Option<String>,
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

pub async fn handle(ingest: Arc<Ingest>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let started = Instant::now();
    let path = loggable(req.uri().path());
    let routed = route(req.uri().path()).map(|(s, token)| Routed {
        source: ingest.pipeline.source(s),
        token: token.map(str::to_owned),
    });
    // Metrics are labelled by configured sources only.
    let label = match &routed {
        Some(Routed {
            source: Some(s), ..
        }) => s.id.as_str(),
        _ => UNKNOWN_SOURCE,
    };
    let span = tracing::info_span!(
        "webhook",
        otel.kind = "server",
        source = label,
        outcome = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    let incoming = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::telemetry::traceparent::parse);
    // The trace the events continue: this span's, or the caller's as it came.
    let trace = crate::telemetry::join(&span, incoming).or_else(|| incoming.map(str::to_owned));
    // A guard: the connection may drop this future mid-request.
    let _in_flight = InFlight::enter(&ingest.metrics.requests_in_flight);
    let client = ingest.limits.client(peer, req.headers());
    // One client's requests at once are capped while bodies are read; the
    // global in-flight slot is taken only once the body is in (in
    // `handle_inner`), so clients trickling bodies cannot starve the rest.
    let result = match ingest.limits.client_slot(client) {
        None => Err(IngressError::ClientBusy),
        Some(_slot) => match ingest.limits.check_client(client) {
            Err(secs) => Err(IngressError::RateLimited(secs)),
            Ok(()) => {
                handle_inner(&ingest, req, routed.as_ref(), trace.as_deref(), client)
                    .instrument(span.clone())
                    .await
            }
        },
    };
    let (outcome, resp) = answer(&path, result);
    span.record("outcome", outcome);
    span.record("http.response.status_code", resp.status().as_u16());
    ingest.metrics.webhook(label, outcome);
    ingest
        .metrics
        .ingest_seconds
        .with_label_values(&[label])
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// The outcome label and the answer; logs refusals.
fn answer(path: &str, result: Result<(Accepted, Resp), IngressError>) -> (&'static str, Resp) {
    match result {
        Ok((accepted, r)) => {
            let outcome = match &accepted {
                Accepted::Handshake(_) => "handshake",
                a if a.all_duplicates() => "duplicate",
                _ => "accepted",
            };
            (outcome, r)
        }
        Err(e) => {
            match &e {
                IngressError::Ingest(IngestError::Unauthorized(v)) => {
                    tracing::warn!(path, reason = v.reason(), detail = %v, "webhook rejected: authentication failed")
                }
                IngressError::Ingest(IngestError::Store(s)) | IngressError::Store(s) => {
                    tracing::error!(path, error = %s, "webhook not stored")
                }
                // Counted in the metrics; one log line each would flood the
                // log exactly when the gateway is under load.
                IngressError::RateLimited(_)
                | IngressError::ClientBusy
                | IngressError::Shed
                | IngressError::Ingest(IngestError::RateLimited(_)) => {
                    tracing::debug!(path, outcome = e.outcome(), "webhook refused")
                }
                other => {
                    tracing::info!(path, outcome = other.outcome(), error = %other, "webhook rejected")
                }
            }
            (e.outcome(), response::error(&e))
        }
    }
}

async fn handle_inner(
    ingest: &Ingest,
    req: Request<Incoming>,
    routed: Option<&Routed>,
    trace: Option<&str>,
    client: std::net::IpAddr,
) -> Result<(Accepted, Resp), IngressError> {
    let routed = routed.ok_or(IngressError::NotFound)?;
    let source = routed.source.clone().ok_or(IngressError::UnknownSource)?;
    let token = routed.token.as_deref();
    let get = match *req.method() {
        Method::POST => false,
        Method::GET => true,
        _ => return Err(IngressError::MethodNotAllowed("POST")),
    };
    let (parts, body) = req.into_parts();
    let limit = source.max_body_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(IngressError::TooLarge(limit));
    }
    let body = read_body(body, limit, ingest.body_read_timeout).await?;
    // The body is in: now take a slot among the requests being processed.
    let _permit = ingest.limits.admit().ok_or(IngressError::Shed)?;
    let received_ms = ingest.clock.now_ms();
    let inbound = Inbound {
        headers: &parts.headers,
        query: parts.uri.query(),
        token,
        body: &body,
        now: received_ms / 1000,
    };
    let accepted = ingest
        .pipeline
        .ingest(&source, get, &inbound, received_ms, trace, Some(client))
        .await?;
    tracing::debug!(source = %source.id, duplicate = accepted.all_duplicates(), "webhook accepted");
    let resp = response::accepted(&accepted);
    Ok((accepted, resp))
}

/// Reads at most `limit` bytes within `timeout`.
async fn read_body(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, IngressError> {
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(IngressError::BodyTimeout),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(IngressError::TooLarge(limit))
        }
        Ok(Err(e)) => Err(IngressError::BodyRead(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::{loggable, route};

    #[test]
    fn logged_paths_stop_before_a_token() {
        assert_eq!(loggable("/hooks/sk/tok123"), "/hooks/sk/…");
        assert_eq!(loggable("/hooks/ds"), "/hooks/ds");
        assert_eq!(loggable("/hooks/sk/tok/extra"), "/hooks/sk/…");
        assert_eq!(loggable("/other"), "/other");
    }

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
