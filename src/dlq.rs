//! `countersign dlq list|replay|discard`: a small client of the admin API's
//! dead-letter routes, so operators need neither curl nor the URL layout; and
//! the probe behind `countersign health` (container health checks, where there
//! is no curl).

use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use serde::de::DeserializeOwned;

use crate::admin::api::{DeadLetterList, ErrorBody, Purged, ReplayedAll};

/// What to do.
#[derive(Debug, Clone)]
pub enum Action {
    List {
        endpoint: Option<String>,
        limit: usize,
        after: Option<String>,
        json: bool,
    },
    Replay {
        id: Option<String>,
        endpoint: Option<String>,
    },
    Discard {
        id: String,
    },
    /// Every delivery of an endpoint no longer configured.
    Purge {
        endpoint: String,
    },
}

/// The admin API's base URL for a listener address (0.0.0.0 → 127.0.0.1).
pub fn admin_base(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => [127, 0, 0, 1].into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// Runs `action` against the admin API at `base` (with `token` as the bearer
/// token, when the API requires one); returns what to print.
pub async fn run(base: &str, token: Option<&str>, action: Action) -> anyhow::Result<String> {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    match action {
        Action::List {
            endpoint,
            limit,
            after,
            json,
        } => {
            let mut q = format!("limit={limit}");
            if let Some(e) = endpoint {
                q.push_str(&format!("&endpoint={}", enc(&e)));
            }
            if let Some(a) = after {
                q.push_str(&format!("&after={}", enc(&a)));
            }
            let list: DeadLetterList =
                call(base, token, Method::GET, &format!("/v1/dead-letters?{q}")).await?;
            Ok(if json {
                serde_json::to_string_pretty(&list)?
            } else {
                table(&list)
            })
        }
        Action::Replay { id: Some(id), .. } => {
            call::<serde_json::Value>(
                base,
                token,
                Method::POST,
                &format!("/v1/dead-letters/{}/replay", enc(&id)),
            )
            .await?;
            Ok(format!("replayed {id}"))
        }
        Action::Replay {
            id: None,
            endpoint: Some(e),
        } => {
            let done: ReplayedAll = call(
                base,
                token,
                Method::POST,
                &format!("/v1/dead-letters/replay?endpoint={}", enc(&e)),
            )
            .await?;
            Ok(format!("replayed {} dead letter(s) of {e}", done.replayed))
        }
        Action::Replay { .. } => {
            bail!("give a dead letter id, or --endpoint ID to replay all of an endpoint's")
        }
        Action::Purge { endpoint } => {
            let done: Purged = call(
                base,
                token,
                Method::DELETE,
                &format!("/v1/endpoints/{}/deliveries", enc(&endpoint)),
            )
            .await?;
            Ok(format!(
                "purged {} delivery(ies) of {}",
                done.purged, done.endpoint
            ))
        }
        Action::Discard { id } => {
            call::<serde_json::Value>(
                base,
                token,
                Method::DELETE,
                &format!("/v1/dead-letters/{}", enc(&id)),
            )
            .await?;
            Ok(format!("discarded {id}"))
        }
    }
}

/// GETs `path` on the admin API at `base`: Ok when it answers 200 within `timeout`.
pub async fn probe(base: &str, path: &str, timeout: std::time::Duration) -> anyhow::Result<()> {
    let resp = tokio::time::timeout(timeout, send(base, None, Method::GET, path))
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {base}{path} within {timeout:?}"))??;
    if resp.status().as_u16() != 200 {
        bail!("{base}{path} answered {}", resp.status());
    }
    Ok(())
}

/// Sends one bodiless request to the admin API.
async fn send(
    base: &str,
    token: Option<&str>,
    method: Method,
    path: &str,
) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
    let client = crate::outbound::plain::<Empty<Bytes>>();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    if let Some(t) = token {
        let mut v = http::HeaderValue::from_str(&format!("Bearer {t}"))
            .context("the admin token is not a valid header value")?;
        v.set_sensitive(true);
        req = req.header(http::header::AUTHORIZATION, v);
    }
    let req = req.body(Empty::new())?;
    client
        .request(req)
        .await
        .with_context(|| format!("cannot reach the admin API at {base} (is the gateway running? see server.admin_listen, or pass --admin)"))
}

/// Sends one request and reads the answer as `T` (an [`api`](crate::admin::api)
/// type); a non-2xx answer is an error carrying the API's message.
pub(crate) async fn call<T: DeserializeOwned>(
    base: &str,
    token: Option<&str>,
    method: Method,
    path: &str,
) -> anyhow::Result<T> {
    let resp = send(base, token, method, path).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if status.as_u16() == 404 {
        let error = serde_json::from_slice::<ErrorBody>(&body)
            .map(|e| e.error)
            .unwrap_or_default();
        if path.starts_with("/v1/dead-letters") || error.is_empty() || error == "not found" {
            bail!("no such dead letter (or endpoint)");
        }
        bail!("{error}");
    }
    if status.as_u16() == 401 {
        bail!(
            "the admin API wants a token: give --config with server.admin_token, or set COUNTERSIGN_ADMIN_TOKEN"
        );
    }
    if !status.is_success() {
        let error = serde_json::from_slice::<ErrorBody>(&body)
            .map(|e| e.error)
            .unwrap_or_default();
        bail!("admin API answered {status}: {error}");
    }
    serde_json::from_slice(&body)
        .with_context(|| format!("unexpected answer from the admin API at {base}{path}"))
}

fn table(list: &DeadLetterList) -> String {
    let mut out = format!(
        "{:<24} {:<36} {:<24} {:>8}  REASON\n",
        "ID", "EVENT", "DEAD-LETTERED AT", "ATTEMPTS"
    );
    for d in &list.dead_letters {
        let reason: String = d.reason.chars().take(80).collect();
        out.push_str(&format!(
            "{:<24} {:<36} {:<24} {:>8}  {reason}\n",
            d.id, d.event_id, d.dead_lettered_at, d.attempts,
        ));
    }
    out.push_str(&format!("{} dead letter(s)", list.dead_letters.len()));
    if let Some(next) = &list.next_after {
        out.push_str(&format!("; more with --after {next}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_base_maps_unspecified_to_loopback() {
        assert_eq!(
            admin_base("0.0.0.0:9090".parse().unwrap()),
            "http://127.0.0.1:9090"
        );
        assert_eq!(
            admin_base("[::]:9090".parse().unwrap()),
            "http://[::1]:9090"
        );
        assert_eq!(
            admin_base("10.0.0.5:1".parse().unwrap()),
            "http://10.0.0.5:1"
        );
    }
}
