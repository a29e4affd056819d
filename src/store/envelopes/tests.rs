//! Envelopes in the store, on a real database in a temp dir: the state change
//! and the derived events commit with their cause, exactly once across a
//! restart and retries past the dedup window; the block and the derived events
//! validate against the schema; the log resumes; sweeping.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::StoreConfig;
use crate::envelope::{ExpectedSigner, Registration};
use crate::event::{Kind, SignatureEvent, Signer};
use crate::store::{Claim, NewEvent, Store};
use crate::time::Clock;

fn cfg(dir: &Path) -> StoreConfig {
    StoreConfig {
        path: dir.to_path_buf(),
        dedup_ttl: Duration::from_millis(10),
        retention: Duration::from_millis(10),
        ..StoreConfig::default()
    }
}

pub(in crate::store) fn tracking() -> Tracking {
    Tracking {
        max_signers: 10,
        max_history: 100,
        cache_envelopes: 2,
        retention_ms: 1_000,
        stream_buffer: 64,
        route: Arc::new(|e: &SignatureEvent| {
            let topics = vec!["signatures".to_owned()];
            let endpoints = if e.kind == Kind::EnvelopeAllSigned {
                vec!["billing".to_owned()]
            } else {
                Vec::new()
            };
            (topics, endpoints)
        }),
        policies: Default::default(),
    }
}

fn open(dir: &Path) -> Store {
    Store::open_with(&cfg(dir), Clock::System, Some(tracking())).unwrap()
}

/// A provider event as the pipeline would hand it over.
pub(in crate::store) fn event(id: &str, kind: Kind, signer: Option<usize>, at: i64) -> NewEvent {
    let e = SignatureEvent {
        schema_version: 1,
        id: crate::event::EventId::parse(id).unwrap(),
        source: "ds".into(),
        provider: "docusign".into(),
        provider_event_type: kind.as_str().into(),
        kind,
        envelope_id: Some("env-1".into()),
        document_id: None,
        signer: signer.map(|i| Signer {
            id: Some(format!("r{i}")),
            email: Some(format!("s{i}@example.com")),
            ..Signer::default()
        }),
        occurred_at: None,
        received_at: crate::time::format_ms(at),
        sandbox: None,
        auth: crate::event::Auth {
            method: "hmac_sha256".into(),
            key_index: Some(0),
            covers_body: true,
        },
        payload: serde_json::json!({"x": 1}),
        origin: None,
        cause: None,
        envelope: None,
        quarantine: None,
    };
    NewEvent {
        source: "ds".into(),
        id: id.into(),
        received_ms: at,
        json: serde_json::to_vec(&e).unwrap(),
        topics: vec!["signatures".into()],
        endpoints: Vec::new(),
        envelope: "env-1".into(),
        traceparent: None,
        audit: None,
        held: false,
        facts: Some(Facts {
            envelope_id: "env-1".into(),
            provider: "docusign".into(),
            kind,
            signer: e.signer.clone(),
            occurred_at: None,
            received_at: e.received_at.clone(),
            late_route: None,
        }),
    }
}

/// `e` as an event of envelope `env`.
fn in_envelope(env: &str, mut e: NewEvent) -> NewEvent {
    e.facts.as_mut().unwrap().envelope_id = env.into();
    e
}

/// An event `id` of `kind` for envelope `env`, without a signer.
fn of(env: &str, id: &str, kind: Kind, at: i64) -> NewEvent {
    in_envelope(env, event(id, kind, None, at))
}

fn register(n: usize) -> EnvelopeOp {
    EnvelopeOp::Register {
        source: "ds".into(),
        provider: "docusign".into(),
        envelope_id: "env-1".into(),
        registration: Registration {
            reference: "CRM-7".into(),
            metadata: Some(serde_json::json!({"value": 1200})),
            signers: (0..n)
                .map(|i| ExpectedSigner {
                    email: Some(format!("S{i}@example.com")),
                    ..ExpectedSigner::default()
                })
                .collect(),
            document_sha256: Some("ab".repeat(32)),
            ..Registration::default()
        },
    }
}

/// Stored events of a kind.
fn stored(s: &Store, kind: &str) -> Vec<serde_json::Value> {
    s.list(1000, None)
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.json).unwrap())
        .filter(|v| v["kind"] == kind)
        .collect()
}

#[tokio::test]
async fn all_signed_commits_with_its_cause_once_across_restarts_and_late_retries() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.envelope_op(register(2), None).await.unwrap();
    let history = [
        event("sent", Kind::Sent, None, 1),
        event("signed-0", Kind::SignerCompleted, Some(0), 2),
        event("signed-1", Kind::SignerCompleted, Some(1), 3),
    ];
    let claims = s.commit(history.to_vec()).await.unwrap();
    assert!(claims.iter().all(|c| matches!(c, Claim::Stored { .. })));
    let all = stored(&s, "envelope.all_signed");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["cause"], "signed-1");
    assert_eq!(all[0]["origin"], "countersign");
    assert_eq!(all[0]["envelope"]["reference"], "CRM-7");
    assert_eq!(all[0]["envelope"]["state"], "completed");
    // Routed like any event: the outbox and the endpoint have it.
    let seq = s
        .list(1000, None)
        .unwrap()
        .iter()
        .find(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.json).unwrap()["kind"]
                == "envelope.all_signed"
        })
        .unwrap()
        .seq;
    assert_eq!(s.kafka_deliveries(seq).unwrap().len(), 1);
    assert_eq!(s.http_deliveries(seq).unwrap().len(), 1);
    // The provider event carries the block too.
    let signed = s.get("signed-1").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&signed[0].json).unwrap();
    assert_eq!(v["envelope"]["progress"]["signed"], 2);
    assert_eq!(
        s.stats()
            .derived_events
            .with_label_values(&["envelope.all_signed"])
            .get(),
        1
    );
    s.close().await;
    drop(s);

    // Reopened, the same events again long after the dedup window, and the
    // provider's own completion: nothing more is derived.
    let s = open(dir.path());
    let mut late: Vec<NewEvent> = history
        .iter()
        .map(|e| NewEvent {
            received_ms: 10_000,
            ..e.clone()
        })
        .collect();
    late.push(event("completed", Kind::Completed, None, 10_001));
    let claims = s.commit(late).await.unwrap();
    assert!(
        claims.iter().all(|c| matches!(c, Claim::Stored { .. })),
        "past the dedup window"
    );
    assert_eq!(stored(&s, "envelope.all_signed").len(), 1);
    assert_eq!(stored(&s, "envelope.in_signing").len(), 1);
    let (env, history) = s.envelope("ds", "env-1").unwrap().unwrap();
    assert_eq!(env.state, crate::event::EnvelopeState::Completed);
    assert_eq!(env.events, 7);
    assert!(history.iter().any(|h| h.kind == "registered"));
    s.close().await;
}

#[tokio::test]
async fn a_failed_commit_keeps_neither_state_nor_derived_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.fail_next_commit();
    assert!(
        s.commit(vec![event("done", Kind::Completed, None, 1)])
            .await
            .is_err()
    );
    assert!(s.envelope("ds", "env-1").unwrap().is_none());
    assert!(stored(&s, "envelope.all_signed").is_empty());
    s.commit(vec![event("done", Kind::Completed, None, 1)])
        .await
        .unwrap();
    assert_eq!(stored(&s, "envelope.all_signed").len(), 1);
    s.close().await;
}

#[tokio::test]
async fn the_block_and_every_derived_event_validate_against_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.envelope_op(register(1), None).await.unwrap();
    s.commit(vec![
        event("sent", Kind::Sent, Some(0), 1),
        event("done", Kind::Completed, None, 2),
        event("void", Kind::Voided, None, 3),
    ])
    .await
    .unwrap();
    let archive = |sha: &str| EnvelopeOp::Archive {
        source: "ds".into(),
        envelope_id: "env-1".into(),
        sha256: sha.into(),
    };
    s.envelope_op(archive(&"cd".repeat(32)), None)
        .await
        .unwrap();
    s.envelope_op(archive(&"ab".repeat(32)), None)
        .await
        .unwrap();
    s.commit(vec![event("declined", Kind::Declined, Some(0), 4)])
        .await
        .unwrap();
    let mut kinds = Vec::new();
    for r in s.list(1000, None).unwrap() {
        let e: SignatureEvent = serde_json::from_slice(&r.json).unwrap();
        crate::providers::testkit::assert_valid(&e);
        kinds.push(e.kind);
    }
    for k in [
        Kind::EnvelopeInSigning,
        Kind::EnvelopeAllSigned,
        Kind::EnvelopeArchived,
        Kind::EnvelopeDocumentMismatch,
        Kind::EnvelopeAnomaly,
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    assert_eq!(
        s.stats().anomalies.get(),
        2,
        "void and decline after completion"
    );
    s.close().await;
}

#[tokio::test]
async fn the_log_resumes_after_a_sequence_and_the_live_feed_follows_commits() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut rx = s.subscribe();
    s.commit(vec![
        event("sent", Kind::Sent, None, 1),
        event("viewed", Kind::Viewed, Some(0), 2),
        event("viewed-again", Kind::Viewed, Some(0), 3),
    ])
    .await
    .unwrap();
    let mut live = Vec::new();
    while let Ok(m) = rx.try_recv() {
        live.push(m.seq);
    }
    let (replayed, _) = s.envelope_log(0, 100).unwrap();
    let replayed: Vec<u64> = replayed.iter().map(|m| m.seq).collect();
    assert_eq!(live, replayed, "the same messages, live or replayed");
    // sent (in_signing), in_signing derived, viewed: the repeat changes nothing.
    assert_eq!(live.len(), 3, "{live:?}");
    let (after_first, _) = s.envelope_log(live[0], 100).unwrap();
    assert_eq!(after_first.len(), 2);
    assert_eq!(
        s.envelope_log_head().unwrap(),
        4,
        "the repeat is in the history"
    );
    s.close().await;
}

#[tokio::test]
async fn envelopes_are_swept_after_their_retention() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.commit(vec![event("sent", Kind::Sent, None, 1)])
        .await
        .unwrap();
    assert!(s.envelope("ds", "env-1").unwrap().is_some());
    let now = Clock::System.now_ms();
    while s.sweep(now + 2_000).await.unwrap() > 0 {}
    assert!(s.envelope("ds", "env-1").unwrap().is_none());
    assert_eq!(s.envelope_log_head().unwrap(), 0, "history gone with it");
    assert!(
        s.envelopes(&Default::default(), 10, None)
            .unwrap()
            .envelopes
            .is_empty()
    );
    s.close().await;
}

#[tokio::test]
async fn envelopes_evicted_from_a_small_cache_keep_their_state() {
    // A cache of two envelopes: five envelopes in one batch, then again.
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let sent: Vec<NewEvent> = (0..5)
        .map(|i| of(&format!("e{i}"), &format!("sent-{i}"), Kind::Sent, 1))
        .collect();
    s.commit(sent).await.unwrap();
    let done: Vec<NewEvent> = (0..5)
        .map(|i| of(&format!("e{i}"), &format!("done-{i}"), Kind::Completed, 2))
        .collect();
    s.commit(done).await.unwrap();
    for i in 0..5 {
        let (env, history) = s.envelope("ds", &format!("e{i}")).unwrap().unwrap();
        assert_eq!(env.state, crate::event::EnvelopeState::Completed, "e{i}");
        assert_eq!(env.events, 2);
        assert_eq!(history.len(), 4, "sent, in_signing, completed, all_signed");
    }
    assert_eq!(stored(&s, "envelope.all_signed").len(), 5);
    s.close().await;
    drop(s);
    let s = open(dir.path());
    let page = s.envelopes(&Default::default(), 10, None).unwrap();
    assert_eq!(page.envelopes.len(), 5, "listed after a restart");
    s.close().await;
}

/// Envelopes by state, counted by reading every envelope.
fn scanned(s: &Store) -> [(EnvelopeState, u64); 5] {
    let mut out = EnvelopeState::ALL.map(|st| (st, 0));
    for e in s
        .envelopes(&Default::default(), 500, None)
        .unwrap()
        .envelopes
    {
        out[state_code(e.state) as usize].1 += 1;
    }
    out
}

#[tokio::test]
async fn envelopes_by_state_are_counted_through_changes_sweeps_and_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    // Five sent (two in one batch with their completion), two completed,
    // one voided, one late `viewed` that moves nothing, and one registered
    // before any webhook (open).
    let mut batch: Vec<NewEvent> = (0..5)
        .map(|i| of(&format!("e{i}"), &format!("sent-{i}"), Kind::Sent, 1))
        .collect();
    batch.push(of("e0", "done-0", Kind::Completed, 2));
    s.commit(batch).await.unwrap();
    s.commit(vec![
        of("e1", "done-1", Kind::Completed, 3),
        of("e2", "void-2", Kind::Voided, 3),
        of("e1", "late-1", Kind::Viewed, 4),
    ])
    .await
    .unwrap();
    s.envelope_op(register(2), None).await.unwrap();
    let counts = s.envelope_states().unwrap();
    assert_eq!(counts, scanned(&s));
    assert_eq!(
        counts.map(|(_, n)| n),
        [1, 2, 2, 0, 1],
        "open, in_signing, completed, archived, cancelled"
    );

    // A store from before the counts: counted when it is opened.
    s.close().await;
    drop(s);
    {
        let db = redb::Database::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(STATES).unwrap();
        txn.delete_table(REFERENCES).unwrap();
        txn.open_table(crate::store::tables::META)
            .unwrap()
            .remove(INDEXES)
            .unwrap();
        txn.commit().unwrap();
    }
    let s = open(dir.path());
    assert_eq!(s.envelope_states().unwrap(), counts, "recounted on open");
    let by_ref = EnvelopeFilter {
        reference: Some("CRM-7".into()),
        ..EnvelopeFilter::default()
    };
    assert_eq!(
        s.envelopes(&by_ref, 10, None).unwrap().envelopes.len(),
        1,
        "references indexed on open"
    );

    // Swept envelopes leave the counts.
    let now = Clock::System.now_ms();
    while s.sweep(now + 2_000).await.unwrap() > 0 {}
    assert_eq!(s.envelope_states().unwrap().map(|(_, n)| n), [0; 5]);
    assert!(s.envelopes(&by_ref, 10, None).unwrap().envelopes.is_empty());
    let txn = s.inner.db.begin_read().unwrap();
    let refs = txn.open_table(REFERENCES).unwrap();
    assert!(
        redb::ReadableTableMetadata::is_empty(&refs).unwrap(),
        "swept from the index"
    );
    drop(refs);
    drop(txn);
    s.close().await;
}

#[tokio::test]
async fn the_listing_filters_by_reference_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let of = |env: &str, id: &str| in_envelope(env, event(id, Kind::Sent, Some(3), 1));
    s.commit(vec![of("env-1", "a"), of("other-2", "b")])
        .await
        .unwrap();
    // Registered after its first webhook: the reference still finds it.
    s.envelope_op(register(1), None).await.unwrap();
    let ids = |f: EnvelopeFilter| {
        let page = s.envelopes(&f, 10, None).unwrap();
        let mut ids: Vec<String> = page.envelopes.into_iter().map(|e| e.envelope_id).collect();
        ids.sort();
        ids
    };
    let f = |reference: Option<&str>, text: Option<&str>| EnvelopeFilter {
        reference: reference.map(Into::into),
        text: text.map(Into::into),
        ..EnvelopeFilter::default()
    };
    assert_eq!(ids(f(Some("CRM-7"), None)), ["env-1"]);
    assert!(
        ids(f(Some("crm-7"), None)).is_empty(),
        "a reference is exact"
    );
    assert_eq!(ids(f(None, Some("crm"))), ["env-1"], "text: the reference");
    assert_eq!(ids(f(None, Some("OTHER"))), ["other-2"], "text: the id");
    assert_eq!(
        ids(f(None, Some("s3@EXAMPLE"))),
        ["env-1", "other-2"],
        "text: a signer's e-mail"
    );
    assert!(ids(f(None, Some("nobody"))).is_empty());
    // A new reference replaces the old one in the index.
    let EnvelopeOp::Register {
        source,
        provider,
        envelope_id,
        mut registration,
    } = register(1)
    else {
        unreachable!()
    };
    registration.reference = "CRM-8".into();
    let op = EnvelopeOp::Register {
        source,
        provider,
        envelope_id,
        registration,
    };
    s.envelope_op(op, None).await.unwrap();
    assert!(
        ids(f(Some("CRM-7"), None)).is_empty(),
        "the old reference is gone"
    );
    assert_eq!(ids(f(Some("CRM-8"), None)), ["env-1"]);
    let head = s.envelopes(&Default::default(), 10, None).unwrap().log_head;
    assert_eq!(head, s.envelope_log_head().unwrap());
    s.close().await;
}
