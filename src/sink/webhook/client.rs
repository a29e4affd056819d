//! Sending one delivery: a pooled hyper client per endpoint (HTTP/1.1, TLS
//! through the system's OpenSSL), a resolver that refuses private addresses,
//! Standard Webhooks signing, and a deadline over the whole exchange.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::dns::Name;

use super::endpoint::{Endpoint, is_private};
use crate::outbound;
use crate::sink::retry::{Answer, parse_retry_after};
use crate::time::Clock;
use crate::verify::Scheme;
use crate::verify::scheme::sign;

/// Most of a receiver's answer that is read; the rest is dropped with the
/// connection. The first [`SNIPPET`] bytes go into the attempt history.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const SNIPPET: usize = 200;

pub type Client = outbound::Https<Full<Bytes>, Resolver>;

/// Resolves host names with the system resolver and drops private addresses
/// unless the endpoint allows them. Checked at connect time, so a name that
/// later resolves elsewhere (DNS rebinding) is caught too.
#[derive(Clone)]
pub struct Resolver {
    allow_private: bool,
}

type Resolved = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for Resolver {
    type Response = Resolved;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Resolved, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| allow_private || !is_private(a.ip()))
                .collect();
            if allowed.is_empty() && !all.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "{host} resolves only to private addresses (set allow_private = true to allow)"
                    ),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

pub fn client(ep: &Endpoint) -> Client {
    let resolver = Resolver {
        allow_private: ep.allow_private,
    };
    outbound::https(
        resolver,
        outbound::Options {
            connect_timeout: Some(ep.timeout),
            max_idle_per_host: ep.max_in_flight,
            idle_timeout: Duration::from_secs(60),
        },
    )
}

/// The request for one attempt, signed at `now_secs`.
pub fn request(
    ep: &Endpoint,
    event_id: &str,
    json: &[u8],
    now_secs: i64,
    traceparent: Option<&str>,
) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(ep.url.clone())
        .body(Full::new(Bytes::copy_from_slice(json)))
        .expect("a parsed URI makes a valid request");
    let h = req.headers_mut();
    h.extend(ep.headers.clone());
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("countersign/", env!("CARGO_PKG_VERSION"))),
    );
    for (name, value) in sign(&Scheme::StandardWebhooks, &ep.key, json, now_secs, event_id).headers
    {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            h.insert(n, v);
        }
    }
    if let Some(tp) = traceparent.and_then(|t| HeaderValue::from_str(t).ok()) {
        h.insert("traceparent", tp);
    }
    req
}

/// Sends `req` and reads the answer, all within the endpoint's timeout.
/// Returns the answer and, for a non-2xx answer, a short description. A
/// `Retry-After` date is read relative to `clock`.
pub async fn send(
    client: &Client,
    ep: &Endpoint,
    req: Request<Full<Bytes>>,
    clock: &Clock,
) -> (Answer, String) {
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| describe(&e))?;
        let code = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, clock.system_time()));
        let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok::<_, String>((code, retry_after, body))
    };
    match tokio::time::timeout(ep.timeout, exchange).await {
        Err(_) => (
            Answer::Failed("timeout".into()),
            format!(
                "no answer within {}",
                humantime::format_duration(ep.timeout)
            ),
        ),
        Ok(Err(e)) => (Answer::Failed(e.clone()), e),
        Ok(Ok((code, retry_after, body))) => {
            let error = if (200..300).contains(&code) {
                String::new()
            } else {
                let snippet = String::from_utf8_lossy(&body[..body.len().min(SNIPPET)]);
                format!("HTTP {code}: {}", snippet.trim())
            };
            (Answer::Status { code, retry_after }, error)
        }
    }
}

/// An error with its causes, e.g. `client error (Connect): tcp connect error:
/// Connection refused (os error 111)`.
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use tower_service::Service;

    use super::*;

    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_to_private_addresses() {
        let name = || Name::from_str("localhost").unwrap();
        let err = Resolver {
            allow_private: false,
        }
        .call(name())
        .await
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("allow_private"), "{err}");
        let ok: Vec<SocketAddr> = Resolver {
            allow_private: true,
        }
        .call(name())
        .await
        .unwrap()
        .collect();
        assert!(ok.iter().all(|a| a.ip().is_loopback()) && !ok.is_empty());
    }
}
