//! The embedded durable store (redb): accepted events, dedup keys, the Kafka
//! outbox, the HTTP delivery queue with its dead letters ([`http`]), and sweeping.
//!
//! All writes go through one writer thread ([`writer`]) that takes whatever is
//! queued (up to `store.max_batch` events) into one transaction and syncs it once:
//! group commit. The dedup check and the event insert happen in that same
//! transaction, so a claim exists exactly when its event is durable, and a failed
//! commit leaves no claim behind. Reads use their own MVCC read transactions.

mod http;
mod tables;
mod writer;

pub use http::{
    Attempt, DeadLetter, Delivery as HttpDelivery, Due, HttpOp, Next, State as HttpState,
};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use tokio::sync::{mpsc, oneshot};

use crate::config::StoreConfig;
use tables::{EVENTS, IDS, KAFKA_DONE, KAFKA_QUEUE, TRACE};
use tokio::sync::Notify;

/// Database file name inside `store.path`.
pub const DB_FILE: &str = "countersign.redb";

/// An event ready to be stored: its dedup key and its serialized JSON.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub source: String,
    pub id: String,
    pub received_ms: i64,
    pub json: Vec<u8>,
    /// Kafka topics to publish to (the outbox entries written with the event).
    pub topics: Vec<String>,
    /// HTTP endpoints to deliver to (queued with the event).
    pub endpoints: Vec<String>,
    /// Deliveries with the same envelope go to an endpoint in order.
    pub envelope: String,
    /// The webhook's W3C `traceparent`, continued by its deliveries.
    pub traceparent: Option<String>,
}

/// A Kafka message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub seq: u64,
    pub topic: String,
    pub received_ms: i64,
    /// The trace the webhook was taken in, continued by the message.
    pub traceparent: Option<String>,
    pub json: Vec<u8>,
}

/// What waits for a sink, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    pub count: u64,
    /// When the oldest waiting event was received.
    pub oldest_ms: Option<i64>,
}

/// What became of a Kafka message; removes it from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    Published {
        seq: u64,
        topic: String,
        partition: i32,
        offset: i64,
    },
    DeadLettered {
        seq: u64,
        topic: String,
        reason: String,
    },
}

impl Ack {
    fn key(&self) -> (u64, &str) {
        match self {
            Ack::Published { seq, topic, .. } | Ack::DeadLettered { seq, topic, .. } => {
                (*seq, topic)
            }
        }
    }
}

/// A Kafka delivery of an event, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Pending {
        topic: String,
    },
    Published {
        topic: String,
        partition: i32,
        offset: i64,
        at_ms: i64,
    },
    DeadLettered {
        topic: String,
        reason: String,
        at_ms: i64,
    },
}

/// What happened to one event of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Durably stored under this sequence number.
    Stored { seq: u64 },
    /// Its (source, id) was seen within the dedup window; the original's sequence.
    Duplicate { seq: u64 },
}

/// A stored event as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub received_ms: i64,
    pub source: String,
    pub id: String,
    pub json: Vec<u8>,
}

/// Store failures. Clone, because every waiter of a failed batch gets the error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store queue is full")]
    Overloaded,
    #[error("store is shut down")]
    Closed,
    #[error("commit failed (injected)")]
    Injected,
    #[error("database: {0}")]
    Db(String),
    #[error("cannot open store at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.to_string()) }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Counters for group commit and sweeping (the admin API's `/v1/stats`), and
/// the commit histograms `/metrics` registers.
#[derive(Debug)]
pub struct Stats {
    pub commits: AtomicU64,
    pub events_stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub largest_batch: AtomicU64,
    pub events_swept: AtomicU64,
    /// Time one group commit takes, writes and fsync.
    pub commit_seconds: prometheus::Histogram,
    /// Requests (events, acks, delivery records) one group commit takes.
    pub commit_batch: prometheus::Histogram,
}

impl Default for Stats {
    fn default() -> Self {
        use prometheus::{Histogram, HistogramOpts, exponential_buckets};
        let h = |name: &str, help: &str, buckets: Vec<f64>| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid histogram")
        };
        Stats {
            commits: AtomicU64::new(0),
            events_stored: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            largest_batch: AtomicU64::new(0),
            events_swept: AtomicU64::new(0),
            commit_seconds: h(
                "store_commit_duration_seconds",
                "Time one group commit of the store takes, fsync included.",
                exponential_buckets(0.000_1, 2.0, 16).expect("valid buckets"),
            ),
            commit_batch: h(
                "store_commit_batch_size",
                "Requests one group commit of the store takes.",
                exponential_buckets(1.0, 2.0, 14).expect("valid buckets"),
            ),
        }
    }
}

pub(crate) enum Command {
    Commit {
        events: Vec<NewEvent>,
        reply: oneshot::Sender<Result<Vec<Outcome>, StoreError>>,
    },
    Ack {
        acks: Vec<Ack>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Http {
        ops: Vec<HttpOp>,
        reply: oneshot::Sender<Result<Vec<bool>, StoreError>>,
    },
    Disable {
        endpoint: String,
        disabled: Option<(i64, String)>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Sweep {
        now_ms: i64,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
    Shutdown,
}

/// Settings the writer needs, copied from config.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub max_batch: usize,
    pub dedup_ttl_ms: i64,
    pub retention_ms: i64,
    pub sweep_batch: usize,
}

struct Inner {
    db: Arc<Database>,
    tx: mpsc::Sender<Command>,
    writer: Mutex<Option<JoinHandle<()>>>,
    fail_next_commit: Arc<AtomicBool>,
    stats: Arc<Stats>,
    /// Signalled after a commit that added outbox entries (wakes the Kafka sink).
    outbox: Arc<Notify>,
    /// Bumped after a commit that scheduled HTTP deliveries: a watch, so every
    /// endpoint worker sees it, whether or not it was waiting at that moment.
    http: tokio::sync::watch::Sender<u64>,
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl Store {
    /// Opens (or creates) the database under `cfg.path` and starts the writer.
    pub fn open(cfg: &StoreConfig) -> Result<Store, StoreError> {
        let open_err = |e: &dyn std::fmt::Display| StoreError::Open {
            path: cfg.path.clone(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(&cfg.path).map_err(|e| open_err(&e))?;
        let db = Arc::new(
            Database::builder()
                .set_cache_size(cfg.cache_bytes)
                .create(cfg.path.join(DB_FILE))
                .map_err(|e| open_err(&e))?,
        );
        tables::create_all(&db)?;
        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        let settings = Settings {
            max_batch: cfg.max_batch,
            dedup_ttl_ms: ms(cfg.dedup_ttl),
            retention_ms: ms(cfg.retention),
            sweep_batch: cfg.sweep_batch,
        };
        let fail_next_commit = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let outbox = Arc::new(Notify::new());
        let http = tokio::sync::watch::channel(0u64).0;
        let w = writer::Writer::new(
            db.clone(),
            settings,
            fail_next_commit.clone(),
            stats.clone(),
            outbox.clone(),
            http.clone(),
        )?;
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| open_err(&e))?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                tx,
                writer: Mutex::new(Some(handle)),
                fail_next_commit,
                stats,
                outbox,
                http,
            }),
        })
    }

    /// Stores `events` durably (fsync) unless their keys were seen; returns one
    /// outcome per event. Fails fast with `Overloaded` when the queue is full.
    pub async fn commit(&self, events: Vec<NewEvent>) -> Result<Vec<Outcome>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .try_send(Command::Commit { events, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Records what became of Kafka messages and removes them from the outbox.
    /// Acks share group commits with incoming events.
    pub async fn ack(&self, acks: Vec<Ack>) -> Result<(), StoreError> {
        self.call(|reply| Command::Ack { acks, reply }).await
    }

    /// Queues a command for the writer (waiting for room) and awaits its reply.
    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(command(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` (reads: redb reads are synchronous) on the blocking pool, off
    /// the async workers.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .unwrap_or_else(|e| Err(StoreError::Db(e.to_string())))
    }

    /// Outbox entries after `after` (exclusive), oldest first, at most `limit`.
    pub fn pending(
        &self,
        after: Option<(u64, &str)>,
        limit: usize,
    ) -> Result<Vec<Pending>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let queue = txn.open_table(KAFKA_QUEUE)?;
        let events = txn.open_table(EVENTS)?;
        let trace = txn.open_table(TRACE)?;
        let range = match after {
            Some(k) => queue.range(k..)?,
            None => queue.range::<(u64, &str)>(..)?,
        };
        let mut out = Vec::new();
        for entry in range {
            let (k, _) = entry?;
            let (seq, topic) = k.value();
            if after == Some((seq, topic)) {
                continue;
            }
            if out.len() == limit {
                break;
            }
            if let Some(v) = events.get(seq)? {
                out.push(Pending {
                    seq,
                    topic: topic.to_owned(),
                    received_ms: v.value().0,
                    traceparent: trace.get(seq)?.map(|t| t.value().to_owned()),
                    json: v.value().3.to_vec(),
                });
            }
        }
        Ok(out)
    }

    /// Kafka messages waiting in the outbox and when the oldest was received.
    pub fn kafka_backlog(&self) -> Result<Backlog, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let queue = txn.open_table(KAFKA_QUEUE)?;
        let count = queue.len()?;
        let oldest_ms = match queue.first()? {
            Some((k, _)) => txn
                .open_table(EVENTS)?
                .get(k.value().0)?
                .map(|e| e.value().0),
            None => None,
        };
        Ok(Backlog { count, oldest_ms })
    }

    /// How many Kafka messages wait in the outbox.
    pub fn pending_count(&self) -> Result<u64, StoreError> {
        let txn = self.inner.db.begin_read()?;
        Ok(txn.open_table(KAFKA_QUEUE)?.len()?)
    }

    /// The Kafka deliveries of event `seq`.
    pub fn deliveries(&self, seq: u64) -> Result<Vec<Delivery>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let mut out = Vec::new();
        for entry in txn
            .open_table(KAFKA_QUEUE)?
            .range((seq, "")..(seq + 1, ""))?
        {
            let (k, _) = entry?;
            out.push(Delivery::Pending {
                topic: k.value().1.to_owned(),
            });
        }
        for entry in txn
            .open_table(KAFKA_DONE)?
            .range((seq, "")..(seq + 1, ""))?
        {
            let (k, v) = entry?;
            let topic = k.value().1.to_owned();
            let (status, partition, offset, at_ms, reason) = v.value();
            out.push(match status {
                0 => Delivery::Published {
                    topic,
                    partition,
                    offset,
                    at_ms,
                },
                _ => Delivery::DeadLettered {
                    topic,
                    reason: reason.to_owned(),
                    at_ms,
                },
            });
        }
        Ok(out)
    }

    /// Changes after a commit that scheduled HTTP deliveries or changed an
    /// endpoint's state.
    pub fn http_notify(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.http.subscribe()
    }

    /// Wakes when a commit added outbox entries.
    pub fn outbox_notify(&self) -> Arc<Notify> {
        self.inner.outbox.clone()
    }

    /// Deletes events past retention (with their id entries and delivery
    /// records), at most `store.sweep_batch`; returns how many went.
    pub async fn sweep(&self, now_ms: i64) -> Result<usize, StoreError> {
        self.call(|reply| Command::Sweep { now_ms, reply }).await
    }

    /// Events with this id (one per source that used it), oldest first.
    pub fn get(&self, id: &str) -> Result<Vec<Record>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let ids = txn.open_table(IDS)?;
        let events = txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        for entry in ids.range((id, "")..)? {
            let (k, v) = entry?;
            if k.value().0 != id {
                break;
            }
            if let Some(e) = events.get(v.value().0)? {
                out.push(tables::record(v.value().0, e.value()));
            }
        }
        Ok(out)
    }

    /// The newest `limit` events, optionally only those older than `before`.
    pub fn list(&self, limit: usize, before: Option<u64>) -> Result<Vec<Record>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let range = events.range(..before.unwrap_or(u64::MAX))?;
        let mut out = Vec::with_capacity(limit.min(1024));
        for entry in range.rev().take(limit) {
            let (seq, v) = entry?;
            out.push(tables::record(seq.value(), v.value()));
        }
        Ok(out)
    }

    /// Whether the database answers a read (for `/readyz`).
    pub fn healthy(&self) -> bool {
        !self.inner.tx.is_closed() && self.inner.db.begin_read().is_ok()
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Makes the next commit fail after its writes and roll back, as a failed
    /// fsync would. For tests of the "a failed store releases its claim" rule.
    #[doc(hidden)]
    pub fn fail_next_commit(&self) {
        self.inner.fail_next_commit.store(true, Ordering::SeqCst);
    }

    /// Finishes what is queued, stops the writer and waits for it.
    pub async fn close(&self) {
        let _ = self.inner.tx.send(Command::Shutdown).await;
        let handle = self
            .inner
            .writer
            .lock()
            .map(|mut h| h.take())
            .ok()
            .flatten();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

#[cfg(test)]
mod tests;
