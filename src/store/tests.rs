//! Store behaviour on a real database in a temp dir: dedup, group commit, failed
//! commits leaving no claim, sweeping, reopening.

use super::*;
use crate::config::StoreConfig;
use std::path::Path;

fn cfg(dir: &Path) -> StoreConfig {
    StoreConfig {
        path: dir.to_path_buf(),
        ..StoreConfig::default()
    }
}

fn ev(source: &str, id: &str, at: i64) -> NewEvent {
    NewEvent {
        source: source.into(),
        id: id.into(),
        received_ms: at,
        json: format!("{{\"id\":\"{id}\"}}").into_bytes(),
        topics: Vec::new(),
        endpoints: Vec::new(),
        envelope: id.into(),
        traceparent: None,
        audit: None,
        held: false,
        facts: None,
    }
}

#[tokio::test]
async fn dedup_is_per_source_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&cfg(dir.path()), Clock::System).unwrap();
    let out = s
        .commit(vec![
            ev("a", "1", 1000),
            ev("a", "1", 1000),
            ev("b", "1", 1000),
        ])
        .await
        .unwrap();
    assert_eq!(out[0], Claim::Stored { seq: 1 });
    assert_eq!(out[1], Claim::Duplicate { seq: 1 });
    assert_eq!(out[2], Claim::Stored { seq: 2 });
    let again = s.commit(vec![ev("a", "1", 2000)]).await.unwrap();
    assert_eq!(again[0], Claim::Duplicate { seq: 1 });
    assert_eq!(s.get("1").unwrap().len(), 2);
    s.close().await;
}

#[tokio::test]
async fn concurrent_commits_share_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&cfg(dir.path()), Clock::System).unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.commit(vec![ev("a", &i.to_string(), 1)]).await })
        })
        .collect();
    for t in tasks {
        assert!(matches!(t.await.unwrap().unwrap()[0], Claim::Stored { .. }));
    }
    let commits = s.stats().commits.load(Ordering::Relaxed);
    assert_eq!(s.stats().events_stored.load(Ordering::Relaxed), 200);
    // With one fsync per request this would be 200.
    assert!(commits < 200, "commits = {commits}");
    assert!(s.stats().largest_batch.load(Ordering::Relaxed) > 1);
    s.close().await;
}

#[tokio::test]
async fn a_failed_commit_keeps_no_claim() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&cfg(dir.path()), Clock::System).unwrap();
    s.fail_next_commit();
    assert!(matches!(
        s.commit(vec![ev("a", "x", 1)]).await,
        Err(StoreError::Injected)
    ));
    assert!(s.get("x").unwrap().is_empty());
    // The retry is stored, with the sequence number the failed one would have had.
    assert_eq!(
        s.commit(vec![ev("a", "x", 2)]).await.unwrap()[0],
        Claim::Stored { seq: 1 }
    );
    s.close().await;
}

#[tokio::test]
async fn claims_expire_and_old_events_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.dedup_ttl = Duration::from_secs(10);
    c.retention = Duration::from_secs(140);
    c.sweep_batch = 2;
    let s = Store::open(&c, Clock::System).unwrap();
    for i in 0..3 {
        s.commit(vec![ev("a", &i.to_string(), 0)]).await.unwrap();
    }
    // After the ttl a claim no longer blocks: the id now names the new event.
    assert_eq!(
        s.commit(vec![ev("a", "0", 20_000)]).await.unwrap()[0],
        Claim::Stored { seq: 4 }
    );
    assert_eq!(
        s.get("0")
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>(),
        vec![4]
    );
    assert_eq!(
        s.sweep(20_000).await.unwrap(),
        0,
        "nothing is past retention yet"
    );
    // Events older than retention go, two per sweep; the newest stays.
    assert_eq!(s.sweep(150_000).await.unwrap(), 2);
    assert_eq!(s.sweep(150_000).await.unwrap(), 1);
    assert_eq!(s.sweep(150_000).await.unwrap(), 0);
    let left: Vec<u64> = s.list(10, None).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(left, vec![4]);
    assert_eq!(
        s.get("0").unwrap().len(),
        1,
        "the id entry of the newer event survives"
    );
    assert!(s.get("1").unwrap().is_empty());
    assert_eq!(s.stats().events_swept.load(Ordering::Relaxed), 3);
    s.close().await;
}

#[tokio::test]
async fn events_waiting_in_the_outbox_are_never_swept() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.dedup_ttl = Duration::from_secs(1);
    c.retention = Duration::from_secs(1);
    let s = Store::open(&c, Clock::System).unwrap();
    let mut queued = ev("a", "q", 0);
    queued.topics = vec!["t".into()];
    s.commit(vec![queued, ev("a", "later", 0)]).await.unwrap();
    // The queued event stays; the one after it is not held up by it.
    assert_eq!(s.sweep(1_000_000).await.unwrap(), 1);
    let left: Vec<u64> = s.list(10, None).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(left, vec![1]);
    s.ack(vec![Ack::Published {
        seq: 1,
        topic: "t".into(),
        partition: 0,
        offset: 7,
    }])
    .await
    .unwrap();
    assert!(matches!(
        s.kafka_deliveries(1).unwrap().as_slice(),
        [KafkaDelivery::Published {
            partition: 0,
            offset: 7,
            ..
        }]
    ));
    assert_eq!(s.sweep(1_000_000).await.unwrap(), 1);
    assert!(s.kafka_deliveries(1).unwrap().is_empty());
    assert!(s.list(10, None).unwrap().is_empty());
    s.close().await;
}

fn attempted(seq: u64, next: Next) -> HttpOp {
    HttpOp::Attempted {
        seq,
        endpoint: "crm".into(),
        attempt: Attempt {
            at_ms: 5,
            status: Some(500),
            latency_ms: 1,
            error: "HTTP 500".into(),
        },
        next,
    }
}

#[tokio::test]
async fn http_deliveries_keep_envelope_order_and_block_sweeping_until_finished() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.dedup_ttl = Duration::from_secs(1);
    c.retention = Duration::from_secs(1);
    let s = Store::open(&c, Clock::System).unwrap();
    let for_crm = |id: &str, envelope: &str| NewEvent {
        endpoints: vec!["crm".into()],
        envelope: envelope.into(),
        ..ev("a", id, 0)
    };
    s.commit(vec![
        for_crm("1", "A"),
        for_crm("2", "A"),
        for_crm("3", "B"),
    ])
    .await
    .unwrap();
    let due = |now| {
        s.due("crm", now, 10, |_| false)
            .unwrap()
            .iter()
            .map(|d| d.seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(due(0), vec![1, 3], "only the first of each envelope");
    assert_eq!(s.sweep(1_000_000).await.unwrap(), 0, "unfinished: kept");
    // 1 is retried at 100; 2 still waits behind it.
    s.http(vec![attempted(
        1,
        Next::Retry {
            due_ms: 100,
            counts: true,
        },
    )])
    .await
    .unwrap();
    assert_eq!(due(99), vec![3]);
    assert_eq!(s.next_due("crm", 99).unwrap(), Some(100));
    // Dead-lettering 1 schedules 2; delivering 3 finishes B.
    let applied = s
        .http(vec![
            attempted(
                1,
                Next::DeadLetter {
                    reason: "gone".into(),
                },
            ),
            attempted(3, Next::Delivered),
            attempted(3, Next::Delivered),
        ])
        .await
        .unwrap();
    assert_eq!(
        applied,
        vec![true, true, false],
        "a finished delivery takes no more attempts"
    );
    assert_eq!(due(i64::MAX), vec![2], "scheduled at the time it was freed");
    assert_eq!(s.dead_letter_count("crm").unwrap(), 1);
    let (d, history) = s.http_deliveries(1).unwrap().remove(0);
    assert_eq!(
        (d.state, d.attempts, history.len()),
        (DeliveryState::DeadLettered, 2, 2)
    );
    s.http(vec![attempted(2, Next::Delivered)]).await.unwrap();
    // Everything finished: the events go, with their records and dead letters.
    assert_eq!(s.sweep(1_000_000).await.unwrap(), 3);
    assert!(s.http_deliveries(1).unwrap().is_empty());
    assert_eq!(s.dead_letter_count("crm").unwrap(), 0);
    assert_eq!(s.http_backlog("crm").unwrap().count, 0);
    s.close().await;
}

#[tokio::test]
async fn reopening_keeps_events_claims_and_sequence() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(&cfg(dir.path()), Clock::System).unwrap();
        s.commit(vec![ev("a", "1", 1), ev("a", "2", 1)])
            .await
            .unwrap();
        s.close().await;
    }
    let s = Store::open(&cfg(dir.path()), Clock::System).unwrap();
    assert_eq!(
        s.commit(vec![ev("a", "1", 5)]).await.unwrap()[0],
        Claim::Duplicate { seq: 1 }
    );
    assert_eq!(
        s.commit(vec![ev("a", "3", 5)]).await.unwrap()[0],
        Claim::Stored { seq: 3 }
    );
    let newest: Vec<u64> = s.list(2, None).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(newest, vec![3, 2]);
    let older: Vec<u64> = s.list(10, Some(2)).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(older, vec![1]);
    s.close().await;
}

#[tokio::test]
async fn a_full_queue_is_refused_not_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.queue_capacity = 1;
    c.max_batch = 1;
    let s = Store::open(&c, Clock::System).unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.commit(vec![ev("a", &i.to_string(), 1)]).await })
        })
        .collect();
    let mut overloaded = 0;
    for t in tasks {
        if let Err(StoreError::Overloaded) = t.await.unwrap() {
            overloaded += 1;
        }
    }
    assert!(
        overloaded > 0,
        "a one-slot queue under 64 concurrent commits refuses some"
    );
    s.close().await;
}

#[tokio::test]
async fn sequence_numbers_survive_sweeping_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.dedup_ttl = Duration::from_secs(1);
    c.retention = Duration::from_secs(1);
    {
        let s = Store::open(&c, Clock::System).unwrap();
        for i in 0..3 {
            s.commit(vec![ev("a", &i.to_string(), 0)]).await.unwrap();
        }
        assert_eq!(s.sweep(1_000_000).await.unwrap(), 3);
        assert!(s.list(10, None).unwrap().is_empty());
        s.close().await;
    }
    // No event shows the last number any more: the floor does.
    let s = Store::open(&c, Clock::System).unwrap();
    assert_eq!(
        s.commit(vec![ev("a", "new", 2_000_000)]).await.unwrap()[0],
        Claim::Stored { seq: 4 }
    );
    s.close().await;
}

#[tokio::test]
async fn a_replays_order_number_is_not_reused_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let for_crm = |id: &str| NewEvent {
        endpoints: vec!["crm".into()],
        envelope: "A".into(),
        ..ev("a", id, 0)
    };
    {
        let s = Store::open(&cfg(dir.path()), Clock::System).unwrap();
        s.commit(vec![for_crm("1")]).await.unwrap();
        let dead = Next::DeadLetter {
            reason: "gone".into(),
        };
        s.http(vec![attempted(1, dead)]).await.unwrap();
        // The replay takes order number 2, which no event carries.
        let replay = HttpOp::Replay {
            seq: 1,
            endpoint: "crm".into(),
        };
        assert_eq!(s.http(vec![replay]).await.unwrap(), vec![true]);
        s.close().await;
    }
    let s = Store::open(&cfg(dir.path()), Clock::System).unwrap();
    assert_eq!(
        s.commit(vec![for_crm("2")]).await.unwrap()[0],
        Claim::Stored { seq: 3 }
    );
    // Envelope order holds: the replayed delivery first, then the new one.
    let due = |s: &Store| -> Vec<u64> {
        let due = s.due("crm", i64::MAX, 10, |_| false).unwrap();
        due.iter().map(|d| d.seq).collect()
    };
    assert_eq!(due(&s), vec![1]);
    s.http(vec![attempted(1, Next::Delivered)]).await.unwrap();
    assert_eq!(due(&s), vec![3]);
    s.close().await;
}

/// One stuck delivery (an endpoint down for days) must not stop retention for
/// everything newer: blocked events are skipped, the rest swept, across
/// several bounded steps.
#[tokio::test]
async fn a_stuck_delivery_does_not_stop_sweeping_what_comes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.dedup_ttl = Duration::from_secs(1);
    c.retention = Duration::from_secs(1);
    c.sweep_batch = 3;
    let s = Store::open(&c, Clock::System).unwrap();
    let mut stuck = ev("a", "stuck", 0);
    stuck.endpoints = vec!["down".into()];
    stuck.envelope = "env".into();
    let mut batch = vec![stuck];
    batch.extend((0..40).map(|i| ev("a", &format!("e{i}"), 0)));
    s.commit(batch).await.unwrap();
    // Sweep steps until done, as the sweeper does.
    let mut steps = 0;
    while s.sweep(1_000_000).await.unwrap() > 0 {
        steps += 1;
        assert!(steps < 100, "the sweep never finishes");
    }
    let left: Vec<u64> = s.list(100, None).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(
        left,
        vec![1],
        "only the event with the stuck delivery stays"
    );
    assert_eq!(s.stats().events_swept.load(Ordering::Relaxed), 40);
    s.close().await;
}
