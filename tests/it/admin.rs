//! The admin API through a real socket, read as its [`api`] types: paging,
//! probes, and every error answer (status, JSON body, `Allow`).
//!
//! [`api`]: countersign::admin::api

use crate::common::*;
use countersign::admin::api::{ErrorBody, EventList, Health, Ready, Stats};

/// The admin listener has threads of its own: it answers while the runtime
/// that answers webhooks (this test's single thread) is stalled.
#[tokio::test]
async fn the_admin_listener_answers_while_the_webhook_runtime_is_stalled() {
    let gw = Gateway::start(SOURCES).await;
    let admin = gw.admin;
    let probe = std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(admin).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    // Blocks this thread, and with it the gateway's main runtime.
    let answer = probe.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    gw.stop().await;
}

#[tokio::test]
async fn events_are_listed_newest_first_and_paged() {
    let gw = Gateway::start(SOURCES).await;
    let loaded = sources();
    for i in 0..5 {
        let req = sw_hook(&loaded, &format!("msg_page_{i}"));
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

const TOKEN: &str = "adm-0123456789abcdef";

fn call(method: &'static str, path: &str, headers: &[(&str, &str)]) -> Req {
    Req {
        method,
        path: path.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: vec![],
    }
}

#[tokio::test]
async fn with_a_token_every_route_but_the_probes_and_metrics_needs_it() {
    let gw = Gateway::start_with_server_keys(
        SOURCES,
        &format!(
            "admin_token = \"{TOKEN}\"
"
        ),
    )
    .await;
    let bearer = format!("Bearer {TOKEN}");
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get(gw.admin, path).await.status, 200, "{path}");
    }
    for (method, path) in [
        ("GET", "/v1/events"),
        ("GET", "/v1/events/x"),
        ("GET", "/v1/stats"),
        ("GET", "/v1/dead-letters"),
        ("POST", "/v1/dead-letters/replay?endpoint=e"),
        ("DELETE", "/v1/dead-letters/e:1"),
        ("GET", "/v1/endpoints"),
        ("POST", "/v1/endpoints/e/enable"),
        ("GET", "/nope"),
    ] {
        let r = send(gw.admin, &call(method, path, &[])).await;
        assert_eq!(r.status, 401, "{method} {path}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        let wrong = send(
            gw.admin,
            &call(
                method,
                path,
                &[("authorization", "Bearer nope-nope-nope-nope")],
            ),
        )
        .await;
        assert_eq!(wrong.status, 401, "{method} {path}");
    }
    let ok = send(
        gw.admin,
        &call("GET", "/v1/events", &[("authorization", &bearer)]),
    )
    .await;
    assert_eq!(ok.status, 200);
    // The dlq CLI takes the token from the environment (or --config).
    let admin = format!("http://{}", gw.admin);
    let out = tokio::task::spawn_blocking(move || {
        let run = |token: Option<&str>| {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_countersign"));
            c.args(["dlq", "list", "--admin", &admin]);
            c.env_remove("COUNTERSIGN_ADMIN_TOKEN");
            if let Some(t) = token {
                c.env("COUNTERSIGN_ADMIN_TOKEN", t);
            }
            c.output().unwrap()
        };
        (run(None), run(Some(TOKEN)))
    })
    .await
    .unwrap();
    assert!(!out.0.status.success());
    assert!(String::from_utf8_lossy(&out.0.stderr).contains("COUNTERSIGN_ADMIN_TOKEN"));
    assert!(
        out.1.status.success(),
        "{}",
        String::from_utf8_lossy(&out.1.stderr)
    );
    gw.stop().await;
}

#[tokio::test]
async fn host_names_other_than_ips_localhost_and_configured_ones_are_refused() {
    let gw =
        Gateway::start_with_server_keys(SOURCES, "admin_hosts = [\"countersign-admin.ops.svc\"]\n")
            .await;
    for host in ["evil.example:9090", "127.0.0.1.nip.io"] {
        let r = send(gw.admin, &call("GET", "/v1/events", &[("host", host)])).await;
        assert_eq!(r.status, 403, "{host}");
    }
    for host in [
        "localhost:9090",
        "countersign-admin.ops.svc:9090",
        "10.0.0.1",
    ] {
        let r = send(gw.admin, &call("GET", "/v1/events", &[("host", host)])).await;
        assert_eq!(r.status, 200, "{host}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn an_events_page_stops_before_the_response_size_cap() {
    let gw = Gateway::start_with_server_keys(SOURCES, "admin_max_response_bytes = 4096\n").await;
    let loaded = sources();
    for i in 0..30 {
        let req = sw_hook(&loaded, &format!("msg_big_{i}"));
        assert_eq!(send(gw.public, &req).await.status, 200);
    }
    let page = get(gw.admin, "/v1/events?limit=1000").await;
    assert!(page.body.len() <= 4096 + 2048, "{}", page.body.len());
    let page: EventList = page.body();
    assert!(!page.events.is_empty() && page.events.len() < 30);
    // Paging on collects every event.
    let mut seen = page.events.len();
    let mut next = page.next_before;
    while let Some(before) = next {
        let p: EventList = get(gw.admin, &format!("/v1/events?limit=1000&before={before}"))
            .await
            .body();
        seen += p.events.len();
        next = p.next_before;
    }
    assert_eq!(seen, 30);
    gw.stop().await;
}

/// Deliveries of an endpoint removed from the config are kept (and reported),
/// and can be purged; a configured endpoint's cannot.
#[tokio::test]
async fn deliveries_of_a_removed_endpoint_can_be_purged() {
    use crate::common::receiver::{Receiver, Reply};
    let rx = Receiver::start(countersign::time::Clock::System, |_, _| Reply::Status(503)).await;
    let endpoint = format!(
        "[[endpoints]]\nid = \"old\"\nurl = \"http://{}/h\"\nsecret = \"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\nallow_private = true\nretry_schedule = [\"1h\"]\n\n[[routes]]\nendpoints = [\"old\"]\n",
        rx.addr
    );
    let gw = Gateway::start(&format!("{SOURCES}\n{endpoint}")).await;
    let loaded = sources();
    let req = sw_hook(&loaded, "msg_old_1");
    assert_eq!(send(gw.public, &req).await.status, 200);
    rx.wait_hits(1).await;
    let conflict = send(
        gw.admin,
        &call("DELETE", "/v1/endpoints/old/deliveries", &[]),
    )
    .await;
    assert_eq!(conflict.status, 409, "a configured endpoint is not purged");
    let stopped = gw.stop().await;
    let gw = stopped
        .start_changed(|toml| toml.replace(&endpoint, ""))
        .await;
    let view: countersign::admin::api::EventView =
        get(gw.admin, "/v1/events/msg_old_1").await.body();
    assert_eq!(
        view.state.http[0].status, "scheduled",
        "kept after the removal"
    );
    let purged: countersign::admin::api::Purged = send(
        gw.admin,
        &call("DELETE", "/v1/endpoints/old/deliveries", &[]),
    )
    .await
    .body();
    assert_eq!(purged.purged, 1);
    let view: countersign::admin::api::EventView =
        get(gw.admin, "/v1/events/msg_old_1").await.body();
    assert_eq!(view.state.http[0].status, "discarded");
    assert!(
        view.state.http[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("purged")
    );
    gw.stop().await;
}

/// Outbox entries left from when Kafka was on show in /readyz once it is off
/// (they keep their events from being swept until Kafka is back).
#[tokio::test]
async fn outbox_entries_without_kafka_show_in_readyz() {
    let kafka = "[kafka]\nbrokers = \"127.0.0.1:1\"\ndefault_topic = \"t\"\n";
    // A short drain: the messages in flight to the absent broker are given up.
    let gw = Gateway::start_with_server_keys(
        &format!("{SOURCES}\n{kafka}"),
        "shutdown_timeout = \"1s\"\n",
    )
    .await;
    let loaded = sources();
    for i in 0..3 {
        let req = sw_hook(&loaded, &format!("msg_ob_{i}"));
        assert_eq!(send(gw.public, &req).await.status, 200);
    }
    let before: Ready = get(gw.admin, "/readyz").await.body();
    assert_eq!(before.checks.outbox_without_kafka, None, "Kafka is on");
    let gw = gw
        .stop()
        .await
        .start_changed(|toml| toml.replace(kafka, ""))
        .await;
    let r = get(gw.admin, "/readyz").await;
    assert_eq!(r.status, 200, "reported, not unready");
    let ready: Ready = r.body();
    assert_eq!(ready.checks.outbox_without_kafka, Some(3));
    gw.stop().await;
}
