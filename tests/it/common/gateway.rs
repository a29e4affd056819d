//! The gateway under test: in-process through `app::run` on port 0 (owning its
//! store directory), or the real binary.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use countersign::app;
use countersign::app::{self as config, Loaded};
use countersign::time::Clock;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::{Req, eventually, get, send};

/// How many events the admin API lists.
pub async fn event_count(admin: SocketAddr) -> usize {
    let list: countersign::admin::api::EventList = get(admin, "/v1/events?limit=1000").await.body();
    list.events.len()
}

/// A gateway running in this process through `app::run` on port 0. It owns
/// the directory its store lives in (removed when the gateway is dropped), so
/// a test cannot lose it early, and [`Gateway::restart`] reopens the same files.
pub struct Gateway {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    /// The config text it runs with.
    pub toml: String,
    clock: Clock,
    dir: tempfile::TempDir,
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

/// [`config_text`] with `keys` (TOML lines) added under `[server]`.
pub fn with_server_keys(dir: &Path, extra: &str, keys: &str) -> String {
    with_keys(dir, extra, "[server]\n", keys)
}

/// [`config_text`] with `keys` (TOML lines) added under `[store]`.
pub fn with_store_keys(dir: &Path, extra: &str, keys: &str) -> String {
    with_keys(dir, extra, "[store]\n", keys)
}

/// [`config_text`] with `keys` added after the `header` line of a section.
fn with_keys(dir: &Path, extra: &str, header: &str, keys: &str) -> String {
    config_text(dir, extra).replacen(header, &format!("{header}{keys}"), 1)
}

impl Gateway {
    /// Starts a gateway on [`config_text`] with `extra` appended and `keys`
    /// added under `[server]`.
    pub async fn start_with_server_keys(extra: &str, keys: &str) -> Gateway {
        Gateway::start_with(|dir| with_server_keys(dir, extra, keys), Clock::System).await
    }

    /// Starts a gateway on [`config_text`] with `extra` appended.
    pub async fn start(extra: &str) -> Gateway {
        Gateway::start_with(|dir| config_text(dir, extra), Clock::System).await
    }

    /// Starts a gateway on the config text `toml(dir)` builds for its store
    /// directory, scheduling by `clock`.
    pub async fn start_with(toml: impl FnOnce(&Path) -> String, clock: Clock) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let toml = toml(dir.path());
        Gateway::launch(toml, clock, dir).await
    }

    /// The directory the gateway owns (its store, and any files a test adds).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The gateway's configuration, loaded as `app::run` loaded it.
    pub fn loaded(&self) -> Loaded {
        config::load_str(&self.toml).unwrap()
    }

    /// Stops the gateway and starts it again on the same config, clock and store.
    pub async fn restart(self) -> Gateway {
        self.stop().await.start().await
    }

    async fn launch(toml: String, clock: Clock, dir: tempfile::TempDir) -> Gateway {
        let loaded = config::load_str(&toml).unwrap_or_else(|e| panic!("{e}"));
        let listeners = app::Listeners::bind(&loaded.config.server).await.unwrap();
        let (public, admin) = listeners.addrs().unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let task = tokio::spawn(app::run_with_clock(
            loaded,
            listeners,
            shutdown,
            clock.clone(),
        ));
        let gw = Gateway {
            public,
            admin,
            toml,
            clock,
            dir,
            stop: Some(stop),
            task: Some(task),
        };
        gw.wait_ready().await;
        gw
    }

    async fn wait_ready(&self) {
        eventually(
            "the gateway to become ready",
            Duration::from_secs(10),
            async || {
                let s =
                    tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(self.admin))
                        .await
                        .ok()?
                        .ok()?;
                drop(s);
                (get(self.admin, "/readyz").await.status == 200).then_some(())
            },
        )
        .await
    }

    /// Waits until the gateway stops by itself; its result, and what can
    /// start it again on the same store.
    pub async fn exited(mut self) -> (anyhow::Result<()>, Stopped) {
        let result = match self.task.take() {
            Some(t) => t.await.unwrap(),
            None => Ok(()),
        };
        self.stop.take();
        let stopped = Stopped {
            toml: self.toml,
            clock: self.clock,
            dir: self.dir,
        };
        (result, stopped)
    }

    /// Stops the gateway and waits until the store is closed; what is left can
    /// start it again on the same store.
    pub async fn stop(mut self) -> Stopped {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
        Stopped {
            toml: self.toml,
            clock: self.clock,
            dir: self.dir,
        }
    }
}

/// A stopped gateway's config, clock and store directory.
pub struct Stopped {
    toml: String,
    clock: Clock,
    dir: tempfile::TempDir,
}

impl Stopped {
    /// The stopped gateway's directory (its store).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the gateway again on the same config, clock and store.
    pub async fn start(self) -> Gateway {
        Gateway::launch(self.toml, self.clock, self.dir).await
    }

    /// Starts it again on the same store with the config `change` makes of
    /// the old one.
    pub async fn start_changed(self, change: impl FnOnce(&str) -> String) -> Gateway {
        let toml = change(&self.toml);
        Gateway::launch(toml, self.clock, self.dir).await
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
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
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
