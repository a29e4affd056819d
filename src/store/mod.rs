//! The embedded durable store (redb): accepted events, dedup keys, the Kafka
//! outbox, the HTTP delivery queue with its dead letters ([`http`]), and sweeping.
//!
//! All writes go through one writer thread ([`writer`]) that takes whatever is
//! queued (up to `store.max_batch` events) into one transaction and syncs it once:
//! group commit. The dedup check and the event insert happen in that same
//! transaction, so a claim exists exactly when its event is durable, and a failed
//! commit leaves no claim behind. Reads use their own MVCC read transactions.

mod audit;
mod deliveries;
mod envelopes;
mod events;
mod outbox;
mod quarantine;
mod tables;
mod wal;
mod writer;

pub use audit::export::{ExportFilter as AuditFilter, export as audit_export_db};
pub use audit::verify::{
    Opened as AuditStore, VerifyError as AuditVerifyError, open_dir as audit_open_dir,
    verify_db as audit_verify_db, verify_dir as audit_verify_dir,
};
pub use audit::{Actor, AuditFacts, Signing as AuditSigning, WebhookFacts};
pub use deliveries::{
    Attempt, DeadLetter, DeadLetterDetail, DeliveryState, Due, HttpDelivery, HttpOp, Next,
};
pub use envelopes::{
    EnvelopeFilter, EnvelopeOp, EnvelopeOutcome, EnvelopePage, Facts, LateRoute, LogEntry, RouteFn,
    SignerEntry, StreamMsg, Tracking,
};
pub use events::{Claim, NewEvent, Record};
pub use outbox::{Ack, KafkaDelivery, Pending};
pub use quarantine::{Held, HeldEvent, QuarantineOp, Status as QuarantineStatus};

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, ReadableDatabase};
use tokio::sync::{mpsc, oneshot};

use crate::config::StoreConfig;
use crate::time::Clock;
use tokio::sync::Notify;

/// Database file name inside `store.path`.
pub const DB_FILE: &str = "countersign.redb";

/// How many group commits the write-ahead log in `dir` holds that the
/// database (read through `txn`) does not: a gateway stopped without a
/// checkpoint (a crash). The offline tools replay them first (by opening the
/// store with the gateway's config) or refuse to read a partial store.
pub fn wal_pending(
    dir: &std::path::Path,
    txn: &redb::ReadTransaction,
) -> Result<usize, StoreError> {
    let applied = match txn.open_table(tables::META) {
        Ok(meta) => meta.get(wal::WAL_SEQ)?.map_or(0, |g| g.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => 0,
        Err(e) => return Err(e.into()),
    };
    wal::pending(dir, applied)
}

/// What waits for a sink, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    pub count: u64,
    /// When the oldest waiting event was received.
    pub oldest_ms: Option<i64>,
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
    redb::CommitError,
    redb::SetDurabilityError
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
    /// Writes the database refused (I/O errors: a full disk, a failed fsync).
    pub errors: prometheus::IntCounter,
    /// Derived events (`envelope.*`) stored, by kind.
    pub derived_events: prometheus::IntCounterVec,
    /// Events that contradicted their envelope's state (recorded, not applied).
    pub anomalies: prometheus::IntCounter,
    /// Events stored in quarantine (failed their source's checks), by source.
    pub quarantined: prometheus::IntCounterVec,
    /// Envelope changes committed (each one message of the stream).
    pub changes: prometheus::IntCounter,
    /// Envelope timers waiting in the due-time index.
    pub timers_pending: prometheus::IntGauge,
    /// Timers fired, by kind (`reminder`, `overdue`, `escalated`).
    pub timers_fired: prometheus::IntCounterVec,
    /// How late timers fired (after their due time).
    pub timer_lateness: prometheus::Histogram,
    /// Checkpoints of the write-ahead log, their duration, and the records
    /// replayed at open.
    pub wal_checkpoints: prometheus::IntCounter,
    pub wal_checkpoint_seconds: prometheus::Histogram,
    pub wal_replayed: prometheus::IntCounter,
    /// Audit entries appended, checkpoints signed, entries pruned.
    pub audit_entries: prometheus::IntCounter,
    pub audit_checkpoints: prometheus::IntCounter,
    pub audit_pruned: prometheus::IntCounter,
    /// Set by the first such error: redb refuses every later transaction
    /// after one, so the store is failed until the process starts again
    /// (`/readyz` says so, and `app::run` exits non-zero for a restart).
    pub failed: tokio::sync::watch::Sender<Option<String>>,
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
            errors: prometheus::IntCounter::new(
                "store_errors_total",
                "Writes the store's database refused (I/O errors such as a full disk); the first one fails the store and the gateway restarts.",
            )
            .expect("valid counter"),
            derived_events: prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "envelope_derived_events_total",
                    "Derived envelope events (envelope.in_signing, envelope.all_signed, …) stored, by kind.",
                ),
                &["kind"],
            )
            .expect("valid counter"),
            anomalies: prometheus::IntCounter::new(
                "envelope_anomalies_total",
                "Events that contradicted their envelope's state (e.g. completed after cancelled): recorded and emitted as envelope.anomaly, never applied.",
            )
            .expect("valid counter"),
            quarantined: prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "events_quarantined_total",
                    "Authentic events stored in quarantine because they failed their source's plausibility checks (schema, require), by source.",
                ),
                &["source"],
            )
            .expect("valid counter"),
            changes: prometheus::IntCounter::new(
                "envelope_changes_total",
                "Envelope changes committed: state or signer changes and derived events, each one message of /v1/stream.",
            )
            .expect("valid counter"),
            timers_pending: prometheus::IntGauge::new(
                "envelope_timers_pending",
                "Envelope timers (reminders, deadlines, escalations) waiting to fire.",
            )
            .expect("valid gauge"),
            timers_fired: prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "envelope_timers_fired_total",
                    "Envelope timers fired, by kind (reminder, overdue, escalated); manual reminders are not timers.",
                ),
                &["kind"],
            )
            .expect("valid counter"),
            timer_lateness: h(
                "envelope_timer_lateness_seconds",
                "How long after its due time a timer fired (a timer due while the gateway was down fires late, once).",
                exponential_buckets(0.01, 4.0, 12).expect("valid buckets"),
            ),
            wal_checkpoints: prometheus::IntCounter::new(
                "store_wal_checkpoints_total",
                "Checkpoints of the store's write-ahead log: synced commits that write the pages of every logged commit since the last one.",
            )
            .expect("valid counter"),
            wal_checkpoint_seconds: h(
                "store_wal_checkpoint_duration_seconds",
                "Time one checkpoint of the write-ahead log takes (page writes and fsync).",
                exponential_buckets(0.000_1, 2.0, 16).expect("valid buckets"),
            ),
            wal_replayed: prometheus::IntCounter::new(
                "store_wal_replayed_records_total",
                "Write-ahead log records (group commits not yet checkpointed) replayed when the store opened after a crash.",
            )
            .expect("valid counter"),
            audit_entries: prometheus::IntCounter::new(
                "audit_entries_total",
                "Audit log entries appended (one per fact, in the fact's transaction).",
            )
            .expect("valid counter"),
            audit_checkpoints: prometheus::IntCounter::new(
                "audit_checkpoints_total",
                "Signed audit checkpoints written (every audit.checkpoint_every entries, every audit.checkpoint_interval, at shutdown, before an export).",
            )
            .expect("valid counter"),
            audit_pruned: prometheus::IntCounter::new(
                "audit_pruned_total",
                "Audit entries removed past audit.retention (behind a kept, signed checkpoint).",
            )
            .expect("valid counter"),
            failed: tokio::sync::watch::channel(None).0,
        }
    }
}

pub(crate) enum Command {
    Commit {
        events: Vec<NewEvent>,
        reply: oneshot::Sender<Result<Vec<Claim>, StoreError>>,
    },
    Ack {
        acks: Vec<Ack>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Http {
        ops: Vec<HttpOp>,
        /// Who asked (admin actions); `None` for the gateway's own.
        by: Option<Actor>,
        reply: oneshot::Sender<Result<Vec<bool>, StoreError>>,
    },
    Disable {
        endpoint: String,
        disabled: Option<(i64, String)>,
        by: Option<Actor>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Envelope {
        op: Box<EnvelopeOp>,
        by: Option<Actor>,
        reply: oneshot::Sender<Result<EnvelopeOutcome, StoreError>>,
    },
    /// Releases or rejects a held event.
    Quarantine {
        op: Box<QuarantineOp>,
        by: Option<Actor>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Signs a checkpoint of the audit chain's head if entries follow the
    /// last one; answers the last sequence a checkpoint signs.
    Checkpoint {
        reply: oneshot::Sender<Result<Option<u64>, StoreError>>,
    },
    /// Records that the audit log's Kafka copy holds every entry up to `seq`.
    AuditCopied {
        seq: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Sweep {
        now_ms: i64,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
    /// Fires up to `limit` due envelope timers.
    Timers {
        limit: usize,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
    Shutdown,
}

/// Settings the writer needs, copied from config, and the clock it stamps
/// records by.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub clock: Clock,
    pub max_batch: usize,
    pub dedup_ttl_ms: i64,
    pub retention_ms: i64,
    pub sweep_batch: usize,
    /// Envelope tracking; `None` when `envelopes.enabled = false`.
    pub tracking: Option<Tracking>,
    /// The audit log's signing, when it is written.
    pub audit: Option<audit::Signing>,
    /// Webhook batches are logged (`store.wal`), with these checkpoints.
    pub wal: Option<wal::Settings>,
}

struct Inner {
    db: Arc<Database>,
    tx: mpsc::Sender<Command>,
    writer: Mutex<Option<JoinHandle<()>>>,
    hooks: Arc<Hooks>,
    stats: Arc<Stats>,
    /// Signalled after a commit that added outbox entries (wakes the Kafka sink).
    outbox: Arc<Notify>,
    /// Signalled after a commit that appended audit entries (wakes the
    /// audit log's Kafka copy).
    audit_appended: Arc<Notify>,
    /// Bumped after a commit that scheduled HTTP deliveries: a watch, so every
    /// endpoint worker sees it, whether or not it was waiting at that moment.
    http: tokio::sync::watch::Sender<u64>,
    /// Envelope changes as they commit (the stream's live part).
    stream: tokio::sync::broadcast::Sender<Arc<StreamMsg>>,
    tracking: bool,
    /// Whether the audit log is written.
    audit: bool,
    /// The writer's clock (exports stamp their time by it).
    clock: Clock,
}

/// Test hooks of the writer: fail its next commits, or (unit tests only,
/// so release builds take no lock per commit) hold it before its next one.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    pub fail_next: AtomicU32,
    #[cfg(test)]
    pub hold: Mutex<()>,
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
    /// Opens (or creates) the database under `cfg.path` and starts the writer,
    /// which stamps what it records (attempts, acknowledgements) by `clock`.
    pub fn open(cfg: &StoreConfig, clock: Clock) -> Result<Store, StoreError> {
        Store::open_with(cfg, clock, None)
    }

    /// Opens the store with envelope tracking (`None`: off).
    pub fn open_with(
        cfg: &StoreConfig,
        clock: Clock,
        tracking: Option<Tracking>,
    ) -> Result<Store, StoreError> {
        Store::open_full(cfg, clock, tracking, None)
    }

    /// Opens the store with envelope tracking and, with `audit`, the audit
    /// log written in the transactions of the facts it records.
    pub fn open_full(
        cfg: &StoreConfig,
        clock: Clock,
        tracking: Option<Tracking>,
        audit: Option<audit::Signing>,
    ) -> Result<Store, StoreError> {
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
            clock: clock.clone(),
            max_batch: cfg.max_batch,
            dedup_ttl_ms: ms(cfg.dedup_ttl),
            retention_ms: ms(cfg.retention),
            sweep_batch: cfg.sweep_batch,
            tracking: tracking.clone(),
            audit: audit.clone(),
            wal: cfg.wal.then_some(wal::Settings {
                checkpoint_interval: cfg.wal_checkpoint_interval,
                checkpoint_idle: cfg.wal_checkpoint_idle,
                max_bytes: cfg.wal_max_bytes as u64,
            }),
        };
        let buffer = tracking.as_ref().map_or(16, |t| t.stream_buffer.max(1));
        let stream = tokio::sync::broadcast::channel(buffer).0;
        let hooks = Arc::new(Hooks::default());
        let stats = Arc::new(Stats::default());
        let outbox = Arc::new(Notify::new());
        let audit_appended = Arc::new(Notify::new());
        let http = tokio::sync::watch::channel(0u64).0;
        let log = wal::Log::open(&cfg.path, settings.wal.unwrap_or(wal::Settings::OFF))?;
        let mut w = writer::Writer::new(
            (db.clone(), log),
            settings,
            hooks.clone(),
            stats.clone(),
            (outbox.clone(), audit_appended.clone()),
            http.clone(),
            stream.clone(),
        )?;
        let replayed = w.recover()?;
        if replayed > 0 {
            tracing::info!(records = replayed, "replayed the store's write-ahead log");
        }
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| open_err(&e))?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                tx,
                writer: Mutex::new(Some(handle)),
                hooks,
                stats,
                outbox,
                audit_appended,
                http,
                stream,
                tracking: tracking.is_some(),
                audit: audit.is_some(),
                clock,
            }),
        })
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

    /// Changes after a commit that scheduled HTTP deliveries or changed an
    /// endpoint's state.
    pub fn http_notify(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.http.subscribe()
    }

    /// Wakes when a commit added outbox entries.
    pub fn outbox_notify(&self) -> Arc<Notify> {
        self.inner.outbox.clone()
    }

    /// Whether the database answers a read and no write has failed (for
    /// `/readyz`).
    pub fn healthy(&self) -> bool {
        self.inner.stats.failed.borrow().is_none()
            && !self.inner.tx.is_closed()
            && self.inner.db.begin_read().is_ok()
    }

    /// Resolves with the cause once a write has failed the store.
    pub async fn failed(&self) -> String {
        let mut rx = self.inner.stats.failed.subscribe();
        let cause = rx
            .wait_for(Option::is_some)
            .await
            .map(|c| c.clone().unwrap_or_default());
        match cause {
            Ok(cause) => cause,
            Err(_) => std::future::pending().await,
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Makes the next commit fail after its writes and roll back, as a failed
    /// fsync would. For tests of the "a failed store releases its claim" rule.
    #[doc(hidden)]
    pub fn fail_next_commit(&self) {
        self.fail_commits(1);
    }

    /// Makes the next `n` commits fail (a store that keeps failing). For tests.
    #[doc(hidden)]
    pub fn fail_commits(&self, n: u32) {
        self.inner.hooks.fail_next.store(n, Ordering::SeqCst);
    }

    /// Holds the writer before its next group commit until the guard drops
    /// (a store whose commits are slow). For unit tests.
    #[cfg(test)]
    pub fn hold_commits(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .hooks
            .hold
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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
#[cfg(test)]
mod wal_tests;
