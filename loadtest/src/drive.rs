//! The drivers. Closed loop: N connections, each sending as soon as its previous
//! answer arrived (finds the maximum). Open loop: requests are due at a fixed
//! rate and latency is measured from when each was *due*, not when it was sent,
//! so a stalled server shows up in the percentiles (no coordinated omission).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::webhooks::{Generator, Webhook};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Closed { connections: usize },
    Open { rate: f64, connections: usize },
}

/// Shared tallies, merged from the workers.
#[derive(Default)]
struct Tally {
    latency_us: Option<Histogram<u64>>,
    status: BTreeMap<u16, u64>,
    errors: u64,
}

impl Tally {
    fn record(&mut self, status: Option<u16>, latency: Duration) {
        let h = self
            .latency_us
            .get_or_insert_with(|| Histogram::new_with_bounds(1, 60_000_000, 3).unwrap());
        let _ = h.record(latency.as_micros().clamp(1, 60_000_000) as u64);
        match status {
            Some(s) => *self.status.entry(s).or_default() += 1,
            None => self.errors += 1,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Serialize)]
pub struct RunResult {
    pub target: String,
    pub mode: String,
    pub connections: usize,
    pub offered_rate: Option<f64>,
    pub duration_s: f64,
    pub requests: u64,
    pub throughput_rps: f64,
    pub status: BTreeMap<u16, u64>,
    pub errors: u64,
    /// Milliseconds.
    pub latency_ms: Percentiles,
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends one webhook on `conn`, reconnecting once if the connection is gone.
async fn send(
    conn: &mut Option<SendRequest<Full<Bytes>>>,
    addr: SocketAddr,
    host: &str,
    w: &Webhook,
) -> Option<u16> {
    for _ in 0..2 {
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            *conn = connect(addr).await.ok();
        }
        let c = conn.as_mut()?;
        if c.ready().await.is_err() {
            *conn = None;
            continue;
        }
        let mut b = Request::builder()
            .method("POST")
            .uri(&w.path)
            .header("host", host);
        for (k, v) in &w.headers {
            b = b.header(k, v);
        }
        match c
            .send_request(b.body(Full::new(w.body.clone())).ok()?)
            .await
        {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let _ = resp.into_body().collect().await;
                return Some(status);
            }
            Err(_) => *conn = None,
        }
    }
    None
}

pub fn percentiles(h: &Option<Histogram<u64>>) -> Percentiles {
    let ms = |us: u64| us as f64 / 1000.0;
    match h {
        Some(h) => Percentiles {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        },
        None => Percentiles {
            p50: 0.0,
            p90: 0.0,
            p99: 0.0,
            p999: 0.0,
            max: 0.0,
            mean: 0.0,
        },
    }
}

/// Runs the load for `duration` and returns the summary.
pub async fn run(
    target: SocketAddr,
    mode: Mode,
    duration: Duration,
    generator: Generator,
) -> RunResult {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let generator = Arc::new(Mutex::new(generator));
    let host = target.to_string();
    let start = Instant::now();
    let end = start + duration;
    let progress = tokio::spawn(progress(tally.clone(), start, end));
    let connections = match mode {
        Mode::Closed { connections } | Mode::Open { connections, .. } => connections,
    };
    let mut workers = Vec::new();
    match mode {
        Mode::Closed { connections } => {
            for _ in 0..connections {
                let (tally, generator, host) = (tally.clone(), generator.clone(), host.clone());
                workers.push(tokio::spawn(async move {
                    let mut conn = None;
                    while Instant::now() < end {
                        let w = generator.lock().unwrap().next();
                        let t0 = Instant::now();
                        let status = send(&mut conn, target, &host, &w).await;
                        tally.lock().unwrap().record(status, t0.elapsed());
                    }
                }));
            }
        }
        Mode::Open { rate, connections } => {
            // Tickets carry the time each request was due.
            let (tx, rx) = mpsc::channel::<(Instant, Webhook)>(100_000);
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            let gen_task = {
                let generator = generator.clone();
                tokio::spawn(async move {
                    let interval = Duration::from_secs_f64(1.0 / rate);
                    let mut due = Instant::now();
                    while due < end {
                        tokio::time::sleep_until(due.into()).await;
                        let w = generator.lock().unwrap().next();
                        if tx.send((due, w)).await.is_err() {
                            return;
                        }
                        due += interval;
                    }
                })
            };
            workers.push(gen_task);
            for _ in 0..connections {
                let (tally, rx, host) = (tally.clone(), rx.clone(), host.clone());
                workers.push(tokio::spawn(async move {
                    let mut conn = None;
                    loop {
                        let Some((due, w)) = rx.lock().await.recv().await else {
                            return;
                        };
                        let status = send(&mut conn, target, &host, &w).await;
                        tally.lock().unwrap().record(status, due.elapsed());
                    }
                }));
            }
        }
    }
    for w in workers {
        let _ = w.await;
    }
    progress.abort();
    let elapsed = start.elapsed().as_secs_f64();
    let t = tally.lock().unwrap();
    let requests = t.status.values().sum::<u64>() + t.errors;
    RunResult {
        target: target.to_string(),
        mode: match mode {
            Mode::Closed { .. } => "closed".into(),
            Mode::Open { .. } => "open".into(),
        },
        connections,
        offered_rate: match mode {
            Mode::Open { rate, .. } => Some(rate),
            Mode::Closed { .. } => None,
        },
        duration_s: elapsed,
        requests,
        throughput_rps: requests as f64 / elapsed,
        status: t.status.clone(),
        errors: t.errors,
        latency_ms: percentiles(&t.latency_us),
    }
}

/// Prints a line a second: requests so far, rate, p99.
async fn progress(tally: Arc<Mutex<Tally>>, start: Instant, end: Instant) {
    let mut last = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while Instant::now() < end {
        tick.tick().await;
        let t = tally.lock().unwrap();
        let n = t.status.values().sum::<u64>() + t.errors;
        let p99 = t
            .latency_us
            .as_ref()
            .map_or(0.0, |h| h.value_at_quantile(0.99) as f64 / 1000.0);
        eprintln!(
            "t={:>4.0}s requests={n:>8} rate={:>8}/s p99={p99:.2}ms errors={}",
            start.elapsed().as_secs_f64(),
            n - last,
            t.errors
        );
        last = n;
    }
}
