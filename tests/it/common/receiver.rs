//! A downstream endpoint for delivery tests: a real HTTP/1.1 server on
//! 127.0.0.1:0 whose answers a script decides (succeed, fail, hang, 429 with
//! Retry-After, 410, ...), recording every request with the test clock's time.
//! Also an independent Standard Webhooks verifier, checked against the
//! specification's published vectors.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use countersign::time::Clock;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Response};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpListener;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at_ms: i64,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("delivery body is JSON")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// How to answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    WithHeader(u16, &'static str, String),
    /// Never answer (the gateway's timeout must cut it off).
    Hang,
}

type Script = Box<dyn Fn(&Hit, &[Hit]) -> Reply + Send>;

pub struct Receiver {
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    /// Starts a receiver; `script(hit, earlier_hits)` picks each answer.
    pub async fn start(
        clock: Clock,
        script: impl Fn(&Hit, &[Hit]) -> Reply + Send + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Mutex<Script>> = Arc::new(Mutex::new(Box::new(script)));
        let (h, sc) = (hits.clone(), script.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (h, sc, clock) = (h.clone(), sc.clone(), clock.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (h, sc, clock) = (h.clone(), sc.clone(), clock.clone());
                        async move {
                            let path = req.uri().to_string();
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await?.to_bytes().to_vec();
                            let hit = Hit {
                                at_ms: clock.now_ms(),
                                path,
                                headers,
                                body,
                            };
                            let reply = {
                                let mut all = h.lock().unwrap();
                                let r = (sc.lock().unwrap())(&hit, &all);
                                all.push(hit);
                                r
                            };
                            let (status, header) = match reply {
                                Reply::Status(s) => (s, None),
                                Reply::WithHeader(s, k, v) => (s, Some((k, v))),
                                Reply::Hang => {
                                    std::future::pending::<()>().await;
                                    unreachable!()
                                }
                            };
                            let mut resp = Response::new(Full::new(Bytes::from_static(b"answer")));
                            *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            if let Some((k, v)) = header {
                                resp.headers_mut().insert(k, v.parse().unwrap());
                            }
                            Ok::<_, hyper::Error>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Receiver { addr, hits, script }
    }

    /// Answers 200 to everything.
    pub async fn ok(clock: Clock) -> Receiver {
        Receiver::start(clock, |_, _| Reply::Status(200)).await
    }

    pub fn set(&self, script: impl Fn(&Hit, &[Hit]) -> Reply + Send + 'static) {
        *self.script.lock().unwrap() = Box::new(script);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Waits (up to 20 s of real time) until at least `n` requests arrived.
    pub async fn wait_hits(&self, n: usize) -> Vec<Hit> {
        super::eventually(
            format!("{n} deliveries"),
            Duration::from_secs(20),
            async || Some(self.hits()).filter(|h| h.len() >= n),
        )
        .await
    }

    /// Asserts that no request beyond the first `n` arrives while the gateway
    /// has time to send one (a negative check: it can only pass wrongly on a
    /// machine too slow to send within the grace period, never fail wrongly).
    pub async fn assert_stays_at(&self, n: usize) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(self.hits().len(), n, "unexpected delivery");
    }
}

/// Standard Webhooks verification written from the specification, independent
/// of the gateway's signing code: HMAC-SHA256 over `{id}.{timestamp}.{body}`
/// with the base64-decoded `whsec_` key, any of the space-separated `v1,`
/// signatures matching.
pub fn verify_standard_webhooks(secret: &str, id: &str, ts: &str, sigs: &str, body: &[u8]) -> bool {
    let key = B64
        .decode(secret.trim_start_matches("whsec_"))
        .expect("base64 key");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
    sigs.split(' ').any(|s| s == expected)
}

/// Verifies a delivery's headers and body with [`verify_standard_webhooks`].
pub fn verify_hit(secret: &str, hit: &Hit) -> bool {
    verify_standard_webhooks(
        secret,
        hit.header("webhook-id"),
        hit.header("webhook-timestamp"),
        hit.header("webhook-signature"),
        &hit.body,
    )
}
