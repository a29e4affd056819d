//! Test harness: a gateway on 127.0.0.1:0 (in-process through `app::run`, or the
//! real binary), a small HTTP/1.1 client, and signed webhooks for every provider.
#![allow(dead_code)]

pub mod kafka;
pub mod metrics;
pub mod receiver;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use countersign::app;
use countersign::app::{self as config, Loaded};
use countersign::sink::clock::Clock;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Every provider with a realistic body: (source id, config lines, body, extra
/// headers, extra query).
pub const SOURCES: &str = r#"
[[sources]]
id = "docusign"
provider = "docusign"
secrets = ["dskey-old", "dskey"]

[[sources]]
id = "dropbox"
provider = "dropbox_sign"
secrets = ["dbx-api-key"]

[[sources]]
id = "adobe"
provider = "adobe_sign"
secrets = ["adobe-client-1"]

[[sources]]
id = "yousign"
provider = "yousign"
secrets = ["keySecret"]

[[sources]]
id = "boldsign"
provider = "boldsign"
secrets = ["bskey"]

[[sources]]
id = "docuseal"
provider = "docuseal"
secrets = ["whsec_test"]

[[sources]]
id = "zoho"
provider = "zoho_sign"
secrets = ["zkey"]

[[sources]]
id = "signnow"
provider = "signnow"
secrets = ["snkey"]

[[sources]]
id = "pandadoc"
provider = "pandadoc"
secrets = ["pdkey"]

[[sources]]
id = "opensign"
provider = "opensign"
secrets = ["oskey"]

[[sources]]
id = "documenso"
provider = "documenso"
secrets = ["dm-secret"]

[[sources]]
id = "skribble"
provider = "skribble"
secrets = ["sk-token-1"]

[[sources]]
id = "signius"
provider = "signius"
secrets = ["sg-token-1"]

[[sources]]
id = "sw"
provider = "standard_webhooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]

[[sources]]
id = "stripe"
provider = "stripe"
secrets = ["whsec_test_secret"]

[[sources]]
id = "github"
provider = "github"
secrets = ["It's a Secret to Everybody"]

[[sources]]
id = "generic"
provider = "generic_hmac"
secrets = ["gkey"]
header = "X-Sig"
prefix = "sha256="
template = "{timestamp}.{body}"
timestamp_header = "X-Ts"
"#;

pub struct Fixture {
    pub source: &'static str,
    pub body: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub query: Option<&'static str>,
}

pub const FIXTURES: &[Fixture] = &[
    Fixture {
        source: "docusign",
        body: r#"{"event":"envelope-completed","generatedDateTime":"2024-03-04T10:16:00Z","data":{"envelopeId":"env-ds"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "dropbox",
        body: r#"{"event":{"event_time":"1348177752","event_type":"signature_request_all_signed","event_metadata":{}},"signature_request":{"signature_request_id":"sr-dbx"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "adobe",
        body: r#"{"webhookNotificationId":"adobe-n-1","event":"AGREEMENT_WORKFLOW_COMPLETED","agreement":{"id":"agr-1"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "yousign",
        body: r#"{"event_id":"ys-1","event_name":"signature_request.done","data":{"signature_request":{"id":"sr-ys"}}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "boldsign",
        body: r#"{"event":{"id":"bs-1","eventType":"Completed"},"data":{"documentId":"doc-bs"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "docuseal",
        body: r#"{"event_type":"submission.completed","timestamp":"2024-01-01T00:00:00Z","data":{"id":77}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "zoho",
        body: r#"{"requests":{"request_id":99},"notifications":{"operation_type":"RequestCompleted","performed_at":1555062604837}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "signnow",
        body: r#"{"meta":{"event":"document.complete","timestamp":1590000000,"access_token":"SN-ACCESS-TOKEN-SECRET"},"content":{"document_id":"d-sn"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "pandadoc",
        body: r#"[{"event":"document_state_changed","data":{"id":"pd-1","status":"document.completed"}}]"#,
        headers: &[("X-PandaDoc-Webhook-Event-Id", "pd-hook-1")],
        query: None,
    },
    Fixture {
        source: "opensign",
        body: r#"{"event":"completed","objectId":"os-1"}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "documenso",
        body: r#"{"event":"DOCUMENT_COMPLETED","payload":{"id":5,"envelopeId":"envelope_dm"},"createdAt":"2025-01-01T00:00:00Z"}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "skribble",
        body: "",
        headers: &[],
        query: Some("event=SUCCESS&signature_request_id=sr-sk&document_id=doc-sk"),
    },
    Fixture {
        source: "signius",
        body: r#"{"documentId":"sg-1","documentStatus":"SIGNED"}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "sw",
        body: r#"{"type":"envelope.completed","data":{"envelope_id":"env-sw"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "stripe",
        body: r#"{"id":"evt_st_1","type":"envelope.completed","data":{"envelope_id":"env-st"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "github",
        body: r#"{"envelope_id":"env-gh"}"#,
        headers: &[
            ("X-GitHub-Event", "completed"),
            ("X-GitHub-Delivery", "gh-del-1"),
        ],
        query: None,
    },
    Fixture {
        source: "generic",
        body: r#"{"id":"gen-1","type":"envelope.completed","data":{"envelope_id":"env-gen"}}"#,
        headers: &[],
        query: None,
    },
];

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

/// The sources of [`SOURCES`], loaded through the real config code.
pub fn sources() -> Loaded {
    config::load_str(SOURCES).unwrap_or_else(|e| panic!("{e}"))
}

/// Signs a fixture the way its provider would, with `id` as the message id.
pub fn signed(loaded: &Loaded, f: &Fixture, id: &str) -> Req {
    let now = countersign::time::now_ms() / 1000;
    let mut req = sign_for(loaded, f.source, f.body.as_bytes(), now, id);
    if let Some(q) = f.query {
        let sep = if req.path.contains('?') { '&' } else { '?' };
        req.path = format!("{}{sep}{q}", req.path);
    }
    req.headers.extend(
        f.headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    req
}

/// Signs `body` for `source` at unix time `at`, as its provider would: headers,
/// a URL token or a query signature (in the path), and the body to send.
pub fn sign_for(loaded: &Loaded, source: &str, body: &[u8], at: i64, id: &str) -> Req {
    let src = loaded
        .sources
        .iter()
        .find(|s| s.id == source)
        .expect("configured source");
    let s = src.sign(body, at, id).expect("sign");
    let mut path = format!("/hooks/{source}");
    if let Some(t) = &s.signature.token {
        path = format!("{path}/{t}");
    }
    if let Some(q) = &s.signature.query {
        path = format!("{path}?{q}");
    }
    let mut headers = s.signature.headers;
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    Req {
        method: "POST",
        path,
        headers,
        body: s.body,
    }
}

pub fn fixture(source: &str) -> &'static Fixture {
    FIXTURES.iter().find(|f| f.source == source).unwrap()
}

/// Sends one request on a fresh connection.
pub async fn send(addr: SocketAddr, req: &Req) -> Resp {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut b = Request::builder()
        .method(req.method)
        .uri(&req.path)
        .header("host", addr.to_string());
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let resp = sender
        .send_request(b.body(Full::new(Bytes::from(req.body.clone()))).unwrap())
        .await
        .expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
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

/// How many events the admin API lists.
pub async fn event_count(admin: SocketAddr) -> usize {
    get(admin, "/v1/events?limit=1000").await.json()["events"]
        .as_array()
        .unwrap()
        .len()
}

/// A gateway running in this process through `app::run` on port 0.
pub struct Gateway {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Config text for a gateway on loopback port 0 with its store in `dir`.
pub fn config_text(dir: &Path, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n[store]\npath = \"{}\"\n\n{extra}\n",
        dir.display()
    )
}

impl Gateway {
    /// Starts a gateway with the given config text (see [`config_text`]).
    pub async fn start(toml: &str) -> Gateway {
        Gateway::start_with_clock(toml, Clock::System).await
    }

    /// Starts a gateway whose HTTP sink schedules by `clock`.
    pub async fn start_with_clock(toml: &str, clock: Clock) -> Gateway {
        let loaded = config::load_str(toml).unwrap_or_else(|e| panic!("{e}"));
        let listeners = app::Listeners::bind(&loaded.config.server).await.unwrap();
        let (public, admin) = listeners.addrs().unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let task = tokio::spawn(app::run_with_clock(loaded, listeners, shutdown, clock));
        let gw = Gateway {
            public,
            admin,
            stop: Some(stop),
            task: Some(task),
        };
        gw.wait_ready().await;
        gw
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(Ok(s)) =
                tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(self.admin)).await
            {
                drop(s);
                if get(self.admin, "/readyz").await.status == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("gateway did not become ready");
    }

    /// Stops the gateway and waits until the store is closed.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

/// Runs the binary with `args` to completion (offline subcommands).
pub fn countersign(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .output()
        .expect("run countersign")
}

/// The real binary, started with a config file; addresses read from its log.
pub struct Binary {
    pub child: Child,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    /// Every line the process wrote to stderr (its log), so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Binary {
    pub fn start(config_path: &Path) -> Binary {
        let mut child = Command::new(env!("CARGO_BIN_EXE_countersign"))
            .args(["serve", "--config"])
            .arg(config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn countersign");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                lines.lock().unwrap().push(line.clone());
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "listening"
                {
                    let _ = tx.send((
                        v["public"].as_str().unwrap().parse().unwrap(),
                        v["admin"].as_str().unwrap().parse().unwrap(),
                    ));
                }
            }
        });
        let (public, admin) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("binary logs its addresses");
        Binary {
            child,
            public,
            admin,
            log,
        }
    }

    pub fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// The log so far, one string.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Streams webhooks at `bin` from `workers` clients, each sending its requests
/// (`make(worker, n)` → (event id, request)) back to back; once `kill_after` are
/// acknowledged, kills the process with SIGKILL while the rest are in flight.
/// Returns the ids that were acknowledged with 200.
pub async fn stream_then_kill9(
    bin: &mut Binary,
    workers: usize,
    kill_after: usize,
    make: impl Fn(usize, usize) -> (String, Req) + Send + Sync + 'static,
) -> Vec<String> {
    let make = Arc::new(make);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (kill_tx, mut kill_rx) = tokio::sync::mpsc::channel::<()>(1);
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (make, acked, kill_tx, addr) =
                (make.clone(), acked.clone(), kill_tx.clone(), bin.public);
            tokio::spawn(async move {
                for n in 0.. {
                    let (id, req) = make(w, n);
                    // A send that fails when the process dies panics inside its own task.
                    let status = tokio::spawn(async move { send(addr, &req).await.status }).await;
                    if !matches!(status, Ok(200)) {
                        return;
                    }
                    let mut a = acked.lock().unwrap();
                    a.push(id);
                    if a.len() == kill_after {
                        let _ = kill_tx.try_send(());
                    }
                }
            })
        })
        .collect();
    kill_rx
        .recv()
        .await
        .expect("enough webhooks acknowledged before the kill");
    bin.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= kill_after);
    acked
}

/// Breaks the request's credentials in the way that fits its scheme.
pub fn tamper(req: &mut Req) {
    if req.path.starts_with("/hooks/skribble/") || req.path.starts_with("/hooks/signius/") {
        req.path = req.path.replacen("-token-1", "-token-2", 1);
    } else if req.path.starts_with("/hooks/adobe") || req.path.starts_with("/hooks/documenso") {
        for (k, v) in &mut req.headers {
            if k.eq_ignore_ascii_case("X-AdobeSign-ClientId")
                || k.eq_ignore_ascii_case("x-documenso-secret")
            {
                v.push('x');
            }
        }
    } else if req.path.starts_with("/hooks/dropbox") {
        // The hash covers event_time + event_type: change the time.
        let text = String::from_utf8(req.body.clone()).unwrap();
        req.body = text.replacen("1348177752", "1348177753", 1).into_bytes();
    } else {
        // Every MAC scheme covers the body: change one byte of it.
        let pos = req
            .body
            .iter()
            .rposition(|b| *b == b'}' || *b == b']')
            .unwrap_or(0);
        req.body.insert(pos, b' ');
    }
}
