//! `countersign dlq list|replay|discard`: a small client of the admin API's
//! dead-letter routes, so operators need neither curl nor the URL layout; and
//! the probe behind `countersign health` (container health checks, where there
//! is no curl).

use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

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

/// Runs `action` against the admin API at `base`; returns what to print.
pub async fn run(base: &str, action: Action) -> anyhow::Result<String> {
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
            let v = call(base, Method::GET, &format!("/v1/dead-letters?{q}")).await?;
            Ok(if json {
                serde_json::to_string_pretty(&v)?
            } else {
                table(&v)
            })
        }
        Action::Replay { id: Some(id), .. } => {
            call(
                base,
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
            let v = call(
                base,
                Method::POST,
                &format!("/v1/dead-letters/replay?endpoint={}", enc(&e)),
            )
            .await?;
            Ok(format!("replayed {} dead letter(s) of {e}", v["replayed"]))
        }
        Action::Replay { .. } => {
            bail!("give a dead letter id, or --endpoint ID to replay all of an endpoint's")
        }
        Action::Discard { id } => {
            call(
                base,
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
    let resp = tokio::time::timeout(timeout, send(base, Method::GET, path))
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {base}{path} within {timeout:?}"))??;
    if resp.status() != http::StatusCode::OK {
        bail!("{base}{path} answered {}", resp.status());
    }
    Ok(())
}

/// Sends one bodiless request to the admin API.
async fn send(
    base: &str,
    method: Method,
    path: &str,
) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .body(Empty::new())?;
    client
        .request(req)
        .await
        .with_context(|| format!("cannot reach the admin API at {base} (is the gateway running? see server.admin_listen, or pass --admin)"))
}

async fn call(base: &str, method: Method, path: &str) -> anyhow::Result<Value> {
    let resp = send(base, method, path).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status == http::StatusCode::NOT_FOUND {
        bail!("no such dead letter (or endpoint)");
    }
    if !status.is_success() {
        bail!(
            "admin API answered {status}: {}",
            v["error"].as_str().unwrap_or("")
        );
    }
    Ok(v)
}

fn table(v: &Value) -> String {
    let empty = Vec::new();
    let rows = v["dead_letters"].as_array().unwrap_or(&empty);
    let mut out = format!(
        "{:<24} {:<36} {:<24} {:>8}  REASON\n",
        "ID", "EVENT", "DEAD-LETTERED AT", "ATTEMPTS"
    );
    for d in rows {
        let reason = d["reason"].as_str().unwrap_or("");
        let reason: String = reason.chars().take(80).collect();
        out.push_str(&format!(
            "{:<24} {:<36} {:<24} {:>8}  {reason}\n",
            d["id"].as_str().unwrap_or(""),
            d["event_id"].as_str().unwrap_or(""),
            d["dead_lettered_at"].as_str().unwrap_or(""),
            d["attempts"],
        ));
    }
    out.push_str(&format!("{} dead letter(s)", rows.len()));
    if let Some(next) = v["next_after"].as_str() {
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
