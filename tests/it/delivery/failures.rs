//! Deliveries that fail: Retry-After pauses, permanent failures and replay,
//! exhausted attempts, 410 Gone, per-envelope order, the circuit breaker.

use super::*;
use countersign::admin::api::{DeadLetterDetail, DeadLetterList, ReplayedAll};

#[tokio::test]
async fn retry_after_on_429_pauses_the_endpoint_for_exactly_that_long() {
    let s = setup("", |_, earlier| {
        if earlier.is_empty() {
            Reply::WithHeader(429, "retry-after", "120".into())
        } else {
            Reply::Status(200)
        }
    })
    .await;
    s.hook("env-1", "completed", "msg_t1").await;
    let d = s.recorded("msg_t1", 1).await;
    assert_eq!(
        ms(&d.next_attempt_at) - s.clock.now_ms(),
        120_000,
        "no jitter on Retry-After"
    );
    assert_eq!(s.endpoint_state().await.state, "paused");
    // Another envelope waits too: the receiver asked the endpoint to slow down.
    s.hook("env-2", "completed", "msg_t2").await;
    s.rx.assert_stays_at(1).await;
    s.manual.advance(Duration::from_secs(120));
    s.rx.wait_hits(3).await;
    assert_eq!(s.recorded("msg_t1", 2).await.status, "delivered");
    assert_eq!(s.recorded("msg_t2", 1).await.status, "delivered");
    s.gw.stop().await;
}

#[tokio::test]
async fn permanent_failures_dead_letter_at_once_and_replay_delivers_again() {
    let s = setup("", |_, _| Reply::Status(400)).await;
    for id in ["msg_a", "msg_b", "msg_c", "msg_d"] {
        s.hook(&format!("env-{id}"), "completed", id).await;
    }
    for id in ["msg_a", "msg_b", "msg_c", "msg_d"] {
        let d = s.recorded(id, 1).await;
        assert_eq!(d.status, "dead_lettered");
        assert!(
            d.reason
                .as_deref()
                .unwrap()
                .starts_with("permanent failure: HTTP 400"),
            "{d:?}"
        );
    }
    let list: DeadLetterList = get(s.gw.admin, "/v1/dead-letters?endpoint=crm")
        .await
        .body();
    let ids: Vec<&str> = list.dead_letters.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), 4);
    let a = ids[0].to_owned();
    let one: DeadLetterDetail = get(s.gw.admin, &format!("/v1/dead-letters/{a}"))
        .await
        .body();
    assert_eq!(one.summary.event_id, "msg_a");
    assert_eq!(one.event["id"], "msg_a");
    assert_eq!(one.history[0].status, Some(400));

    s.rx.set(|_, _| Reply::Status(200));
    assert_eq!(
        s.post(&format!("/v1/dead-letters/{a}/replay")).await.status,
        200
    );
    let d = s.recorded("msg_a", 2).await;
    assert_eq!(d.status, "delivered");
    assert_eq!(d.history[0].status, Some(400), "replay keeps the history");
    assert_eq!(
        s.post(&format!("/v1/dead-letters/{a}/replay")).await.status,
        404,
        "not a dead letter any more"
    );

    // Discard one; replay the rest of the endpoint's in bulk.
    let b = ids[1].to_owned();
    assert_eq!(
        admin_call(s.gw.admin, "DELETE", &format!("/v1/dead-letters/{b}"))
            .await
            .status,
        200
    );
    assert_eq!(s.delivery("msg_b").await.status, "discarded");
    let r: ReplayedAll = s.post("/v1/dead-letters/replay?endpoint=crm").await.body();
    assert_eq!(r.replayed, 2);
    for id in ["msg_c", "msg_d"] {
        assert_eq!(s.recorded(id, 2).await.status, "delivered");
    }
    let left: DeadLetterList = get(s.gw.admin, "/v1/dead-letters").await.body();
    assert!(left.dead_letters.is_empty());
    assert_eq!(
        s.rx.hits()
            .iter()
            .filter(|h| h.header("webhook-id") == "msg_b")
            .count(),
        1
    );
    s.gw.stop().await;
}

#[tokio::test]
async fn exhausted_attempts_dead_letter_with_the_whole_history() {
    let s = setup(
        r#"max_attempts = 3
retry_schedule = ["1s"]"#,
        |_, _| Reply::Status(502),
    )
    .await;
    s.hook("env-1", "completed", "msg_x").await;
    for attempt in 1..=2 {
        s.recorded("msg_x", attempt).await;
        s.advance_to_next("msg_x").await;
    }
    let d = s.recorded("msg_x", 3).await;
    assert_eq!(d.status, "dead_lettered");
    assert!(
        d.reason
            .as_deref()
            .unwrap()
            .starts_with("gave up after 3 attempts; last: HTTP 502"),
        "{d:?}"
    );
    assert_eq!(d.history.len(), 3);
    s.gw.stop().await;
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_nothing_is_lost() {
    let s = setup("", |_, earlier| {
        if earlier.is_empty() {
            Reply::Status(410)
        } else {
            Reply::Status(200)
        }
    })
    .await;
    s.hook("env-1", "completed", "msg_g1").await;
    s.recorded("msg_g1", 1).await;
    let ep = s.endpoint_state().await;
    assert_eq!(ep.state, "disabled");
    assert!(ep.disabled.as_ref().unwrap().reason.contains("410"));
    s.hook("env-2", "completed", "msg_g2").await;
    s.manual.advance(Duration::from_secs(86_400));
    s.rx.assert_stays_at(1).await;
    assert_eq!(s.endpoint_state().await.pending, Some(2));
    assert_eq!(s.post("/v1/endpoints/nope/enable").await.status, 404);
    assert_eq!(s.post("/v1/endpoints/crm/enable").await.status, 200);
    s.rx.wait_hits(3).await;
    let d = s.recorded("msg_g1", 2).await;
    assert_eq!(d.status, "delivered");
    assert_eq!(s.recorded("msg_g2", 1).await.status, "delivered");
    assert_eq!(s.endpoint_state().await.state, "closed");
    s.gw.stop().await;
}

#[tokio::test]
async fn an_envelope_waits_for_its_own_failed_delivery_while_others_flow() {
    // env-A's first event fails twice; env-B is never held up by it.
    let s = setup(r#"retry_schedule = ["10s"]"#, |hit, earlier| {
        let a_tries = earlier
            .iter()
            .filter(|h| h.header("webhook-id") == "a1")
            .count();
        if hit.header("webhook-id") == "a1" && a_tries < 2 {
            Reply::Status(500)
        } else {
            Reply::Status(200)
        }
    })
    .await;
    let order = [
        ("env-A", "a1"),
        ("env-B", "b1"),
        ("env-A", "a2"),
        ("env-B", "b2"),
        ("env-A", "a3"),
        ("env-B", "b3"),
    ];
    for (env, id) in order {
        s.hook(env, "signed", id).await;
    }
    s.recorded("b3", 1).await;
    let ids = |hits: &[Hit]| {
        hits.iter()
            .map(|h| h.header("webhook-id").to_owned())
            .collect::<Vec<_>>()
    };
    let sent = ids(&s.rx.hits());
    assert!(
        !sent.contains(&"a2".to_owned()) && !sent.contains(&"a3".to_owned()),
        "{sent:?}"
    );
    assert_eq!(
        sent.iter()
            .filter(|i| i.starts_with('b'))
            .collect::<Vec<_>>(),
        ["b1", "b2", "b3"]
    );
    assert_eq!(s.delivery("a2").await.status, "waiting");
    s.advance_to_next("a1").await;
    s.recorded("a1", 2).await;
    s.advance_to_next("a1").await;
    assert_eq!(s.recorded("a3", 1).await.status, "delivered");
    let a: Vec<String> = ids(&s.rx.hits())
        .into_iter()
        .filter(|i| i.starts_with('a'))
        .collect();
    assert_eq!(a, ["a1", "a1", "a1", "a2", "a3"]);
    s.gw.stop().await;
}

#[tokio::test]
async fn the_breaker_opens_probes_after_the_cooldown_and_closes_on_success() {
    let s = setup(
        r#"max_in_flight = 1
retry_schedule = ["1s"]
breaker = { failures = 3, cooldown = "30s" }"#,
        |_, _| Reply::Status(500),
    )
    .await;
    for i in 0..5 {
        s.hook(&format!("env-{i}"), "completed", &format!("msg_{i}"))
            .await;
    }
    s.rx.wait_hits(3).await;
    s.rx.assert_stays_at(3).await;
    assert_eq!(s.endpoint_state().await.state, "open");
    // Retries fall due, but nothing is sent while open.
    s.manual.advance(Duration::from_secs(29));
    s.rx.assert_stays_at(3).await;
    // Cool-down over: exactly one probe, which fails: open again, for 60 s.
    s.manual.advance(Duration::from_secs(1));
    s.rx.wait_hits(4).await;
    s.rx.assert_stays_at(4).await;
    assert_eq!(s.endpoint_state().await.state, "open");
    s.rx.set(|_, _| Reply::Status(200));
    s.manual.advance(Duration::from_secs(59));
    s.rx.assert_stays_at(4).await;
    s.manual.advance(Duration::from_secs(1));
    // Everything is delivered once the probe succeeds, none lost.
    for i in 0..5 {
        let id = format!("msg_{i}");
        eventually(
            format!("{id} delivered"),
            Duration::from_secs(5),
            async || (s.delivery(&id).await.status == "delivered").then_some(()),
        )
        .await;
    }
    assert_eq!(s.endpoint_state().await.state, "closed");
    s.gw.stop().await;
}
