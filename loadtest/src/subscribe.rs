//! Stream subscribers: N Server-Sent Events connections to the gateway's
//! `/v1/stream`, each message's delivery latency measured as its arrival
//! minus `at` (when the gateway received the webhook that caused it; the same
//! machine's clock, millisecond resolution), and how many messages each
//! subscriber got (every subscriber should get every change).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::drive::{Percentiles, percentiles};

#[derive(Debug, Serialize)]
pub struct SubscribeResult {
    pub subscribers: usize,
    /// Subscribers that got a 200 and stayed until the end.
    pub connected: usize,
    pub messages_total: u64,
    pub messages_per_subscriber_min: u64,
    pub messages_per_subscriber_max: u64,
    /// `event: close` the gateway sent (lagged, shutdown…), by reason.
    pub closed_by_gateway: std::collections::BTreeMap<String, u64>,
    /// Arrival minus the webhook's receipt, in milliseconds.
    pub latency_ms: Percentiles,
}

#[derive(Default)]
struct Tally {
    latency_us: Option<Histogram<u64>>,
    counts: Vec<u64>,
    connected: usize,
    closed: std::collections::BTreeMap<String, u64>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The `at` of a stream message (RFC 3339 with milliseconds, UTC) as ms,
/// found without parsing the whole message (1 000 subscribers' worth of
/// parsing would load the machine the gateway runs on).
fn at_ms(data: &str) -> Option<i64> {
    let from = data.find("\"at\":\"")? + 6;
    let len = data[from..].find('"')?;
    countersign::time::parse_rfc3339_ms(&data[from..from + len])
}

async fn subscriber(admin: SocketAddr, until: tokio::time::Instant, tally: Arc<Mutex<Tally>>) {
    let Ok(stream) = TcpStream::connect(admin).await else {
        return;
    };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return;
    };
    tokio::spawn(conn);
    let req = http::Request::get("/v1/stream")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let Ok(resp) = sender.send_request(req).await else {
        return;
    };
    if resp.status() != 200 {
        return;
    }
    let mut body = resp.into_body();
    let mut buf = String::new();
    let mut count = 0u64;
    let mut lat = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut closed = None;
    loop {
        let frame = match tokio::time::timeout_at(until, body.frame()).await {
            Ok(Some(Ok(f))) => f,
            _ => break,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let arrived = now_ms();
        buf.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if block.lines().any(|l| l.starts_with("event: close")) {
                closed = Some(block);
                continue;
            }
            if let Some(d) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                count += 1;
                if let Some(at) = at_ms(d) {
                    let _ = lat.record(((arrived - at).max(0) as u64) * 1000);
                }
            }
        }
        if closed.is_some() {
            break;
        }
    }
    let mut t = tally.lock().expect("tally");
    t.counts.push(count);
    match closed {
        Some(block) => {
            let reason = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                .and_then(|v| v["reason"].as_str().map(str::to_owned))
                .unwrap_or_default();
            *t.closed.entry(reason).or_default() += 1;
        }
        None => t.connected += 1,
    }
    match &mut t.latency_us {
        Some(h) => h.add(&lat).expect("same bounds"),
        None => t.latency_us = Some(lat),
    }
}

/// Connects `n` subscribers and listens for `duration`.
pub async fn run(
    admin: SocketAddr,
    n: usize,
    duration: Duration,
) -> anyhow::Result<SubscribeResult> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let until = tokio::time::Instant::now() + duration;
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(subscriber(admin, until, tally.clone())))
        .collect();
    for t in tasks {
        t.await?;
    }
    let t = tally.lock().expect("tally");
    Ok(SubscribeResult {
        subscribers: n,
        connected: t.connected,
        messages_total: t.counts.iter().sum(),
        messages_per_subscriber_min: t.counts.iter().copied().min().unwrap_or(0),
        messages_per_subscriber_max: t.counts.iter().copied().max().unwrap_or(0),
        closed_by_gateway: t.closed.clone(),
        latency_ms: match &t.latency_us {
            Some(h) => percentiles(h),
            None => percentiles(&hdrhistogram::Histogram::new(3).expect("sigfig")),
        },
    })
}
