//! A Server-Sent Events client over a real socket (hyper's HTTP/1.1 client
//! connection), reading events as they arrive.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

/// One event: its `id`, `event` name (none for messages) and `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<u64>,
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

pub struct SseClient {
    pub status: u16,
    /// Data frames (chunks: the server's writes) read so far.
    pub frames: usize,
    body: Incoming,
    buf: String,
}

/// Connects with `SO_RCVBUF` of `rcvbuf` bytes if given (a reader that
/// falls behind), and asks for `path` with `Last-Event-ID: last` if given.
pub async fn connect(
    admin: SocketAddr,
    path: &str,
    last: Option<u64>,
    rcvbuf: Option<u32>,
) -> SseClient {
    let stream = match rcvbuf {
        Some(n) => {
            let s = TcpSocket::new_v4().unwrap();
            s.set_recv_buffer_size(n).unwrap();
            s.connect(admin).await.expect("connect")
        }
        None => TcpStream::connect(admin).await.expect("connect"),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = http::Request::get(path).header("host", "localhost");
    if let Some(id) = last {
        req = req.header("last-event-id", id.to_string());
    }
    let resp = sender
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .expect("response head");
    let status = resp.status().as_u16();
    SseClient {
        status,
        frames: 0,
        body: resp.into_body(),
        buf: String::new(),
    }
}

impl SseClient {
    /// The next event; `None` when the stream ended or nothing came `within`.
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent {
                    id: None,
                    event: None,
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = v.trim().parse().ok();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("event:") {
                        ev.event = Some(v.trim().to_owned());
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        any = true;
                    }
                }
                if any {
                    return Some(ev);
                }
                continue; // a keep-alive comment
            }
            let frame = tokio::time::timeout(within, self.body.frame())
                .await
                .ok()??;
            if let Ok(data) = frame.ok()?.into_data() {
                self.frames += 1;
                self.buf.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }

    /// Events until `n` arrived, the stream ended, or nothing came `within`.
    pub async fn take(&mut self, n: usize, within: Duration) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.next(within).await {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }
}
