//! The write-ahead log: a group commit of webhooks is acknowledged once its
//! record is appended to one sequential file and synced (`fdatasync`), instead
//! of once every database page it dirtied is written and synced. The writer
//! commits the same transaction to redb without syncing (`Durability::None`:
//! readers see it at once, the pages stay in redb's write buffer) and makes it
//! durable at the next checkpoint, a synced commit that writes every page the
//! commits since the last one dirtied, once.
//!
//! A record is the *input* of one group commit: its requests (webhooks'
//! events, the Kafka sink's acknowledgements, the HTTP workers' delivery
//! records; see `codec`) and the time the writer stamped them with.
//! Replaying a record runs the same writer code over the same database
//! state, so it writes what the lost commit wrote (the same sequence
//! numbers, dedup claims, envelope changes, audit entries). Batches holding a
//! request whose effect is not a function of its recorded input (admin
//! actions, timers, sweeps, events with routes evaluated against their
//! envelope) are committed and synced as before, which is a checkpoint too.
//!
//! Layout: records one after another from offset 0, each `len: u32`,
//! `crc32: u32` (of the `len` bytes after it), then `seq: u64`, `now_ms: i64`,
//! `count: u32` and the requests. After a checkpoint the next record is written
//! at offset 0 again, over the previous generation: the file is never
//! truncated, so appends overwrite allocated blocks and `fdatasync` writes the
//! data alone, without a journal commit for a growing size.
//!
//! Recovery reads from offset 0: records up to the database's `wal_seq` (its
//! META entry, written by every logged commit) are skipped by their number,
//! the ones after it decoded and applied while their sequence numbers follow
//! one another. It stops at a torn
//! record (short, or a checksum that does not match) or a sequence that does
//! not follow: the rest is an older generation, or a write that never synced,
//! and was never acknowledged.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::StoreError;

mod codec;

pub use codec::{Entry, EntryRef};

/// The log's file name inside `store.path`.
pub const WAL_FILE: &str = "countersign.wal";

/// META key: the last record whose commit the database holds.
pub const WAL_SEQ: &str = "wal_seq";

/// When a checkpoint follows a logged commit (`store.wal_*`).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub checkpoint_interval: Duration,
    /// A checkpoint may come this soon when the writer is idle.
    pub checkpoint_idle: Duration,
    pub max_bytes: u64,
}

/// One group commit's input, read back.
#[derive(Debug)]
pub struct Record {
    pub seq: u64,
    pub now_ms: i64,
    pub entries: Vec<Entry>,
}

/// The open log.
pub struct Log {
    file: File,
    settings: Settings,
    /// Where the next record goes (0 after a checkpoint).
    end: u64,
    /// When the oldest record since the last checkpoint was written.
    first_at: Option<Instant>,
    buf: Vec<u8>,
    /// Set by a failed append: where the record ended is unknown, so no
    /// record may follow it (recovery would stop at it and lose them).
    failed: bool,
}

fn io(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Db(format!("write-ahead log: {what}: {e}"))
}

impl Settings {
    /// For a log that is only replayed (`store.wal = false`).
    pub const OFF: Settings = Settings {
        checkpoint_interval: Duration::MAX,
        checkpoint_idle: Duration::MAX,
        max_bytes: u64::MAX,
    };
}

impl Log {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path, settings: Settings) -> Result<Log, StoreError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(WAL_FILE))
            .map_err(|e| io("open", e))?;
        Ok(Log {
            file,
            settings,
            end: 0,
            first_at: None,
            buf: Vec::with_capacity(64 * 1024),
            failed: false,
        })
    }

    /// The records to replay over a database holding every record up to
    /// `applied` (see [`after`]).
    pub fn after(&self, applied: u64) -> Result<Vec<Record>, StoreError> {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &self.file, &mut bytes).map_err(|e| io("read", e))?;
        after(&bytes, applied)
    }

    /// Appends the record of one group commit and syncs it.
    pub fn append<'a>(
        &mut self,
        seq: u64,
        now_ms: i64,
        entries: impl Iterator<Item = EntryRef<'a>> + Clone,
    ) -> Result<(), StoreError> {
        if self.failed {
            return Err(StoreError::Db(
                "write-ahead log: an earlier append failed; restart to recover".into(),
            ));
        }
        let mut b = std::mem::take(&mut self.buf);
        b.clear();
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&now_ms.to_le_bytes());
        codec::put_u32(&mut b, entries.clone().count());
        for e in entries {
            codec::encode(&mut b, e);
        }
        let len = u32::try_from(b.len() - 8)
            .map_err(|_| StoreError::Db("write-ahead log: a record over 4 GiB".into()))?;
        let crc = crc32fast::hash(&b[8..]);
        b[..4].copy_from_slice(&len.to_le_bytes());
        b[4..8].copy_from_slice(&crc.to_le_bytes());
        let written = self
            .file
            .write_all_at(&b, self.end)
            .and_then(|()| self.file.sync_data());
        self.end += b.len() as u64;
        self.buf = b;
        self.failed = written.is_err();
        written.map_err(|e| io("append", e))?;
        self.first_at.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Whether a checkpoint is due: the log is old or large enough, or,
    /// when the writer has nothing waiting (`idle`), at least
    /// `checkpoint_idle` old.
    pub fn due(&self, idle: bool) -> bool {
        let Some(first) = self.first_at else {
            return false;
        };
        let age = first.elapsed();
        self.end >= self.settings.max_bytes
            || age >= self.settings.checkpoint_interval
            || (idle && age >= self.settings.checkpoint_idle)
    }

    /// Whether records follow the last checkpoint.
    pub fn is_empty(&self) -> bool {
        self.end == 0
    }

    /// After a synced commit: the database holds every record, the next one
    /// goes to offset 0.
    pub fn checkpointed(&mut self) {
        self.end = 0;
        self.first_at = None;
    }
}

/// How many commits the log in `dir` holds beyond a database holding every
/// record up to `applied` (0 without a log), for the offline tools.
pub fn pending(dir: &Path, applied: u64) -> Result<usize, StoreError> {
    match std::fs::read(dir.join(WAL_FILE)) {
        Ok(bytes) => Ok(after(&bytes, applied)?.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io("read", e)),
    }
}

/// The records of `bytes` (a log, in file order) to replay over a database
/// holding every record up to `applied`: those after it while their numbers
/// follow one another, up to the first torn record. Only those are decoded;
/// the ones before are skipped by their number.
fn after(bytes: &[u8], applied: u64) -> Result<Vec<Record>, StoreError> {
    let mut out: Vec<Record> = Vec::new();
    let mut at = 0usize;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        let Some(body) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        if len < 20 || crc32fast::hash(body) != crc {
            break;
        }
        let seq = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        let next = out.last().map_or(applied, |r| r.seq) + 1;
        if out.is_empty() && seq <= applied {
            at += 8 + len;
            continue;
        }
        if seq != next {
            break;
        }
        let record = decode_record(body).ok_or_else(|| {
            StoreError::Db(format!(
                "write-ahead log: the record at byte {at} has a valid checksum and cannot be read (a newer version's log?)"
            ))
        })?;
        out.push(record);
        at += 8 + len;
    }
    Ok(out)
}

fn decode_record(body: &[u8]) -> Option<Record> {
    let mut r = codec::Reader(body);
    let seq = r.u64()?;
    let now_ms = r.u64()? as i64;
    let entries = r.many(codec::decode)?;
    r.0.is_empty().then_some(Record {
        seq,
        now_ms,
        entries,
    })
}

#[cfg(test)]
mod tests;
