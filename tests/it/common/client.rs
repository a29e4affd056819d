//! A small HTTP/1.1 client for the gateway's listeners.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as an admin API type.
    pub fn body<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request on a fresh connection.
pub async fn send(addr: SocketAddr, req: &Req) -> Resp {
    try_send(addr, req)
        .await
        .expect("connect, handshake and response")
}

/// [`send`], `None` when the connection is refused or dropped (a gateway
/// that stopped listening).
pub async fn try_send(addr: SocketAddr, req: &Req) -> Option<Resp> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let mut b = Request::builder().method(req.method).uri(&req.path);
    if !req
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("host"))
    {
        b = b.header("host", addr.to_string());
    }
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let resp = sender
        .send_request(b.body(Full::new(Bytes::from(req.body.clone()))).unwrap())
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.ok()?.to_bytes().to_vec();
    Some(Resp {
        status,
        headers,
        body,
    })
}

pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    send(
        addr,
        &Req {
            method: "GET",
            path: path.into(),
            headers: vec![],
            body: vec![],
        },
    )
    .await
}
