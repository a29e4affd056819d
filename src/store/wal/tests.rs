//! The log's records on disk: read back as written, torn and corrupt
//! records ending the log, generations written over each other, and when a
//! checkpoint is due.

use super::*;
use crate::store::envelopes::Facts;
use crate::store::{Ack, Attempt, AuditFacts, HttpOp, NewEvent, Next};

/// One entry of events, as an append takes it.
fn of(events: &[NewEvent]) -> std::iter::Once<EntryRef<'_>> {
    std::iter::once(EntryRef::Events(events))
}

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

/// The records a reopened log in `dir` replays over `applied`.
fn read(dir: &std::path::Path, applied: u64) -> Vec<Record> {
    Log::open(dir, settings()).unwrap().after(applied).unwrap()
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
    let mut log = Log::open(dir.path(), settings()).unwrap();
    assert!(log.after(0).unwrap().is_empty());
    let events: Vec<NewEvent> = (0..4).map(event).collect();
    log.append(7, 42, of(&events)).unwrap();
    log.append(8, 43, of(&events[..1])).unwrap();
    drop(log);
    let read = read(dir.path(), 6);
    assert_eq!(read.len(), 2);
    assert_eq!((read[0].seq, read[0].now_ms, read[1].seq), (7, 42, 8));
    let [Entry::Events(back)] = read[0].entries.as_slice() else {
        panic!("{:?}", read[0]);
    };
    assert_eq!(format!("{back:?}"), format!("{events:?}"));
    // Records the database holds are skipped; a number that does not follow
    // ends the replay.
    let seqs = |applied| -> Vec<u64> {
        super::after(&std::fs::read(dir.path().join(WAL_FILE)).unwrap(), applied)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect()
    };
    assert_eq!(seqs(7), [8]);
    assert_eq!(seqs(8), Vec::<u64>::new());
    assert_eq!(seqs(3), Vec::<u64>::new(), "7 does not follow 3");
}

#[test]
fn a_torn_or_corrupt_record_ends_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), settings()).unwrap();
    let events: Vec<NewEvent> = (0..2).map(event).collect();
    for seq in 1..=3 {
        log.append(seq, 0, of(&events)).unwrap();
    }
    let path = dir.path().join(WAL_FILE);
    let full = std::fs::read(&path).unwrap();
    let one = full.len() / 3;
    // The last record cut short, as a crash mid-write leaves it.
    std::fs::write(&path, &full[..full.len() - 5]).unwrap();
    assert_eq!(read(dir.path(), 0).len(), 2);
    // A flipped byte in the second record: only the first is read.
    let mut flipped = full.clone();
    flipped[one + 30] ^= 1;
    std::fs::write(&path, &flipped).unwrap();
    assert_eq!(read(dir.path(), 0).len(), 1);
}

#[test]
fn a_checkpoint_writes_the_next_record_over_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), settings()).unwrap();
    let events: Vec<NewEvent> = (0..3).map(event).collect();
    log.append(1, 0, of(&events)).unwrap();
    log.append(2, 0, of(&events)).unwrap();
    assert!(!log.is_empty());
    log.checkpointed();
    log.append(3, 0, of(&events[..1])).unwrap();
    drop(log);
    let read = read(dir.path(), 2);
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
    let mut log = Log::open(dir.path(), small).unwrap();
    assert!(!log.due(true));
    log.append(1, 0, of(&[event(0)])).unwrap();
    assert!(log.due(false), "over max_bytes");
    let aged = Settings {
        checkpoint_interval: Duration::ZERO,
        checkpoint_idle: Duration::from_secs(3600),
        max_bytes: u64::MAX,
    };
    let mut log = Log::open(dir.path(), aged).unwrap();
    assert!(!log.due(true), "nothing logged yet");
    log.append(1, 0, of(&[event(0)])).unwrap();
    assert!(log.due(false), "older than the interval");
    let idle = Settings {
        checkpoint_interval: Duration::from_secs(3600),
        checkpoint_idle: Duration::ZERO,
        max_bytes: u64::MAX,
    };
    let mut log = Log::open(dir.path(), idle).unwrap();
    log.append(1, 0, of(&[event(0)])).unwrap();
    assert!(!log.due(false), "busy: not before the interval");
    assert!(log.due(true), "idle: old enough");
    log.checkpointed();
    assert!(!log.due(true));
}

#[test]
fn acknowledgements_and_delivery_records_read_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), settings()).unwrap();
    let acks = vec![
        Ack::Published {
            seq: 3,
            topic: "signatures".into(),
            partition: -1,
            offset: 1 << 40,
        },
        Ack::DeadLettered {
            seq: 4,
            topic: "signatures".into(),
            reason: "too large".into(),
        },
    ];
    let attempt = |status| Attempt {
        at_ms: 1_700_000_000_000,
        status,
        latency_ms: 12,
        error: String::new(),
    };
    let ops = vec![
        HttpOp::Attempted {
            seq: 3,
            endpoint: "crm".into(),
            attempt: attempt(Some(200)),
            next: Next::Delivered,
        },
        HttpOp::Attempted {
            seq: 4,
            endpoint: "crm".into(),
            attempt: attempt(None),
            next: Next::Retry {
                due_ms: 5,
                counts: false,
            },
        },
        HttpOp::Attempted {
            seq: 5,
            endpoint: "crm".into(),
            attempt: attempt(Some(500)),
            next: Next::DeadLetter {
                reason: "500".into(),
            },
        },
        HttpOp::Replay {
            seq: 6,
            endpoint: "crm".into(),
        },
        HttpOp::Discard {
            seq: 7,
            endpoint: "crm".into(),
        },
        HttpOp::Purge {
            seq: 8,
            endpoint: "gone".into(),
        },
    ];
    let events = vec![event(1)];
    let entries = [
        EntryRef::Acks(&acks),
        EntryRef::Events(&events),
        EntryRef::Http(&ops),
    ];
    log.append(1, 9, entries.iter().copied()).unwrap();
    drop(log);
    let read = read(dir.path(), 0);
    let [Entry::Acks(a), Entry::Events(e), Entry::Http(o)] = read[0].entries.as_slice() else {
        panic!("{read:?}");
    };
    assert_eq!((a, o), (&acks, &ops));
    assert_eq!(format!("{e:?}"), format!("{events:?}"));
}
