//! The write-ahead log under crashes: the writer stopped where it is (as a
//! `kill -9` stops it: no checkpoint, nothing flushed), then the store
//! reopened on the same files. Logged commits come back from the log alone;
//! so do the sinks' acknowledgements and delivery records; a torn last
//! record, a checkpoint the log has not yet been written over, and a new
//! generation written over an old one are each recovered exactly; and replay
//! writes what the lost commits wrote, byte for byte.

use std::path::{Path, PathBuf};
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable};

use super::envelopes::{ENVELOPE_LOG, ENVELOPES};
use super::tables::{EVENTS, IDS};
use super::wal::WAL_FILE;
use super::*;
use crate::config::StoreConfig;
use crate::event::Kind;

fn cfg(dir: &Path, interval: Duration) -> StoreConfig {
    StoreConfig {
        path: dir.to_path_buf(),
        wal_checkpoint_interval: interval,
        wal_checkpoint_idle: interval,
        ..StoreConfig::default()
    }
}

/// Checkpoints only at open, at shutdown, and when something else syncs.
const NEVER: Duration = Duration::from_secs(3600);

fn ev(id: &str) -> NewEvent {
    NewEvent {
        source: "a".into(),
        id: id.into(),
        received_ms: 1_000,
        json: format!("{{\"id\":\"{id}\"}}").into_bytes(),
        topics: vec!["signatures".into()],
        endpoints: Vec::new(),
        envelope: id.into(),
        traceparent: None,
        audit: None,
        held: false,
        facts: None,
    }
}

/// In a child process run by [`crash`]: the directory and the phase to run.
fn child() -> Option<(PathBuf, u32)> {
    let dir = std::env::var_os("COUNTERSIGN_WAL_CRASH_DIR")?;
    let phase = std::env::var("COUNTERSIGN_WAL_CRASH_PHASE").ok()?;
    Some((PathBuf::from(dir), phase.parse().ok()?))
}

/// Runs this test again in a child process that does `phase` of it in `dir`
/// and then aborts: a crash (no destructor runs, no checkpoint, redb's
/// buffered pages are lost), as `kill -9` leaves the files.
fn crash(test: &str, dir: &Path, phase: u32) {
    use std::os::unix::process::ExitStatusExt;
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &format!("store::wal_tests::{test}"),
            "--nocapture",
        ])
        .env("COUNTERSIGN_WAL_CRASH_DIR", dir)
        .env("COUNTERSIGN_WAL_CRASH_PHASE", phase.to_string())
        .status()
        .unwrap();
    // SIGABRT: the phase ran to its end (a failed assertion exits 101).
    assert_eq!(
        status.signal(),
        Some(6),
        "phase {phase} of {test}: {status}"
    );
}

/// Ends a child's phase: the process dies where it is.
fn die() -> ! {
    std::process::abort()
}

/// Events the database file holds by itself (no replay): (seq, id).
fn on_disk(dir: &Path) -> Vec<(u64, String)> {
    let db = redb::Database::open(dir.join(DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(EVENTS).unwrap();
    t.iter()
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.value(), v.value().2.to_owned())
        })
        .collect()
}

async fn commit_batches(s: &Store, batches: &[&[&str]]) {
    for b in batches {
        let out = s.commit(b.iter().map(|id| ev(id)).collect()).await.unwrap();
        assert!(out.iter().all(|c| matches!(c, Claim::Stored { .. })));
    }
}

#[tokio::test]
async fn acknowledged_commits_come_back_from_the_log_after_a_crash() {
    const TEST: &str = "acknowledged_commits_come_back_from_the_log_after_a_crash";
    if let Some((dir, _)) = child() {
        let s = Store::open(&cfg(&dir, NEVER), Clock::System).unwrap();
        commit_batches(&s, &[&["1", "2"], &["3"], &["4", "5", "6"]]).await;
        die();
    }
    let dir = tempfile::tempdir().unwrap();
    crash(TEST, dir.path(), 1);
    // The database file alone lost them (they were never checkpointed) ...
    assert_eq!(on_disk(dir.path()), Vec::new());
    // ... and the log brings every one back, with its number and its claim.
    let s = Store::open(&cfg(dir.path(), NEVER), Clock::System).unwrap();
    assert_eq!(s.stats().wal_replayed.get(), 3);
    for (seq, id) in (1..=6).zip(["1", "2", "3", "4", "5", "6"]) {
        let got = s.get(id).unwrap();
        assert_eq!((got.len(), got[0].seq), (1, seq), "{id}");
    }
    let again = s.commit(vec![ev("3"), ev("7")]).await.unwrap();
    assert_eq!(
        again,
        [Claim::Duplicate { seq: 3 }, Claim::Stored { seq: 7 }]
    );
    // The Kafka outbox came back with them.
    assert_eq!(s.kafka_backlog().unwrap().count, 7);
    s.close().await;
    // A clean stop checkpoints: the next open replays nothing.
    drop(s);
    assert_eq!(on_disk(dir.path()).len(), 7);
    let s = Store::open(&cfg(dir.path(), NEVER), Clock::System).unwrap();
    assert_eq!(s.stats().wal_replayed.get(), 0);
    s.close().await;
}

#[tokio::test]
async fn a_torn_last_record_is_dropped_and_the_rest_replayed() {
    const TEST: &str = "a_torn_last_record_is_dropped_and_the_rest_replayed";
    if let Some((dir, phase)) = child() {
        let s = Store::open(&cfg(&dir, NEVER), Clock::System).unwrap();
        if phase == 1 {
            commit_batches(&s, &[&["1"], &["2"], &["3"]]).await;
        } else {
            assert_eq!(s.stats().wal_replayed.get(), 0);
            // Its number is free again, and the log goes on after the replay.
            let out = s.commit(vec![ev("3")]).await.unwrap();
            assert_eq!(out, [Claim::Stored { seq: 3 }]);
        }
        die();
    }
    let dir = tempfile::tempdir().unwrap();
    crash(TEST, dir.path(), 1);
    // The crash hit while the last record was being written.
    let path = dir.path().join(WAL_FILE);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let s = Store::open(&cfg(dir.path(), NEVER), Clock::System).unwrap();
    assert_eq!(s.stats().wal_replayed.get(), 2);
    assert_eq!(s.get("2").unwrap()[0].seq, 2);
    assert!(s.get("3").unwrap().is_empty());
    s.close().await;
    drop(s);
    crash(TEST, dir.path(), 2);
    let s = Store::open(&cfg(dir.path(), NEVER), Clock::System).unwrap();
    assert_eq!(s.stats().wal_replayed.get(), 1);
    assert_eq!(s.get("3").unwrap()[0].seq, 3);
    s.close().await;
}

#[tokio::test]
async fn records_a_checkpoint_holds_are_not_replayed_again() {
    const TEST: &str = "records_a_checkpoint_holds_are_not_replayed_again";
    if let Some((dir, _)) = child() {
        // Every logged commit is followed by a checkpoint; the log is
        // written over from offset 0 by the next record, not truncated.
        let s = Store::open(&cfg(&dir, Duration::ZERO), Clock::System).unwrap();
        commit_batches(&s, &[&["1", "2"], &["3"]]).await;
        // The checkpoint follows the answer.
        while s.stats().wal_checkpoints.get() < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        die();
    }
    let dir = tempfile::tempdir().unwrap();
    crash(TEST, dir.path(), 1);
    // The crash came after the checkpoint: the file still holds record 2.
    assert!(std::fs::metadata(dir.path().join(WAL_FILE)).unwrap().len() > 0);
    assert_eq!(on_disk(dir.path()).len(), 3);
    let s = Store::open(&cfg(dir.path(), NEVER), Clock::System).unwrap();
    assert_eq!(s.stats().wal_replayed.get(), 0);
    let out = s.commit(vec![ev("4")]).await.unwrap();
    assert_eq!(out, [Claim::Stored { seq: 4 }]);
    s.close().await;
}

#[tokio::test]
async fn a_new_generation_over_an_old_one_replays_only_the_new() {
    const TEST: &str = "a_new_generation_over_an_old_one_replays_only_the_new";
    if let Some((dir, _)) = child() {
        let s = Store::open(&cfg(&dir, NEVER), Clock::System).unwrap();
        // A generation of three long records, then a synced commit (a
        // sweep) checkpoints them ...
        let long: Vec<String> = (0..30).map(|i| format!("old-{i}")).collect();
        for chunk in long.chunks(10) {
            let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
            commit_batches(&s, &[&ids]).await;
        }
        s.sweep(0).await.unwrap();
        // ... and one short record is written over the first.
        commit_batches(&s, &[&["new"]]).await;
        die();
    }
    let dir = tempfile::tempdir().unwrap();
    crash(TEST, dir.path(), 1);
    assert_eq!(on_disk(dir.path()).len(), 30);
    let s = Store::open(&cfg(dir.path(), NEVER), Clock::System).unwrap();
    assert_eq!(s.stats().wal_replayed.get(), 1);
    assert_eq!(s.get("new").unwrap()[0].seq, 31);
    assert_eq!(s.get("old-29").unwrap().len(), 1);
    s.close().await;
    drop(s);
    assert_eq!(on_disk(dir.path()).len(), 31);
}

#[tokio::test]
async fn logged_acknowledgements_and_delivery_records_come_back() {
    const TEST: &str = "logged_acknowledgements_and_delivery_records_come_back";
    if let Some((dir, _)) = child() {
        let s = Store::open(&cfg(&dir, NEVER), Clock::System).unwrap();
        let mut e = ev("1");
        e.endpoints = vec!["crm".into()];
        s.commit(vec![e, ev("2")]).await.unwrap();
        // The Kafka sink's acknowledgement and the HTTP worker's record of
        // a delivered attempt: both logged, neither checkpointed.
        s.ack(vec![Ack::Published {
            seq: 1,
            topic: "signatures".into(),
            partition: 0,
            offset: 7,
        }])
        .await
        .unwrap();
        let done = s
            .http(vec![HttpOp::Attempted {
                seq: 1,
                endpoint: "crm".into(),
                attempt: Attempt {
                    at_ms: 2_000,
                    status: Some(200),
                    latency_ms: 3,
                    error: String::new(),
                },
                next: Next::Delivered,
            }])
            .await
            .unwrap();
        assert_eq!(done, [true]);
        assert_eq!(s.stats().wal_checkpoints.get(), 0);
        die();
    }
    let dir = tempfile::tempdir().unwrap();
    crash(TEST, dir.path(), 1);
    let s = Store::open(&cfg(dir.path(), NEVER), Clock::System).unwrap();
    assert_eq!(s.stats().wal_replayed.get(), 3);
    // Event 1 is published and delivered; event 2 still waits for Kafka.
    assert_eq!(s.kafka_backlog().unwrap().count, 1);
    assert_eq!(s.http_backlog("crm").unwrap().count, 0);
    s.close().await;
}

/// Every row of the tables replay writes, as text.
fn dump(dir: &Path) -> Vec<String> {
    let db = redb::Database::open(dir.join(DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let mut out = Vec::new();
    for r in txn.open_table(EVENTS).unwrap().iter().unwrap() {
        let (k, v) = r.unwrap();
        let (at, source, id, json) = v.value();
        let json = String::from_utf8_lossy(json);
        out.push(format!("event {} {at} {source} {id} {json}", k.value()));
    }
    for r in txn.open_table(IDS).unwrap().iter().unwrap() {
        let (k, v) = r.unwrap();
        out.push(format!("id {:?} {:?}", k.value(), v.value()));
    }
    for r in txn.open_table(ENVELOPES).unwrap().iter().unwrap() {
        let (k, v) = r.unwrap();
        out.push(format!("envelope {:?} {:?}", k.value(), v.value()));
    }
    for r in txn.open_table(ENVELOPE_LOG).unwrap().iter().unwrap() {
        let (k, v) = r.unwrap();
        out.push(format!("history {} {:?}", k.value(), v.value()));
    }
    for table in [audit::AUDIT, audit::CHECKPOINTS] {
        for r in txn.open_table(table).unwrap().iter().unwrap() {
            let (k, v) = r.unwrap();
            out.push(format!("audit {} {:?}", k.value(), v.value()));
        }
    }
    out
}

/// The envelope of two signers signed and completed, in three commits:
/// derived events, envelope changes and audit entries (a signed checkpoint
/// every two).
async fn sign_an_envelope(s: &Store) {
    use super::envelopes::tests::event;
    s.commit(vec![event("e1", Kind::Sent, None, 1_000)])
        .await
        .unwrap();
    s.commit(vec![
        event("e2", Kind::SignerCompleted, Some(0), 2_000),
        event("e3", Kind::SignerCompleted, Some(1), 3_000),
    ])
    .await
    .unwrap();
    s.commit(vec![event("e4", Kind::Completed, None, 4_000)])
        .await
        .unwrap();
}

/// A store with envelope tracking and the audit log, on a manual clock (the
/// same in every run: the checkpoint signed at shutdown carries its time).
fn tracked(dir: &Path) -> Store {
    Store::open_full(
        &cfg(dir, NEVER),
        Clock::manual(5_000).0,
        Some(super::envelopes::tests::tracking()),
        Some(audit::tests::signing(2)),
    )
    .unwrap()
}

#[tokio::test]
async fn replay_writes_what_the_lost_commits_wrote() {
    const TEST: &str = "replay_writes_what_the_lost_commits_wrote";
    if let Some((dir, _)) = child() {
        sign_an_envelope(&tracked(&dir)).await;
        die();
    }
    let (crashed, clean) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    crash(TEST, crashed.path(), 1);
    let s = tracked(crashed.path());
    assert_eq!(s.stats().wal_replayed.get(), 3);
    s.close().await;
    drop(s);
    let s = tracked(clean.path());
    sign_an_envelope(&s).await;
    s.close().await;
    drop(s);
    let (a, b) = (dump(crashed.path()), dump(clean.path()));
    assert!(
        a.iter().any(|r| r.contains("envelope.all_signed")),
        "{a:#?}"
    );
    assert!(a.iter().filter(|r| r.starts_with("audit")).count() >= 4);
    assert_eq!(a, b);
    // The replayed audit chain verifies with the gateway's key.
    let v = audit::verify::verify_dir(crashed.path(), &audit::tests::keys()).unwrap();
    assert_eq!(v.unsigned_tail, 0);
}

#[tokio::test]
async fn with_the_log_off_every_commit_is_synced_and_a_leftover_log_replayed() {
    const TEST: &str = "with_the_log_off_every_commit_is_synced_and_a_leftover_log_replayed";
    let off = |dir: &Path| StoreConfig {
        wal: false,
        ..cfg(dir, NEVER)
    };
    if let Some((dir, phase)) = child() {
        let (config, id) = match phase {
            1 => (cfg(&dir, NEVER), "1"),
            _ => (off(&dir), "2"),
        };
        // Kept open to the end: a store dropped stops cleanly (checkpoints).
        let s = Store::open(&config, Clock::System).unwrap();
        commit_batches(&s, &[&[id]]).await;
        die();
    }
    let dir = tempfile::tempdir().unwrap();
    crash(TEST, dir.path(), 1);
    assert_eq!(on_disk(dir.path()), Vec::new());
    let s = Store::open(&off(dir.path()), Clock::System).unwrap();
    assert_eq!(s.stats().wal_replayed.get(), 1);
    s.close().await;
    drop(s);
    crash(TEST, dir.path(), 2);
    // Without the log, a commit is on disk when it is acknowledged.
    assert_eq!(on_disk(dir.path()).len(), 2);
    let s = Store::open(&off(dir.path()), Clock::System).unwrap();
    assert_eq!(s.stats().wal_replayed.get(), 0);
    s.close().await;
}
