//! Timers in the store, on a real database with the manual clock: scheduled
//! with the event that sends the envelope, fired once in one transaction with
//! their derived event (a failed commit keeps them for the retry), cancelled
//! by completion, and on disk, not in memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::StoreConfig;
use crate::envelope::timers::{Offset, Policy};
use crate::event::{Kind, SignatureEvent};
use crate::store::{NewEvent, Store};
use crate::time::Clock;

const DAY_MS: i64 = 86_400_000;

fn open(dir: &std::path::Path, clock: Clock, cache: usize) -> Store {
    let cfg = StoreConfig {
        path: dir.to_path_buf(),
        ..StoreConfig::default()
    };
    let policy = Policy {
        expire_after_ms: Some(10 * DAY_MS),
        reminders: vec![
            Offset::AfterSent(2 * DAY_MS),
            Offset::BeforeDeadline(DAY_MS),
        ],
        escalate_after_ms: None,
    };
    let tracking = Tracking {
        max_signers: 10,
        max_history: 100,
        cache_envelopes: cache,
        retention_ms: 1_000 * DAY_MS,
        stream_buffer: 64,
        route: Arc::new(|_: &SignatureEvent| (vec!["t".to_owned()], Vec::new())),
        policies: Arc::new(HashMap::from([("ds".to_owned(), policy)])),
    };
    Store::open_with(&cfg, clock, Some(tracking)).unwrap()
}

fn event(env: &str, kind: Kind, at: i64) -> NewEvent {
    NewEvent {
        source: "ds".into(),
        id: format!("{env}-{}", kind.as_str()),
        received_ms: at,
        json: b"{}".to_vec(),
        topics: Vec::new(),
        endpoints: Vec::new(),
        envelope: env.into(),
        traceparent: None,
        audit: None,
        held: false,
        facts: Some(Facts {
            envelope_id: env.into(),
            provider: "docusign".into(),
            kind,
            signer: None,
            occurred_at: None,
            received_at: crate::time::format_ms(at),
            late_route: None,
        }),
    }
}

fn kinds(s: &Store) -> Vec<String> {
    // The listing is newest first.
    s.list(100_000, None)
        .unwrap()
        .iter()
        .rev()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.json).unwrap())
        .filter(|v| v["origin"] == "countersign" && v["kind"] != "envelope.in_signing")
        .map(|v| {
            format!(
                "{} {}",
                v["envelope_id"].as_str().unwrap(),
                v["kind"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn timers_fire_once_in_the_firing_transaction_and_completion_cancels_them() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, manual) = Clock::manual(0);
    // A cache of one: envelopes come and go from disk between batches.
    let s = open(dir.path(), clock, 1);
    s.commit(vec![event("a", Kind::Sent, 0), event("b", Kind::Sent, 0)])
        .await
        .unwrap();
    assert_eq!(
        s.stats().timers_pending.get(),
        6,
        "2 reminders + overdue, each"
    );
    assert_eq!(s.next_timer_due().unwrap(), Some(2 * DAY_MS));
    assert_eq!(s.fire_timers(100).await.unwrap(), 0, "nothing due yet");

    // Day 2: the first reminders; a failed commit keeps them for the retry.
    manual.advance(Duration::from_millis(2 * DAY_MS as u64));
    s.fail_next_commit();
    assert!(s.fire_timers(100).await.is_err());
    assert!(kinds(&s).is_empty());
    assert_eq!(s.fire_timers(100).await.unwrap(), 2);
    assert_eq!(s.fire_timers(100).await.unwrap(), 0);
    assert_eq!(
        kinds(&s),
        ["a envelope.reminder_due", "b envelope.reminder_due"]
    );

    // b completes: its timers go with the event.
    s.commit(vec![event("b", Kind::Completed, 3 * DAY_MS)])
        .await
        .unwrap();
    assert_eq!(s.stats().timers_pending.get(), 2);
    // Day 10: a's reminder before the deadline (day 9) and its overdue, in
    // order, one at a time.
    manual.advance(Duration::from_millis(8 * DAY_MS as u64));
    assert_eq!(s.fire_timers(1).await.unwrap(), 1);
    assert_eq!(s.fire_timers(1).await.unwrap(), 1);
    assert_eq!(s.fire_timers(1).await.unwrap(), 0);
    let all = kinds(&s);
    assert_eq!(
        &all[2..],
        [
            "b envelope.all_signed",
            "a envelope.reminder_due",
            "a envelope.overdue"
        ]
    );
    assert_eq!(s.stats().timers_pending.get(), 0);
    let (env, _) = s.envelope("ds", "a").unwrap().unwrap();
    assert!(env.timers.pending.is_empty());
    assert_eq!(env.timers.fired.len(), 3);
    assert_eq!(
        s.stats()
            .timers_fired
            .with_label_values(&["reminder"])
            .get(),
        3
    );
}
