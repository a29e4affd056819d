//! The audit log in the store: one entry per fact in the fact's
//! transaction, the chain across restarts and failed commits, edits on
//! disk, signed starts after pruning, and exports that verify on their own.

use std::path::Path;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;

use super::export::ExportFilter;
use super::verify::{VerifyError, verify_dir};
use super::*;
use crate::audit::chain::{GENESIS, Link};
use crate::audit::verify::{Failure, Start, verify};
use crate::config::StoreConfig;
use crate::store::{Ack, Actor, Attempt, HttpOp, NewEvent, Next};
use crate::time::Clock;

fn cfg(dir: &Path) -> StoreConfig {
    StoreConfig {
        path: dir.to_path_buf(),
        ..StoreConfig::default()
    }
}

fn open(dir: &Path) -> Store {
    Store::open_full(&cfg(dir), Clock::System, None, Some(signing(2))).unwrap()
}

pub(in crate::store) fn signing(every: u64) -> Signing {
    Signing {
        key: ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
        every,
        retention_ms: 86_400_000,
    }
}

pub(in crate::store) fn keys() -> Vec<VerifyingKey> {
    vec![signing(1).key.verifying_key()]
}

fn event(id: &str) -> NewEvent {
    enveloped(id, id)
}

fn enveloped(id: &str, envelope: &str) -> NewEvent {
    NewEvent {
        source: "ds".into(),
        id: id.into(),
        received_ms: 1_000,
        json: b"{}".to_vec(),
        topics: Vec::new(),
        endpoints: Vec::new(),
        envelope: envelope.into(),
        traceparent: None,
        facts: None,
        audit: Some(AuditFacts::new(&WebhookFacts {
            source: "ds",
            provider: "docusign",
            event_id: id,
            envelope_id: Some(envelope),
            body_sha256: &"ab".repeat(32),
            method: "hmac_sha256",
            key_index: Some(1),
            client: Some([127, 0, 0, 1].into()),
            received_ms: 1_000,
        })),
        held: false,
    }
}

fn links(entries: &[Entry]) -> Vec<Result<Link, String>> {
    entries.iter().map(|e| Ok(e.link())).collect()
}

#[tokio::test]
async fn every_claim_has_one_entry_the_chain_holds_and_an_edit_shows() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.commit(vec![event("a"), event("b"), event("a")])
        .await
        .unwrap();
    // A failed commit writes no entry and leaves the head where it was.
    s.fail_next_commit();
    assert!(s.commit(vec![event("lost")]).await.is_err());
    s.close().await;
    drop(s);

    // Reopened: the chain goes on from the stored head.
    let s = open(dir.path());
    s.commit(vec![event("c")]).await.unwrap();
    let entries = s.audit_entries(1, 100).unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "webhook.accepted",
            "webhook.accepted",
            "webhook.duplicate",
            "webhook.accepted"
        ]
    );
    let first = &entries[0].data;
    assert_eq!(entries[2].data["original_event_seq"], first["event_seq"]);
    assert_eq!(first["body_sha256"], "ab".repeat(32));
    assert_eq!(first["provider"], "docusign");
    assert_eq!(first["envelope_id"], "a");
    assert_eq!(first["auth"]["key_index"], 1);
    assert_eq!(first["client"], "127.0.0.1");
    assert_eq!(entries[3].data["event_id"], "c");
    let r = verify(links(&entries), &Start::Genesis, &Default::default(), &[]).unwrap();
    assert_eq!(r.links, 4);
    s.close().await;
    drop(s);

    // One edited byte in entry 2, on disk: the chain breaks at entry 3.
    {
        let db = redb::Database::create(dir.path().join(crate::store::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(AUDIT).unwrap();
            let mut e = entries[1].clone();
            e.data["event_id"] = "B".into();
            t.insert(2, serde_json::to_vec(&e).unwrap().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    // The checkpoint signing entry 2 names it (without one there, the
    // link of entry 3 would).
    match verify_dir(dir.path(), &keys()) {
        Err(VerifyError::Failed(Failure::Checkpoint { seq: 2, problem })) => {
            assert!(problem.contains("the chain was rewritten"), "{problem}")
        }
        other => panic!("{other:?}"),
    }
    let all = {
        let s = open(dir.path());
        let all = s.audit_entries(1, 100).unwrap();
        s.close().await;
        all
    };
    let broken = verify(links(&all), &Start::Genesis, &Default::default(), &[]).unwrap_err();
    assert!(matches!(broken, Failure::Broken(b) if b.seq == 3));
}

#[tokio::test]
async fn verify_reads_a_stopped_gateways_store_and_shutdown_signs_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.commit(vec![event("a"), event("b"), event("c")])
        .await
        .unwrap();
    s.close().await;
    drop(s);
    let v = verify_dir(dir.path(), &keys()).unwrap();
    assert_eq!(v.links, 3);
    assert_eq!(v.head.unwrap().0, 3);
    // Entry 2 by count, entry 3 at shutdown: nothing is left unsigned.
    assert_eq!((v.checkpoints, v.unsigned_tail), (2, 0));
    // Another key did not sign it.
    let other = [ed25519_dalek::SigningKey::from_bytes(&[6; 32]).verifying_key()];
    assert!(matches!(
        verify_dir(dir.path(), &other),
        Err(VerifyError::Failed(Failure::Checkpoint { seq: 2, .. }))
    ));
    assert!(matches!(
        verify_dir(&dir.path().join("nope"), &keys()),
        Err(VerifyError::Open { .. })
    ));
}

#[tokio::test]
async fn deliveries_admin_actions_and_endpoint_changes_have_their_entries() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_full(&cfg(dir.path()), Clock::System, None, Some(signing(1000))).unwrap();
    let mut e = event("a");
    e.topics = vec!["signatures".into()];
    e.endpoints = vec!["crm".into()];
    s.commit(vec![e, event("b")]).await.unwrap();
    s.ack(vec![
        Ack::Published {
            seq: 1,
            topic: "signatures".into(),
            partition: 0,
            offset: 7,
        },
        Ack::DeadLettered {
            seq: 1,
            topic: "other".into(),
            reason: "too large".into(),
        },
    ])
    .await
    .unwrap();
    let attempt = |status, next| HttpOp::Attempted {
        seq: 1,
        endpoint: "crm".into(),
        attempt: Attempt {
            at_ms: 5,
            status: Some(status),
            latency_ms: 12,
            error: String::new(),
        },
        next,
    };
    s.http(vec![attempt(
        500,
        Next::Retry {
            due_ms: 0,
            counts: true,
        },
    )])
    .await
    .unwrap();
    s.http(vec![attempt(
        500,
        Next::DeadLetter {
            reason: "attempts used up".into(),
        },
    )])
    .await
    .unwrap();
    let admin = Actor {
        client: Some([10, 0, 0, 7].into()),
        credential: "admin_token",
    };
    let replay = HttpOp::Replay {
        seq: 1,
        endpoint: "crm".into(),
    };
    assert_eq!(
        s.http_by(vec![replay], admin.clone()).await.unwrap(),
        [true]
    );
    s.http(vec![attempt(200, Next::Delivered)]).await.unwrap();
    // A replay of what is not dead-lettered applies nothing and records nothing.
    let again = HttpOp::Replay {
        seq: 1,
        endpoint: "crm".into(),
    };
    assert_eq!(
        s.http_by(vec![again], admin.clone()).await.unwrap(),
        [false]
    );
    s.set_disabled("crm", Some((9, "410 Gone".into())), None)
        .await
        .unwrap();
    s.set_disabled("crm", None, Some(admin.clone()))
        .await
        .unwrap();

    let entries = s.audit_entries(1, 100).unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "webhook.accepted",
            "webhook.accepted",
            "kafka.published",
            "kafka.dead_lettered",
            "http.attempt_failed",
            "http.dead_lettered",
            "admin.replay",
            "http.delivered",
            "endpoint.disabled",
            "admin.enable",
        ]
    );
    assert_eq!(entries[2].data["offset"], 7);
    assert_eq!(entries[5].data["reason"], "attempts used up");
    assert_eq!(entries[5].data["latency_ms"], 12);
    assert_eq!(entries[5].data["class"], "server_error");
    assert_eq!(entries[7].data["class"], "ok");
    assert_eq!(entries[6].data["by"]["client"], "10.0.0.7");
    assert_eq!(entries[6].data["by"]["credential"], "admin_token");
    assert!(entries[8].data.get("by").is_none(), "the gateway's own act");
    assert_eq!(entries[9].data["by"]["client"], "10.0.0.7");
    let r = verify(links(&entries), &Start::Genesis, &Default::default(), &[]).unwrap();
    assert_eq!(r.links, 10);
    assert_eq!(s.stats().audit_entries.get(), 10);
}

#[tokio::test]
async fn pruning_keeps_a_signed_start_and_the_rest_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, manual) = Clock::manual(1_000_000);
    let now = clock.clone();
    let mut sign = signing(3);
    sign.retention_ms = 10_000;
    let s = Store::open_full(&cfg(dir.path()), clock, None, Some(sign)).unwrap();
    let at = |id: String| NewEvent {
        received_ms: now.now_ms(),
        ..event(&id)
    };
    for i in 0..7 {
        s.commit(vec![at(format!("old{i}"))]).await.unwrap();
    }
    manual.advance(Duration::from_secs(60));
    for i in 0..2 {
        s.commit(vec![at(format!("new{i}"))]).await.unwrap();
    }
    // Checkpoints at 3, 6 (old) and 9 (new). Entries 1..=6 are past
    // retention; checkpoint 6 is the newest that signs an old entry.
    while s.sweep(now.now_ms()).await.unwrap() > 0 {}
    let left = s.audit_entries(0, 100).unwrap();
    assert_eq!(left.first().map(|e| e.seq), Some(7));
    assert_eq!(s.stats().audit_pruned.get(), 6);
    s.close().await;
    drop(s);
    let r = verify_dir(dir.path(), &keys()).unwrap();
    assert_eq!((r.first, r.links), (Some(7), 3));
    // The anchor (6) and the one after: checkpoint 3 went.
    assert_eq!(r.checkpoints, 2);

    // The anchor removed: the start is no longer signed.
    {
        let db = redb::Database::create(dir.path().join(crate::store::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(CHECKPOINTS).unwrap().remove(6).unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(
        verify_dir(dir.path(), &keys()),
        Err(VerifyError::Failed(Failure::Input(m))) if m.contains("starts at entry 7")
    ));
}

#[tokio::test]
async fn an_envelopes_export_shows_its_entries_links_the_rest_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_full(&cfg(dir.path()), Clock::System, None, Some(signing(1000))).unwrap();
    let mut mine = enveloped("m1", "env-A");
    mine.topics = vec!["signatures".into()];
    s.commit(vec![enveloped("o1", "env-B")]).await.unwrap();
    s.commit(vec![mine, enveloped("o2", "env-B")])
        .await
        .unwrap();
    s.ack(vec![Ack::Published {
        seq: 2,
        topic: "signatures".into(),
        partition: 0,
        offset: 1,
    }])
    .await
    .unwrap();
    s.commit(vec![enveloped("m1", "env-A"), enveloped("o3", "env-B")])
        .await
        .unwrap();
    let filter = ExportFilter::parse(Some("ds/env-A"), None, None).unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    let shown = s
        .audit_export(filter, move |l| {
            sink.lock().unwrap().push(serde_json::to_string(l).unwrap());
            Ok(())
        })
        .await
        .unwrap();
    let lines = lines.lock().unwrap().clone();
    // Accepted, published, duplicate: in full; o2 between them as a link;
    // o3 (after the last one) as a link up to the checkpoint at the head.
    assert_eq!(shown, 3);
    let types: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        [
            "header",
            "entry",
            "link",
            "entry",
            "entry",
            "link",
            "checkpoint"
        ]
    );
    assert!(
        !lines.iter().any(|l| l.contains("o2")),
        "others' data stays out"
    );
    let r = crate::audit::export::verify_lines(lines.iter().cloned().map(Ok), &keys()).unwrap();
    assert_eq!((r.first, r.links, r.checkpoints), (Some(2), 5, 1));

    // An export of nothing is a header alone.
    let none = ExportFilter::parse(Some("ds/unknown"), None, None).unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    s.audit_export(none, move |_| {
        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(ExportFilter::parse(Some("no-slash"), None, None).is_err());
    assert!(ExportFilter::parse(None, Some("yesterday"), None).is_err());
    let _ = GENESIS;
}

type AuditRows<'a> = redb::Table<'a, u64, &'static [u8]>;

/// Tampering with the database file: each kind is found by `verify_dir`
/// (what `countersign audit verify --store` runs).
#[tokio::test]
async fn deleted_reordered_and_rewritten_entries_on_disk_are_found() {
    let setup = || async {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_full(&cfg(dir.path()), Clock::System, None, Some(signing(4))).unwrap();
        for i in 0..10 {
            s.commit(vec![event(&format!("e{i}"))]).await.unwrap();
        }
        s.close().await;
        drop(s);
        assert!(verify_dir(dir.path(), &keys()).is_ok());
        dir
    };
    let edit = |dir: &Path, f: &dyn Fn(&mut AuditRows)| {
        let db = redb::Database::create(dir.join(crate::store::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        f(&mut txn.open_table(AUDIT).unwrap());
        txn.commit().unwrap();
    };
    let get = |t: &AuditRows, seq: u64| -> Entry {
        serde_json::from_slice(t.get(seq).unwrap().unwrap().value()).unwrap()
    };
    let put = |t: &mut AuditRows, e: &Entry| {
        t.insert(e.seq, serde_json::to_vec(e).unwrap().as_slice())
            .unwrap();
    };

    // Deleted: entry 6 is missing, 7 names it.
    let dir = setup().await;
    edit(dir.path(), &|t| {
        t.remove(6).unwrap();
    });
    match verify_dir(dir.path(), &keys()) {
        Err(VerifyError::Failed(Failure::Broken(b))) => {
            assert_eq!(
                (b.seq, b.expected.as_str(), b.found.as_str()),
                (7, "6", "7")
            )
        }
        other => panic!("{other:?}"),
    }

    // Reordered: entries 5 and 6 swap places (each renumbered to fit).
    let dir = setup().await;
    edit(dir.path(), &|t| {
        let (mut a, mut b) = (get(t, 5), get(t, 6));
        std::mem::swap(&mut a.seq, &mut b.seq);
        put(t, &a);
        put(t, &b);
    });
    match verify_dir(dir.path(), &keys()) {
        Err(VerifyError::Failed(Failure::Broken(b))) => assert_eq!(b.seq, 5),
        other => panic!("{other:?}"),
    }

    // Rewritten tail: entry 6 changed and every link after it recomputed
    // (the chain holds); without the key the checkpoint at 8 cannot follow.
    let dir = setup().await;
    edit(dir.path(), &|t| {
        let mut prev = get(t, 5).hash();
        for seq in 6..=10 {
            let mut e = get(t, seq);
            if seq == 6 {
                e.data["event_id"] = "forged".into();
            }
            e.prev = prev;
            prev = e.hash();
            put(t, &e);
        }
    });
    match verify_dir(dir.path(), &keys()) {
        Err(VerifyError::Failed(Failure::Checkpoint { seq: 8, problem })) => {
            assert!(problem.contains("rewritten"), "{problem}")
        }
        other => panic!("{other:?}"),
    }
    // The whole log truncated after a checkpoint: the checkpoint names it.
    let dir = setup().await;
    edit(dir.path(), &|t| {
        for seq in 8..=10 {
            t.remove(seq).unwrap();
        }
    });
    match verify_dir(dir.path(), &keys()) {
        Err(VerifyError::Failed(Failure::Checkpoint { seq: 8, problem })) => {
            assert!(problem.contains("removed"), "{problem}")
        }
        other => panic!("{other:?}"),
    }
}
