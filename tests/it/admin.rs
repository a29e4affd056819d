//! The admin API through a real socket, read as its [`api`] types: paging,
//! probes, and every error answer (status, JSON body, `Allow`).
//!
//! [`api`]: countersign::admin::api

use crate::common::*;
use countersign::admin::api::{ErrorBody, EventList, Health, Ready, Stats};

#[tokio::test]
async fn events_are_listed_newest_first_and_paged() {
    let gw = Gateway::start(SOURCES).await;
    let loaded = sources();
    for i in 0..5 {
        let mut req = signed(&loaded, fixture("sw"), &format!("msg_page_{i}"));
        req.path = "/hooks/sw".into();
        assert_eq!(send(gw.public, &req).await.status, 200);
    }
    let page: EventList = get(gw.admin, "/v1/events?limit=2").await.body();
    let ids: Vec<&str> = page
        .events
        .iter()
        .map(|e| e.event["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["msg_page_4", "msg_page_3"]);
    let next = page.next_before.unwrap();
    let rest: EventList = get(gw.admin, &format!("/v1/events?limit=10&before={next}"))
        .await
        .body();
    assert_eq!(rest.events.len(), 3);
    assert_eq!(rest.next_before, None);
    assert!(rest.events.iter().all(|e| e.state.status == "stored"));
    gw.stop().await;
}

#[tokio::test]
async fn probes_and_stats_answer_with_their_types() {
    let gw = Gateway::start(SOURCES).await;
    let h = get(gw.admin, "/healthz").await;
    assert_eq!((h.status, h.body::<Health>().status.as_str()), (200, "ok"));
    let r = get(gw.admin, "/readyz").await;
    assert_eq!(r.status, 200);
    let ready: Ready = r.body();
    assert_eq!(ready.status, "ready");
    assert!(ready.checks.serving && ready.checks.store);
    assert_eq!(ready.checks.kafka, None, "no kafka configured");
    let stats: Stats = get(gw.admin, "/v1/stats").await.body();
    assert_eq!(stats.webhooks["accepted"], 0);
    assert_eq!(stats.kafka, None);
    let m = get(gw.admin, "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    gw.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_json_errors() {
    let gw = Gateway::start(SOURCES).await;
    let error = |r: &Resp| r.body::<ErrorBody>().error;
    // Unknown paths and objects: 404.
    for path in [
        "/nope",
        "/v1/events/a/b",
        "/v1/dead-letters/replay",
        "/v1/dead-letters/no-sequence",
        "/v1/dead-letters/crm:1",
    ] {
        let r = get(gw.admin, path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(error(&r), "not found", "{path}");
    }
    let r = get(gw.admin, "/v1/events/nope").await;
    assert_eq!((r.status, error(&r).as_str()), (404, "no such event"));
    // Bad parameters: 400 naming the parameter.
    for (path, message) in [
        ("/v1/events?limit=0", "`limit` must be from 1 to 1000"),
        ("/v1/events?limit=x", "`limit` must be a whole number"),
        ("/v1/events?before=-1", "`before` must be a whole number"),
        (
            "/v1/dead-letters?limit=1001",
            "`limit` must be from 1 to 1000",
        ),
        (
            "/v1/dead-letters?after=x",
            "`after` must be a dead letter id",
        ),
    ] {
        let r = get(gw.admin, path).await;
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(error(&r), message, "{path}");
    }
    // Wrong methods: 405 with the methods the route takes.
    let call = |method: &'static str, path: &str| Req {
        method,
        path: path.into(),
        headers: vec![],
        body: vec![],
    };
    for (method, path, allow) in [
        ("POST", "/healthz", "GET,HEAD"),
        ("DELETE", "/v1/events", "GET,HEAD"),
        ("POST", "/v1/dead-letters/crm:1", "GET,HEAD,DELETE"),
        ("GET", "/v1/endpoints/crm/enable", "POST"),
    ] {
        let r = send(gw.admin, &call(method, path)).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(error(&r), "method not allowed");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    // Replaying all of an endpoint's needs the endpoint; an unknown one is 404.
    let r = send(gw.admin, &call("POST", "/v1/dead-letters/replay")).await;
    assert_eq!(r.status, 400);
    assert!(error(&r).contains("?endpoint="));
    let r = send(gw.admin, &call("POST", "/v1/endpoints/nope/enable")).await;
    assert_eq!(r.status, 404);
    // Nothing changed.
    assert_eq!(event_count(gw.admin).await, 0);
    gw.stop().await;
}
