//! The status panel's reads against a gateway holding many envelopes: how
//! long the admin API takes to answer what the panel's pages ask for (the
//! envelopes page's first render, each filter, a search, an envelope's
//! detail, the overview), measured over one keep-alive connection like the
//! browser's.
//!
//! It first walks the whole listing (counting the envelopes) and registers
//! `--register` of them, spread evenly from newest to oldest, with a
//! reference (`PANEL-<i>`) and a signer, so reference filters and searches
//! have matches at every depth. A filter whose matches are sparse answers
//! a bounded page (possibly empty, with `next_before`): besides the
//! per-answer latency it reports how many answers and how long it takes to
//! reach the first match (`to_first_match`), as the page's "Older envelopes"
//! button would.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::drive::{Percentiles, percentiles};

#[derive(Debug, Serialize)]
pub struct PanelResult {
    pub envelopes: usize,
    pub registered: usize,
    /// Walking the whole listing, 500 a page.
    pub walk_seconds: f64,
    pub queries: Vec<QueryResult>,
}

#[derive(Debug, Serialize)]
pub struct QueryResult {
    pub name: String,
    pub path: String,
    /// Each answer's latency (ms), over the rounds.
    pub latency_ms: Percentiles,
    pub bytes: usize,
    /// Envelopes in the first answer.
    pub first_answer: usize,
    /// Answers and milliseconds until the first match, following
    /// `next_before` (absent when the query has no match at all).
    pub to_first_match: Option<(usize, f64)>,
}

/// One keep-alive connection to the admin listener.
struct Client {
    addr: SocketAddr,
    token: Option<String>,
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    async fn connect(addr: SocketAddr, token: Option<String>) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Client {
            addr,
            token,
            sender,
        })
    }

    /// (status, body) of one request.
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let resp = self.sender.send_request(req.body(Full::new(body))?).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    async fn json(&mut self, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.call("GET", path, None).await?;
        anyhow::ensure!(
            status == 200,
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        Ok(serde_json::from_slice(&body)?)
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn run(
    admin: SocketAddr,
    token: Option<String>,
    register: usize,
    rounds: usize,
) -> anyhow::Result<PanelResult> {
    let mut c = Client::connect(admin, token).await?;

    // Every envelope, newest first.
    let started = Instant::now();
    let mut all: Vec<(String, String)> = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/v1/envelopes?limit=500&before={b}"),
            None => "/v1/envelopes?limit=500".to_owned(),
        };
        let page = c.json(&path).await?;
        for e in page["envelopes"].as_array().into_iter().flatten() {
            all.push((
                e["source"].as_str().unwrap_or_default().to_owned(),
                e["envelope_id"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        match page["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    let walk_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        !all.is_empty(),
        "the gateway holds no envelopes: seed it first"
    );

    // References spread from the newest (i = 0) to the oldest.
    let n = register.min(all.len()).max(1);
    let step = all.len() / n;
    let mut refs = Vec::with_capacity(n);
    for i in 0..n {
        let (source, id) = &all[i * step];
        let body = json!({
            "reference": format!("PANEL-{i}"),
            "signers": [{"email": format!("signer{i}@example.com"), "name": format!("Signer {i}")}],
        });
        let (status, text) = c
            .call(
                "PUT",
                &format!("/v1/envelopes/{}/{}", enc(source), enc(id)),
                Some(body),
            )
            .await?;
        anyhow::ensure!(
            status == 200,
            "register: {status} {}",
            String::from_utf8_lossy(&text)
        );
        refs.push(format!("PANEL-{i}"));
    }
    let (source, newest) = all[0].clone();
    let deep = n - 1;
    let mid = n / 2;
    let queries: Vec<(String, String)> = [
        (
            "first page (the page's first render)",
            "/v1/envelopes?limit=50".to_owned(),
        ),
        ("state=open", "/v1/envelopes?limit=50&state=open".into()),
        (
            "state=in_signing",
            "/v1/envelopes?limit=50&state=in_signing".into(),
        ),
        (
            "state=completed",
            "/v1/envelopes?limit=50&state=completed".into(),
        ),
        (
            "state=cancelled",
            "/v1/envelopes?limit=50&state=cancelled".into(),
        ),
        (
            "source",
            format!("/v1/envelopes?limit=50&source={}", enc(&source)),
        ),
        (
            "reference, newest",
            format!("/v1/envelopes?limit=50&reference={}", refs[0]),
        ),
        (
            "reference, middle",
            format!("/v1/envelopes?limit=50&reference={}", refs[mid]),
        ),
        (
            "reference, oldest",
            format!("/v1/envelopes?limit=50&reference={}", refs[deep]),
        ),
        (
            "search q=PANEL- (1 in {step})",
            "/v1/envelopes?limit=50&q=PANEL-".into(),
        ),
        (
            "search, oldest signer",
            format!("/v1/envelopes?limit=50&q=signer{deep}%40example.com"),
        ),
        (
            "search, no match",
            "/v1/envelopes?limit=50&q=no-such-thing".into(),
        ),
        (
            "envelope detail",
            format!("/v1/envelopes/{}/{}", enc(&source), enc(&newest)),
        ),
        ("overview", "/v1/overview".into()),
    ]
    .into_iter()
    .map(|(a, b)| (a.replace("{step}", &step.to_string()), b))
    .collect();

    let mut out = Vec::new();
    for (name, path) in queries {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut bytes = 0;
        let mut first_answer = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let (status, body) = c.call("GET", &path, None).await?;
            h.record(t.elapsed().as_micros().max(1) as u64)?;
            anyhow::ensure!(status == 200, "{path}: {status}");
            bytes = body.len();
            let v: Value = serde_json::from_slice(&body)?;
            first_answer = v["envelopes"].as_array().map_or(0, Vec::len);
        }
        let to_first_match = if path.starts_with("/v1/envelopes?") {
            first_match(&mut c, &path).await?
        } else {
            None
        };
        out.push(QueryResult {
            name,
            path,
            latency_ms: percentiles(&h),
            bytes,
            first_answer,
            to_first_match,
        });
    }
    Ok(PanelResult {
        envelopes: all.len(),
        registered: n,
        walk_seconds,
        queries: out,
    })
}

/// Answers and ms until the first match, following `next_before`.
async fn first_match(c: &mut Client, path: &str) -> anyhow::Result<Option<(usize, f64)>> {
    let started = Instant::now();
    let mut before: Option<u64> = None;
    for answers in 1.. {
        let p = match before {
            Some(b) => format!("{path}&before={b}"),
            None => path.to_owned(),
        };
        let v = c.json(&p).await?;
        if v["envelopes"].as_array().is_some_and(|a| !a.is_empty()) {
            return Ok(Some((answers, started.elapsed().as_secs_f64() * 1000.0)));
        }
        match v["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => return Ok(None),
        }
        if started.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("{path}: no end after two minutes");
        }
    }
    unreachable!()
}
