//! The write-ahead log: a group commit of webhooks is acknowledged once its
//! record is appended to one sequential file and synced (`fdatasync`), instead
//! of once every database page it dirtied is written and synced. The writer
//! commits the same transaction to redb without syncing (`Durability::None`:
//! readers see it at once, the pages stay in redb's write buffer) and makes it
//! durable at the next checkpoint, a synced commit that writes every page the
//! commits since the last one dirtied, once.
//!
//! A record is the *input* of one group commit: its events and the time the
//! writer stamped them with. Replaying a record runs the same writer code over
//! the same database state, so it writes what the lost commit wrote (the same
//! sequence numbers, dedup claims, envelope changes, audit entries). Batches
//! whose effect is not a function of their recorded input (acknowledgements,
//! admin actions, timers, events with routes evaluated against their envelope)
//! are committed and synced as before, which is a checkpoint too.
//!
//! Layout: records one after another from offset 0, each `len: u32`,
//! `crc32: u32` (of the `len` bytes after it), then `seq: u64`, `now_ms: i64`,
//! `count: u32` and the events. After a checkpoint the next record is written
//! at offset 0 again, over the previous generation: the file is never
//! truncated, so appends overwrite allocated blocks and `fdatasync` writes the
//! data alone, without a journal commit for a growing size.
//!
//! Recovery reads from offset 0: records up to the database's `wal_seq` (its
//! META entry, written by every logged commit) are skipped, the ones after it
//! applied while their sequence numbers follow one another. It stops at a torn
//! record (short, or a checksum that does not match) or a sequence that does
//! not follow: the rest is an older generation, or a write that never synced,
//! and was never acknowledged.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::envelopes::Facts;
use super::{AuditFacts, NewEvent, StoreError};

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
    pub events: Vec<NewEvent>,
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
    /// Opens (or creates) the log in `dir` and reads its records, in file
    /// order up to the first torn one.
    pub fn open(dir: &Path, settings: Settings) -> Result<(Log, Vec<Record>), StoreError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(WAL_FILE))
            .map_err(|e| io("open", e))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(|e| io("read", e))?;
        let records = read_records(&bytes)?;
        let log = Log {
            file,
            settings,
            end: 0,
            first_at: None,
            buf: Vec::with_capacity(64 * 1024),
            failed: false,
        };
        Ok((log, records))
    }

    /// Appends the record of one group commit and syncs it.
    pub fn append<'a>(
        &mut self,
        seq: u64,
        now_ms: i64,
        events: impl Iterator<Item = &'a NewEvent> + Clone,
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
        put_u32(&mut b, events.clone().count());
        for e in events {
            encode(&mut b, e);
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

/// Of `records` (in file order), those to replay over a database holding
/// every record up to `applied`: the ones after it while their numbers
/// follow one another.
pub fn to_replay(records: Vec<Record>, applied: u64) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for r in records {
        let next = out.last().map_or(applied, |l| l.seq) + 1;
        if out.is_empty() && r.seq <= applied {
            continue;
        }
        if r.seq != next {
            break;
        }
        out.push(r);
    }
    out
}

/// How many commits the log in `dir` holds beyond a database holding every
/// record up to `applied` (0 without a log), for the offline tools.
pub fn pending(dir: &Path, applied: u64) -> Result<usize, StoreError> {
    match std::fs::read(dir.join(WAL_FILE)) {
        Ok(bytes) => Ok(to_replay(read_records(&bytes)?, applied).len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io("read", e)),
    }
}

/// The records of `bytes` in file order, up to the first torn one.
fn read_records(bytes: &[u8]) -> Result<Vec<Record>, StoreError> {
    let mut out = Vec::new();
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
        let record = decode(body).ok_or_else(|| {
            StoreError::Db(format!(
                "write-ahead log: the record at byte {at} has a valid checksum and cannot be read (a newer version's log?)"
            ))
        })?;
        out.push(record);
        at += 8 + len;
    }
    Ok(out)
}

fn put_u32(b: &mut Vec<u8>, n: usize) {
    b.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_bytes(b: &mut Vec<u8>, s: &[u8]) {
    put_u32(b, s.len());
    b.extend_from_slice(s);
}

fn put_opt(b: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            b.push(1);
            put_bytes(b, s.as_bytes());
        }
        None => b.push(0),
    }
}

fn put_list(b: &mut Vec<u8>, l: &[String]) {
    put_u32(b, l.len());
    for s in l {
        put_bytes(b, s.as_bytes());
    }
}

fn encode(b: &mut Vec<u8>, e: &NewEvent) {
    put_bytes(b, e.source.as_bytes());
    put_bytes(b, e.id.as_bytes());
    b.extend_from_slice(&e.received_ms.to_le_bytes());
    put_bytes(b, &e.json);
    put_list(b, &e.topics);
    put_list(b, &e.endpoints);
    put_bytes(b, e.envelope.as_bytes());
    put_opt(b, e.traceparent.as_deref());
    b.push(u8::from(e.held));
    match &e.facts {
        Some(f) => {
            b.push(1);
            put_bytes(b, f.envelope_id.as_bytes());
            put_bytes(b, f.provider.as_bytes());
            let kind = serde_json::to_string(&f.kind).expect("a kind serializes");
            put_bytes(b, kind.as_bytes());
            match &f.signer {
                Some(s) => {
                    b.push(1);
                    for field in [&s.id, &s.email, &s.name, &s.role] {
                        put_opt(b, field.as_deref());
                    }
                }
                None => b.push(0),
            }
            put_opt(b, f.occurred_at.as_deref());
            put_bytes(b, f.received_at.as_bytes());
        }
        None => b.push(0),
    }
    match &e.audit {
        Some(a) => {
            b.push(1);
            let (head, tail) = a.parts();
            put_bytes(b, head);
            put_bytes(b, tail);
        }
        None => b.push(0),
    }
}

/// Reads what [`encode`] wrote; `None` on anything malformed.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()?;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    fn opt(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.string()?)),
            _ => None,
        }
    }
    fn list(&mut self) -> Option<Vec<String>> {
        let n = self.u32()?;
        (0..n).map(|_| self.string()).collect()
    }
    fn flag(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

fn decode(body: &[u8]) -> Option<Record> {
    let mut r = Reader(body);
    let seq = r.u64()?;
    let now_ms = r.u64()? as i64;
    let count = r.u32()?;
    let mut events = Vec::with_capacity(count.min(body.len()));
    for _ in 0..count {
        events.push(decode_event(&mut r)?);
    }
    r.0.is_empty().then_some(Record {
        seq,
        now_ms,
        events,
    })
}

fn decode_event(r: &mut Reader) -> Option<NewEvent> {
    let source = r.string()?;
    let id = r.string()?;
    let received_ms = r.u64()? as i64;
    let json = r.bytes()?.to_vec();
    let topics = r.list()?;
    let endpoints = r.list()?;
    let envelope = r.string()?;
    let traceparent = r.opt()?;
    let held = r.flag()?;
    let facts = match r.flag()? {
        false => None,
        true => Some(Facts {
            envelope_id: r.string()?,
            provider: r.string()?,
            kind: serde_json::from_slice(r.bytes()?).ok()?,
            signer: match r.flag()? {
                false => None,
                true => Some(crate::event::Signer {
                    id: r.opt()?,
                    email: r.opt()?,
                    name: r.opt()?,
                    role: r.opt()?,
                }),
            },
            occurred_at: r.opt()?,
            received_at: r.string()?,
            late_route: None,
        }),
    };
    let audit = match r.flag()? {
        false => None,
        true => {
            let head = r.bytes()?.to_vec();
            Some(AuditFacts::from_parts(head, r.bytes()?.to_vec()))
        }
    };
    Some(NewEvent {
        source,
        id,
        received_ms,
        json,
        topics,
        endpoints,
        envelope,
        traceparent,
        facts,
        audit,
        held,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> NewEvent {
        NewEvent {
            source: "docusign".into(),
            id: format!("evt_{n}"),
            received_ms: 1_700_000_000_000 + i64::from(n),
            json: format!("{{\"n\":{n}}}").into_bytes(),
            topics: vec!["signatures".into()],
            endpoints: vec!["billing".into(), "crm".into()],
            envelope: "env_1".into(),
            traceparent: n.is_multiple_of(2).then(|| "00-abc-def-01".into()),
            facts: Some(Facts {
                envelope_id: "env_1".into(),
                provider: "docusign".into(),
                kind: crate::event::Kind::SignerCompleted,
                signer: Some(crate::event::Signer {
                    email: Some("a@example.com".into()),
                    ..Default::default()
                }),
                occurred_at: None,
                received_at: "2026-12-01T00:00:00Z".into(),
                late_route: None,
            }),
            audit: Some(AuditFacts::from_parts(
                b"\"a\":1".to_vec(),
                b"\"z\":2".to_vec(),
            )),
            held: n == 3,
        }
    }

    fn settings() -> Settings {
        Settings {
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_idle: Duration::from_secs(1),
            max_bytes: 1 << 20,
        }
    }

    #[test]
    fn records_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, none) = Log::open(dir.path(), settings()).unwrap();
        assert!(none.is_empty());
        let events: Vec<NewEvent> = (0..4).map(event).collect();
        log.append(7, 42, events.iter()).unwrap();
        log.append(8, 43, events[..1].iter()).unwrap();
        drop(log);
        let (_, read) = Log::open(dir.path(), settings()).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!((read[0].seq, read[0].now_ms, read[1].seq), (7, 42, 8));
        for (a, b) in read[0].events.iter().zip(&events) {
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
    }

    #[test]
    fn a_torn_or_corrupt_record_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), settings()).unwrap();
        let events: Vec<NewEvent> = (0..2).map(event).collect();
        for seq in 1..=3 {
            log.append(seq, 0, events.iter()).unwrap();
        }
        let path = dir.path().join(WAL_FILE);
        let full = std::fs::read(&path).unwrap();
        let one = full.len() / 3;
        // The last record cut short, as a crash mid-write leaves it.
        std::fs::write(&path, &full[..full.len() - 5]).unwrap();
        assert_eq!(Log::open(dir.path(), settings()).unwrap().1.len(), 2);
        // A flipped byte in the second record: only the first is read.
        let mut flipped = full.clone();
        flipped[one + 30] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert_eq!(Log::open(dir.path(), settings()).unwrap().1.len(), 1);
    }

    #[test]
    fn a_checkpoint_writes_the_next_record_over_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), settings()).unwrap();
        let events: Vec<NewEvent> = (0..3).map(event).collect();
        log.append(1, 0, events.iter()).unwrap();
        log.append(2, 0, events.iter()).unwrap();
        assert!(!log.is_empty());
        log.checkpointed();
        log.append(3, 0, events[..1].iter()).unwrap();
        drop(log);
        let (_, read) = Log::open(dir.path(), settings()).unwrap();
        // Record 3 over record 1's start; record 1's tail does not parse as
        // a record, so the old generation is not read past it.
        assert_eq!(read.first().map(|r| r.seq), Some(3));
        assert!(read.iter().all(|r| r.seq == 3));
    }

    #[test]
    fn a_checkpoint_is_due_by_size_or_age_and_sooner_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let small = Settings {
            checkpoint_interval: Duration::from_secs(3600),
            checkpoint_idle: Duration::from_secs(3600),
            max_bytes: 100,
        };
        let (mut log, _) = Log::open(dir.path(), small).unwrap();
        assert!(!log.due(true));
        log.append(1, 0, std::iter::once(&event(0))).unwrap();
        assert!(log.due(false), "over max_bytes");
        let aged = Settings {
            checkpoint_interval: Duration::ZERO,
            checkpoint_idle: Duration::from_secs(3600),
            max_bytes: u64::MAX,
        };
        let (mut log, _) = Log::open(dir.path(), aged).unwrap();
        assert!(!log.due(true), "nothing logged yet");
        log.append(1, 0, std::iter::once(&event(0))).unwrap();
        assert!(log.due(false), "older than the interval");
        let idle = Settings {
            checkpoint_interval: Duration::from_secs(3600),
            checkpoint_idle: Duration::ZERO,
            max_bytes: u64::MAX,
        };
        let (mut log, _) = Log::open(dir.path(), idle).unwrap();
        log.append(1, 0, std::iter::once(&event(0))).unwrap();
        assert!(!log.due(false), "busy: not before the interval");
        assert!(log.due(true), "idle: old enough");
        log.checkpointed();
        assert!(!log.due(true));
    }
}
