//! The status panel's live list in a real browser under load: headless
//! Chromium opens the envelopes page (`#/envelopes`) on the gateway while
//! something else sends webhooks, and the page's own counters
//! (`window.countersignPanel`: received, coalesced, painted, repaints, and
//! each message's delay to its repaint) are read over the Chrome DevTools
//! Protocol at the start and the end of the window. The page keeps up when
//! everything received was painted (or replaced by a newer change of the same
//! envelope before the repaint) and the delays stay flat.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Serialize)]
pub struct LiveResult {
    pub seconds: f64,
    pub received_per_second: f64,
    pub painted_per_second: f64,
    pub coalesced: u64,
    /// Received but neither painted nor coalesced at the end (0: kept up).
    pub unpainted: i64,
    pub repaints_per_second: f64,
    pub max_batch: u64,
    /// A message's arrival in the page to its repaint (ms).
    pub arrival_to_paint_ms: Quantiles,
    /// The gateway's receipt of the webhook to the repaint (ms).
    pub receipt_to_paint_ms: Quantiles,
    /// CPU the browser's processes used per received message (µs).
    pub browser_cpu_us_per_message: f64,
}

#[derive(Debug, Serialize)]
pub struct Quantiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

fn quantiles(mut v: Vec<f64>) -> Quantiles {
    if v.is_empty() {
        return Quantiles {
            p50: 0.0,
            p99: 0.0,
            max: 0.0,
        };
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Quantiles {
        p50: at(0.5),
        p99: at(0.99),
        max: v[v.len() - 1],
    }
}

/// CPU seconds (user + system) of `pid` and all its descendants.
fn tree_cpu(pid: u32) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut parents = std::collections::HashMap::new();
    let mut cpu = std::collections::HashMap::new();
    for e in dir.flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ppid: u32 = f.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let t: f64 = f.get(11).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        parents.insert(p, ppid);
        cpu.insert(p, t / tick);
    }
    for (&p, &t) in &cpu {
        let mut q = p;
        while q != 0 {
            if q == pid {
                total += t;
                break;
            }
            q = parents.get(&q).copied().unwrap_or(0);
        }
    }
    total
}

struct Cdp {
    tx: futures_util::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        Message,
    >,
    rx: futures_util::stream::SplitStream<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    >,
    next: u64,
    session: Option<String>,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.tx.send(Message::text(msg.to_string())).await?;
        while let Some(m) = self.rx.next().await {
            let v: Value = serde_json::from_str(m?.to_text()?)?;
            if v["id"].as_u64() == Some(id) {
                anyhow::ensure!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return Ok(v["result"].clone());
            }
        }
        anyhow::bail!("the browser went away")
    }

    async fn eval(&mut self, expr: &str) -> anyhow::Result<Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        Ok(r["result"]["value"].clone())
    }

    async fn wait(&mut self, expr: &str, what: &str) -> anyhow::Result<()> {
        for _ in 0..300 {
            if self.eval(expr).await? == json!(true) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("timed out waiting for {what}")
    }
}

pub async fn run(
    admin: SocketAddr,
    chromium: &Path,
    duration: Duration,
) -> anyhow::Result<LiveResult> {
    let profile = std::env::temp_dir().join(format!("countersign-panel-{}", std::process::id()));
    let mut child = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let stderr = child.stderr.take().expect("piped");
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(u) = line.split("DevTools listening on ").nth(1) {
                let _ = url_tx.send(u.trim().to_owned());
                sent = true;
            }
        }
    });
    let result = async {
        let url = tokio::task::spawn_blocking(move || url_rx.recv_timeout(Duration::from_secs(30)))
            .await??;
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        let (tx, rx) = ws.split();
        let mut cdp = Cdp {
            tx,
            rx,
            next: 0,
            session: None,
        };
        let target = cdp
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await?;
        let attached = cdp
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await?;
        cdp.session = attached["sessionId"].as_str().map(str::to_owned);
        cdp.call(
            "Page.navigate",
            json!({"url": format!("http://{admin}/#/envelopes")}),
        )
        .await?;
        cdp.wait(
            "!!window.countersignPanel && document.querySelector('#link')?.dataset.state === 'up'",
            "the live envelopes page",
        )
        .await?;
        let read = "JSON.parse(JSON.stringify(window.countersignPanel))";
        let start = cdp.eval(read).await?;
        let cpu0 = tree_cpu(pid);
        tokio::time::sleep(duration).await;
        // What arrived in the window gets a moment to be painted.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let end = cdp.eval(read).await?;
        let cpu1 = tree_cpu(pid);
        let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
        let secs = duration.as_secs_f64();
        let received = n(&end, "received") - n(&start, "received");
        let painted = n(&end, "painted") - n(&start, "painted");
        let coalesced = n(&end, "coalesced") - n(&start, "coalesced");
        let repaints = n(&end, "repaints") - n(&start, "repaints");
        // The delays of the messages painted in the window (the page keeps
        // the last 10 000).
        let tail = |k: &str| -> Vec<f64> {
            let all: Vec<f64> = end[k]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            let keep = (painted as usize).min(all.len());
            all[all.len() - keep..].to_vec()
        };
        Ok::<_, anyhow::Error>(LiveResult {
            seconds: secs,
            received_per_second: received as f64 / secs,
            painted_per_second: painted as f64 / secs,
            coalesced,
            unpainted: received as i64 - painted as i64 - coalesced as i64,
            repaints_per_second: repaints as f64 / secs,
            max_batch: n(&end, "maxBatch"),
            arrival_to_paint_ms: quantiles(tail("arrivalToPaint")),
            receipt_to_paint_ms: quantiles(tail("receiptToPaint")),
            browser_cpu_us_per_message: if received > 0 {
                (cpu1 - cpu0) * 1e6 / received as f64
            } else {
                0.0
            },
        })
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&profile);
    result
}
