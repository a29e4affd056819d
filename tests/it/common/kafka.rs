//! A real Kafka-protocol broker for tests (tansu, started per test on a free
//! loopback port) and a consumer that reads topics back by assigning partitions.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

pub const PARTITIONS: i32 = 3;

/// The tansu binary: `$TANSU`, else `tansu` on the PATH, else `~/.cargo/bin/tansu`.
fn tansu() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = Path::new(&home).join(".cargo/bin/tansu");
    if cargo_bin.exists() {
        cargo_bin
    } else {
        "tansu".into()
    }
}

/// A loopback port free now (a broker, or a gateway restarted on it, binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the broker keeps its data.
#[derive(Clone)]
pub enum Storage {
    Memory,
    /// SQLite under this directory, so data survives a broker restart.
    Sqlite(PathBuf),
}

pub struct Broker {
    pub port: u16,
    storage: Storage,
    child: Option<Child>,
}

impl Broker {
    pub fn start(storage: Storage) -> Broker {
        let mut b = Broker {
            port: free_port(),
            storage,
            child: None,
        };
        b.spawn();
        b
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let (engine, dir) = match &self.storage {
            Storage::Memory => ("memory://tansu/".to_owned(), std::env::temp_dir()),
            Storage::Sqlite(dir) => ("sqlite://tansu.db".to_owned(), dir.clone()),
        };
        let child = Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                &engine,
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tansu ({e}); scripts/test.sh installs it"));
        self.child = Some(child);
        let addr: SocketAddr = self.addr().parse().unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < until, "tansu did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn create_topic(&self, name: &str) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(tansu())
                .args([
                    "topic",
                    "create",
                    "--broker",
                    &format!("tcp://127.0.0.1:{}", self.port),
                    "--partitions",
                    &PARTITIONS.to_string(),
                    name,
                ])
                .output()
                .expect("run tansu topic create");
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < until,
                "cannot create topic {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One consumed message.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub value: serde_json::Value,
    pub headers: Vec<(String, String)>,
}

impl Consumed {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `topic` from the beginning until `expected` messages arrived or
/// `timeout` passed (then returns what it has).
pub fn consume(broker: &str, topic: &str, expected: usize, timeout: Duration) -> Vec<Consumed> {
    consume_until(broker, topic, |got| got.len() >= expected, timeout)
}

/// Reads `topic` from the beginning until `done` says so or `timeout` passed.
pub fn consume_until(
    broker: &str,
    topic: &str,
    done: impl Fn(&[Consumed]) -> bool,
    timeout: Duration,
) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", "countersign-tests")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let until = Instant::now() + timeout;
    while !done(&out) && Instant::now() < until {
        let Some(r) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let Ok(m) = r else { continue };
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|x| {
                        (
                            x.key.to_owned(),
                            x.value
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                                .unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Consumed {
            partition: m.partition(),
            offset: m.offset(),
            key: m
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default(),
            value: serde_json::from_slice(m.payload().unwrap_or_default())
                .unwrap_or(serde_json::Value::Null),
            headers,
        });
    }
    out
}
