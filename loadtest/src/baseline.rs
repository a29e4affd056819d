//! The ceiling: a minimal hyper server that reads the body and answers 200, and a
//! variant that also verifies one Standard Webhooks HMAC. Same runtime, same
//! HTTP stack as countersign, nothing else.

use std::convert::Infallible;

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

/// Verifies `webhook-signature` over `id.timestamp.body` with one key.
fn verify(key: &[u8], req: &http::request::Parts, body: &[u8]) -> bool {
    let h = |n: &str| {
        req.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(h("webhook-id").as_bytes());
    mac.update(b".");
    mac.update(h("webhook-timestamp").as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    h("webhook-signature")
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| {
            base64::engine::general_purpose::STANDARD
                .decode(sig)
                .is_ok_and(|got| bool::from(got.as_slice().ct_eq(expected.as_slice())))
        })
}

pub async fn serve(listener: TcpListener, key: Option<Vec<u8>>) -> anyhow::Result<()> {
    let key = std::sync::Arc::new(key);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let key = key.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let key = key.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let ok = key
                        .as_ref()
                        .as_ref()
                        .is_none_or(|k| verify(k, &parts, &body));
                    let mut resp =
                        Response::new(Full::new(Bytes::from_static(b"{\"status\":\"accepted\"}")));
                    if !ok {
                        *resp.status_mut() = http::StatusCode::UNAUTHORIZED;
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
