//! The drivers. Every request is generated and signed **before** the timed
//! window, as the raw bytes of an HTTP/1.1 request, so the window measures
//! the server and a socket write, not the generator (`prepare`). Each
//! connection is its own task with its own histogram and counters; they are
//! merged at the end, so connections share no lock. Connections are spread
//! over `threads` OS threads, each with a single-threaded runtime (as wrk
//! does).
//!
//! Closed loop: each connection sends as soon as its previous answer
//! arrived (finds the maximum). Open loop: each connection has its own
//! schedule, `rate / connections` requests a second offset so the
//! connections interleave, and latency is measured from when each request
//! was *due*, not when it was sent, so a stalled server shows up in the
//! percentiles (no coordinated omission). A connection can only have one
//! request outstanding (no pipelining): give enough connections that
//! `rate / connections` × latency stays well below 1.
//!
//! The client speaks just the HTTP/1.1 it needs: keep-alive, a response
//! with `Content-Length` (what countersign and the baseline servers send);
//! anything else counts as an error.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pace::Pacer;
use crate::webhooks::{GenConfig, Generator, Webhook};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Closed { connections: usize },
    Open { rate: f64, connections: usize },
}

impl Mode {
    fn connections(&self) -> usize {
        match *self {
            Mode::Closed { connections } | Mode::Open { connections, .. } => connections.max(1),
        }
    }
}

/// One connection's tallies (merged at the end).
struct Tally {
    latency_us: Histogram<u64>,
    /// Open loop: how late after its due time each request was written.
    lag_us: Histogram<u64>,
    status: BTreeMap<u16, u64>,
    errors: u64,
}

/// Microseconds from 1 µs to 60 s, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds")
}

/// `d` in whole microseconds, within [`histogram`]'s bounds.
fn micros(d: Duration) -> u64 {
    d.as_micros().clamp(1, 60_000_000) as u64
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency_us: histogram(),
            lag_us: histogram(),
            status: BTreeMap::new(),
            errors: 0,
        }
    }

    fn record(&mut self, status: Option<u16>, latency: Duration) {
        let _ = self.latency_us.record(micros(latency));
        match status {
            Some(s) => *self.status.entry(s).or_default() += 1,
            None => self.errors += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.lag_us.add(&other.lag_us);
        for (s, n) in other.status {
            *self.status.entry(s).or_default() += n;
        }
        self.errors += other.errors;
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
    pub threads: usize,
    pub offered_rate: Option<f64>,
    pub duration_s: f64,
    pub requests: u64,
    pub throughput_rps: f64,
    pub status: BTreeMap<u16, u64>,
    pub errors: u64,
    /// Milliseconds.
    pub latency_ms: Percentiles,
    /// Open loop: how late after its due time each request was written, in
    /// milliseconds (the schedule's own lateness, plus any wait for the
    /// connection's previous answer). Latency counts from the due time, so
    /// this is the part of it the tool, not the server, may have added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_lag_ms: Option<Percentiles>,
    /// Requests prepared before the window, and how many sends had to reuse
    /// one because the pool ran out (closed loop; 0 means every request
    /// was unique).
    pub prepared: usize,
    pub reused: u64,
    /// Seconds spent preparing (outside the window).
    pub prepare_s: f64,
}

pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    let ms = |us: u64| us as f64 / 1000.0;
    if h.is_empty() {
        return Percentiles {
            p50: 0.0,
            p90: 0.0,
            p99: 0.0,
            p999: 0.0,
            max: 0.0,
            mean: 0.0,
        };
    }
    Percentiles {
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        mean: h.mean() / 1000.0,
    }
}

/// The raw HTTP/1.1 request of a webhook.
fn raw(w: &Webhook, host: &str) -> Bytes {
    let mut out = Vec::with_capacity(w.body.len() + 512);
    out.extend_from_slice(format!("POST {} HTTP/1.1\r\nhost: {host}\r\n", w.path).as_bytes());
    for (k, v) in &w.headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", w.body.len()).as_bytes());
    out.extend_from_slice(&w.body);
    out.into()
}

/// Generates and signs `n` requests on `threads` threads (each its own
/// generator with its own run id suffix, so ids never collide), interleaved
/// so every envelope's events keep their order.
pub fn prepare(
    cfg: &GenConfig,
    n: usize,
    host: &str,
    threads: usize,
) -> anyhow::Result<Vec<Bytes>> {
    let threads = threads.clamp(1, 16).min(n.max(1));
    let per = n.div_ceil(threads);
    let parts: Vec<anyhow::Result<Vec<Bytes>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mut cfg = cfg.clone();
                cfg.run_id = format!("{}-{t}", cfg.run_id);
                s.spawn(move || {
                    let mut g = Generator::new(cfg)?;
                    Ok((0..per).map(|_| raw(&g.next(), host)).collect())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("generator thread"))
            .collect()
    });
    let parts = parts.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    // Round-robin over the parts: each part's order is kept.
    let mut out = Vec::with_capacity(n);
    let mut iters: Vec<_> = parts.into_iter().map(Vec::into_iter).collect();
    while out.len() < n {
        let mut any = false;
        for it in iters.iter_mut() {
            if let Some(r) = it.next() {
                out.push(r);
                any = true;
                if out.len() == n {
                    break;
                }
            }
        }
        if !any {
            break;
        }
    }
    Ok(out)
}

/// A keep-alive connection with its read buffer.
struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    /// Whether the current stream has completed an exchange (a server may
    /// close an idle kept-alive connection: then one retry on a new one).
    used: bool,
    buf: Vec<u8>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            used: false,
            buf: Vec::with_capacity(8192),
        }
    }

    /// Sends `req` and reads the answer: its status, or `None` on any error
    /// (the connection is dropped; the next send connects again).
    async fn send(&mut self, req: &[u8]) -> Option<u16> {
        loop {
            if self.stream.is_none() {
                let s = TcpStream::connect(self.addr).await.ok()?;
                s.set_nodelay(true).ok()?;
                self.stream = Some(s);
                self.used = false;
                self.buf.clear();
            }
            let was_used = self.used;
            match self.exchange(req).await {
                Some(status) => {
                    self.used = true;
                    return Some(status);
                }
                None => {
                    self.stream = None;
                    if !was_used {
                        return None;
                    }
                }
            }
        }
    }

    /// One request and its response's status; `None` on an I/O error, a
    /// closed connection or a response this client does not read.
    async fn exchange(&mut self, req: &[u8]) -> Option<u16> {
        let s = self.stream.as_mut()?;
        s.write_all(req).await.ok()?;
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if read_more(s, &mut self.buf).await.ok()? == 0 {
                return None;
            }
        };
        let (status, length, close) = parse_head(&self.buf[..head_end])?;
        while self.buf.len() < head_end + length {
            if read_more(s, &mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
        self.buf.drain(..head_end + length);
        if close {
            self.stream = None;
        }
        Some(status)
    }
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let len = buf.len();
    buf.resize(len + 8192, 0);
    let n = s.read(&mut buf[len..]).await;
    buf.truncate(len + *n.as_ref().unwrap_or(&0));
    n
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Status, `Content-Length` and whether the server closes, from a response
/// head; `None` without a length (this client reads nothing else).
fn parse_head(head: &[u8]) -> Option<(u16, usize, bool)> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let (mut length, mut close) = (None, false);
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            length = v.parse().ok();
        } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
            close = true;
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
    }
    Some((status, length?, close))
}

/// What the connections share: the prepared requests, where the closed
/// loop's next one is, and counters for the progress line.
struct Shared {
    requests: Vec<Bytes>,
    next: AtomicUsize,
    done: AtomicU64,
    failed: AtomicU64,
    reused: AtomicU64,
}

impl Shared {
    /// The closed loop's next request; wraps around (counted) when the pool
    /// is used up.
    fn take(&self) -> &[u8] {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.requests.len() {
            self.reused.fetch_add(1, Ordering::Relaxed);
        }
        &self.requests[i % self.requests.len()]
    }
}

/// One connection of the closed loop.
async fn closed(shared: Arc<Shared>, addr: SocketAddr, end: Instant) -> Tally {
    let mut t = Tally::new();
    let mut conn = Conn::new(addr);
    while Instant::now() < end {
        let t0 = Instant::now();
        let status = conn.send(shared.take()).await;
        t.record(status, t0.elapsed());
        count(&shared, status);
    }
    t
}

/// Connection `k` of `c` in the open loop: requests `k`, `k + c`, … of the
/// pool, each due at `start + index / rate`.
async fn open(
    shared: Arc<Shared>,
    addr: SocketAddr,
    start: Instant,
    rate: f64,
    k: usize,
    c: usize,
) -> Tally {
    let mut t = Tally::new();
    let mut conn = Conn::new(addr);
    let mut pacer = Pacer::new().expect("a timerfd for the open loop's schedule");
    let mut i = k;
    while i < shared.requests.len() {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        pacer.until(due).await.expect("the schedule's timer");
        let _ = t.lag_us.record(micros(due.elapsed()));
        let status = conn.send(&shared.requests[i]).await;
        t.record(status, due.elapsed());
        count(&shared, status);
        i += c;
    }
    t
}

fn count(shared: &Shared, status: Option<u16>) {
    shared.done.fetch_add(1, Ordering::Relaxed);
    if status.is_none() {
        shared.failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// How many requests a run prepares: the open loop's exact count, or for
/// the closed loop `pool` (wrapping around, counted, if the server is faster).
pub fn pool_size(mode: Mode, duration: Duration, pool: usize) -> usize {
    match mode {
        Mode::Open { rate, .. } => (rate * duration.as_secs_f64()).ceil().max(1.0) as usize,
        Mode::Closed { .. } => pool.max(1),
    }
}

/// Prepares the requests, then runs the load for `duration` on `threads`
/// threads and returns the summary.
pub fn run(
    target: SocketAddr,
    mode: Mode,
    duration: Duration,
    cfg: &GenConfig,
    pool: usize,
    threads: usize,
) -> anyhow::Result<RunResult> {
    let host = target.to_string();
    let t0 = Instant::now();
    let requests = prepare(cfg, pool_size(mode, duration, pool), &host, 2)?;
    let prepare_s = t0.elapsed().as_secs_f64();
    let prepared = requests.len();
    let shared = Arc::new(Shared {
        requests,
        next: AtomicUsize::new(0),
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        reused: AtomicU64::new(0),
    });
    let connections = mode.connections();
    let threads = threads.clamp(1, connections);
    let start = Instant::now() + Duration::from_millis(20);
    let end = start + duration;
    let progress = {
        let shared = shared.clone();
        std::thread::spawn(move || progress(&shared, start, end))
    };
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|th| {
                let shared = shared.clone();
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(async move {
                        let tasks: Vec<_> = (th..connections)
                            .step_by(threads)
                            .map(|k| {
                                let shared = shared.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep_until(start.into()).await;
                                    match mode {
                                        Mode::Closed { .. } => closed(shared, target, end).await,
                                        Mode::Open { rate, .. } => {
                                            open(shared, target, start, rate, k, connections).await
                                        }
                                    }
                                })
                            })
                            .collect();
                        let mut out = Vec::new();
                        for t in tasks {
                            out.push(t.await.expect("connection task"));
                        }
                        out
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("driver thread"))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let _ = progress.join();
    let mut all = Tally::new();
    for t in tallies {
        all.merge(t);
    }
    let requests = all.status.values().sum::<u64>() + all.errors;
    Ok(RunResult {
        target: target.to_string(),
        mode: match mode {
            Mode::Closed { .. } => "closed".into(),
            Mode::Open { .. } => "open".into(),
        },
        connections,
        threads,
        offered_rate: match mode {
            Mode::Open { rate, .. } => Some(rate),
            Mode::Closed { .. } => None,
        },
        duration_s: elapsed,
        requests,
        throughput_rps: requests as f64 / elapsed,
        status: all.status,
        errors: all.errors,
        latency_ms: percentiles(&all.latency_us),
        send_lag_ms: matches!(mode, Mode::Open { .. }).then(|| percentiles(&all.lag_us)),
        prepared,
        reused: shared.reused.load(Ordering::Relaxed),
        prepare_s,
    })
}

/// Prints a line a second to stderr: requests so far, rate, errors.
fn progress(shared: &Shared, start: Instant, end: Instant) {
    let mut last = 0u64;
    let mut tick = start;
    loop {
        tick += Duration::from_secs(1);
        if tick > end + Duration::from_secs(1) {
            return;
        }
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
        let n = shared.done.load(Ordering::Relaxed);
        eprintln!(
            "t={:>4.0}s requests={n:>8} rate={:>8}/s errors={}",
            start.elapsed().as_secs_f64(),
            n - last,
            shared.failed.load(Ordering::Relaxed)
        );
        last = n;
        if Instant::now() >= end && n == last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_heads_are_read_for_status_length_and_close() {
        let h = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 17\r\n\r\n";
        assert_eq!(parse_head(h), Some((200, 17, false)));
        let h =
            b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(parse_head(h), Some((503, 0, true)));
        let h = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(parse_head(h), None);
    }

    fn cfg() -> GenConfig {
        GenConfig {
            providers: vec!["standard_webhooks".into(), "docusign".into()],
            duplicate_ratio: 0.0,
            payload_bytes: 0,
            signers: 2,
            signers_max: None,
            run_id: "t".into(),
            only_sent: false,
        }
    }

    #[test]
    fn prepared_requests_are_unique_complete_http_requests() {
        let reqs = prepare(&cfg(), 101, "127.0.0.1:1", 2).unwrap();
        assert_eq!(reqs.len(), 101);
        let mut ids = std::collections::HashSet::new();
        for r in &reqs {
            let text = std::str::from_utf8(r).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("POST /hooks/lt-"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(len, body.len());
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert!(ids.insert(v.to_string()), "a duplicate body");
        }
    }

    /// Against the baseline server on loopback: every request answered
    /// 200, on both loops; the open loop sends exactly rate × duration.
    /// A baseline server on loopback (answering after `sync`'s group commit
    /// if given), on `rt`, and a closed loop of 4 connections against it for
    /// 300 ms.
    fn closed_loop_on_baseline(
        rt: &tokio::runtime::Runtime,
        sync: Option<tokio::sync::mpsc::Sender<crate::baseline::Waiter>>,
    ) -> (std::net::SocketAddr, RunResult) {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(crate::baseline::serve(listener, None, sync));
        let closed = run(
            addr,
            Mode::Closed { connections: 4 },
            Duration::from_millis(300),
            &cfg(),
            50,
            2,
        )
        .unwrap();
        (addr, closed)
    }

    #[test]
    fn both_loops_drive_the_baseline_server() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (addr, closed) = closed_loop_on_baseline(&rt, None);
        assert!(closed.requests > 0);
        assert_eq!(closed.errors, 0);
        assert_eq!(closed.status.get(&200).copied(), Some(closed.requests));
        assert_eq!(closed.prepared, 50);
        assert_eq!(closed.reused, closed.requests.saturating_sub(50));
        let open = run(
            addr,
            Mode::Open {
                rate: 200.0,
                connections: 4,
            },
            Duration::from_millis(500),
            &cfg(),
            0,
            1,
        )
        .unwrap();
        assert_eq!(open.requests, 100);
        assert_eq!(open.status.get(&200).copied(), Some(100));
        assert_eq!(open.reused, 0);
        // The open loop reports how late it sent each request (in whole
        // microseconds, at least 1); the closed loop has no schedule.
        let lag = open.send_lag_ms.expect("the open loop's send lag");
        assert!(lag.p50 >= 0.001 && lag.max >= lag.p99, "{lag:?}");
        assert!(closed.send_lag_ms.is_none());
    }

    /// The synced baseline answers every request 200, and only after its
    /// body is in the log: once the run ends, the log holds every body
    /// answered (length-prefixed, one group commit after another).
    #[test]
    fn the_synced_baseline_logs_every_body_it_answers() {
        let dir = std::env::temp_dir().join(format!("lt-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let sync = {
            let _rt = rt.enter();
            crate::baseline::sync_log(&dir).unwrap()
        };
        let (_, closed) = closed_loop_on_baseline(&rt, Some(sync));
        assert!(closed.requests > 0);
        assert_eq!(closed.status.get(&200).copied(), Some(closed.requests));
        let log = std::fs::read(dir.join("baseline-sync.log")).unwrap();
        let mut at = 0;
        let mut logged = 0;
        while logged < closed.requests {
            let len = u32::from_le_bytes(log[at..at + 4].try_into().unwrap()) as usize;
            assert!(
                len > 0,
                "the log ends after {logged} of {} bodies",
                closed.requests
            );
            let body: serde_json::Value =
                serde_json::from_slice(&log[at + 4..at + 4 + len]).unwrap();
            assert!(body.is_object());
            at += 4 + len;
            logged += 1;
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
