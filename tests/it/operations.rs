//! Operating the gateway: Prometheus metrics moving for their causes (and
//! passing `promtool check metrics`), ingress rate limits, load shedding,
//! slow clients cut off, and graceful shutdown finishing in-flight work.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::metrics::{Scrape, promtool_check};
use crate::common::receiver::{Receiver, Reply};
use crate::common::{
    Gateway, Req, SOURCES, event_count, eventually, get, send, sign_for, sources, with_server_keys,
};
use countersign::time::Clock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn sw(envelope: &str, id: &str) -> Req {
    let body = format!(r#"{{"type":"envelope.completed","data":{{"envelope_id":"{envelope}"}}}}"#);
    sign_for(
        &sources(),
        "sw",
        body.as_bytes(),
        countersign::time::Clock::System.now_ms() / 1000,
        id,
    )
}

/// Waits until `n` webhook requests are in flight (per the metrics).
async fn wait_in_flight(admin: SocketAddr, n: u8) {
    eventually(
        &format!("{n} requests in flight"),
        Duration::from_secs(20),
        async || {
            (Scrape::take(admin)
                .await
                .get("countersign_requests_in_flight", &[])
                == f64::from(n))
            .then_some(())
        },
    )
    .await;
}

/// [`config_text`] with `keys` (TOML lines) added under `[server]`.

#[tokio::test]
async fn metrics_move_for_their_causes_and_pass_promtool() {
    let good = Receiver::ok(Clock::System).await;
    let bad = Receiver::start(Clock::System, |_, _| Reply::Status(500)).await;
    let extra = format!(
        r#"{SOURCES}
[[endpoints]]
id = "good"
url = "http://{}/in"
secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
allow_private = true

[[endpoints]]
id = "bad"
url = "http://{}/in"
secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
allow_private = true
max_attempts = 1
breaker = {{ failures = 1, cooldown = "1h" }}

[[routes]]
endpoints = ["good", "bad"]
"#,
        good.addr, bad.addr
    );
    let gw = Gateway::start(&extra).await;
    let before = Scrape::take(gw.admin).await;
    promtool_check(&before.text);
    assert_eq!(before.webhooks("sw", "accepted"), 0.0);
    assert_eq!(
        before.get(
            "countersign_http_breaker_state",
            &[("endpoint", "bad"), ("state", "closed")]
        ),
        1.0
    );
    assert!(before.text.contains("countersign_build_info{version=\""));
    assert_eq!(before.get("countersign_ready", &[]), 1.0);

    // accepted, then a duplicate of it
    assert_eq!(send(gw.public, &sw("env-1", "msg_1")).await.status, 200);
    assert_eq!(send(gw.public, &sw("env-1", "msg_1")).await.status, 200);
    // unauthorized
    let mut forged = sw("env-2", "msg_2");
    forged.body.push(b' ');
    assert_eq!(send(gw.public, &forged).await.status, 401);
    // invalid: signed, but not an event
    let req = sign_for(&sources(), "yousign", b"{not json", 0, "x");
    assert_eq!(send(gw.public, &req).await.status, 400);
    // too large
    let big = Req {
        method: "POST",
        path: "/hooks/sw".into(),
        headers: vec![],
        body: vec![b'x'; 2 * 1024 * 1024],
    };
    assert_eq!(send(gw.public, &big).await.status, 413);
    // unknown source: labelled `_unknown`, never by the path
    let nobody = Req {
        method: "POST",
        path: "/hooks/no-such-source".into(),
        headers: vec![],
        body: b"{}".to_vec(),
    };
    assert_eq!(send(gw.public, &nobody).await.status, 404);

    // The good endpoint delivers; the bad one dead-letters and opens its breaker.
    good.wait_hits(1).await;
    bad.wait_hits(1).await;
    eventually("the dead letter", Duration::from_secs(20), async || {
        (Scrape::take(gw.admin)
            .await
            .get("countersign_http_dead_letters", &[("endpoint", "bad")])
            == 1.0)
            .then_some(())
    })
    .await;
    // Another event waits behind the open breaker.
    assert_eq!(send(gw.public, &sw("env-3", "msg_3")).await.status, 200);
    good.wait_hits(2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let m = Scrape::take(gw.admin).await;
    promtool_check(&m.text);
    assert_eq!(m.webhooks("sw", "accepted"), 2.0);
    assert_eq!(m.webhooks("sw", "duplicate"), 1.0);
    assert_eq!(m.webhooks("sw", "unauthorized"), 1.0);
    assert_eq!(m.webhooks("yousign", "invalid"), 1.0);
    assert_eq!(m.webhooks("sw", "too_large"), 1.0);
    assert_eq!(m.webhooks("_unknown", "unknown_source"), 1.0);
    assert!(!m.text.contains("no-such-source"));
    assert_eq!(
        m.get(
            "countersign_ingest_duration_seconds_count",
            &[("source", "sw")]
        ),
        5.0
    );
    assert!(m.get("countersign_store_commit_duration_seconds_count", &[]) >= 2.0);
    assert!(m.get("countersign_store_commit_batch_size_sum", &[]) >= 2.0);

    let ep = |name: &str, e: &str| m.get(name, &[("endpoint", e)]);
    let ep_out = |name: &str, e: &str, o: &str| m.get(name, &[("endpoint", e), ("outcome", o)]);
    assert_eq!(
        ep_out("countersign_http_attempts_total", "good", "success"),
        2.0
    );
    assert_eq!(
        ep_out("countersign_http_deliveries_total", "good", "delivered"),
        2.0
    );
    assert_eq!(
        ep_out("countersign_http_attempts_total", "bad", "retryable"),
        1.0
    );
    assert_eq!(
        ep_out("countersign_http_deliveries_total", "bad", "dead_lettered"),
        1.0
    );
    assert_eq!(
        ep("countersign_http_request_duration_seconds_count", "good"),
        2.0
    );
    assert_eq!(
        ep("countersign_http_delivery_lag_seconds_count", "good"),
        2.0
    );
    assert_eq!(ep("countersign_http_delivery_attempts_count", "bad"), 1.0);
    assert_eq!(ep("countersign_http_delivery_attempts_sum", "bad"), 1.0);
    assert_eq!(ep("countersign_http_dead_letters", "bad"), 1.0);
    assert_eq!(ep("countersign_http_dead_letters", "good"), 0.0);
    assert_eq!(ep("countersign_http_pending_deliveries", "bad"), 1.0);
    assert_eq!(ep("countersign_http_pending_deliveries", "good"), 0.0);
    assert!(ep("countersign_http_oldest_pending_age_seconds", "bad") > 0.0);
    assert_eq!(
        ep("countersign_http_oldest_pending_age_seconds", "good"),
        0.0
    );
    let state = |s: &str| {
        m.get(
            "countersign_http_breaker_state",
            &[("endpoint", "bad"), ("state", s)],
        )
    };
    assert_eq!((state("closed"), state("open")), (0.0, 1.0));
    gw.stop().await;
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after_and_nothing_is_stored() {
    let extra = format!("{SOURCES}\n[server.client_rate_limit]\nper_second = 0.1\nburst = 2\n",);
    let toml = |dir: &std::path::Path| {
        with_server_keys(dir, &extra, "client_ip_header = \"x-forwarded-for\"\n")
    };
    let gw = Gateway::start_with(toml, Clock::System).await;
    let from = |ip: &str, id: &str| {
        let mut r = sw("env", id);
        r.headers
            .push(("X-Forwarded-For".into(), format!("198.51.100.1, {ip}")));
        r
    };
    assert_eq!(
        send(gw.public, &from("203.0.113.5", "m1")).await.status,
        200
    );
    assert_eq!(
        send(gw.public, &from("203.0.113.5", "m2")).await.status,
        200
    );
    let r = send(gw.public, &from("203.0.113.5", "m3")).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    // Another client is not held back by the first.
    assert_eq!(
        send(gw.public, &from("203.0.113.6", "m4")).await.status,
        200
    );
    assert_eq!(event_count(gw.admin).await, 3);
    assert!(get(gw.admin, "/v1/events/m3").await.status == 404);
    let m = Scrape::take(gw.admin).await;
    assert_eq!(m.webhooks("sw", "rate_limited"), 1.0);
    gw.stop().await;
}

#[tokio::test]
async fn a_source_over_its_rate_gets_429_and_forged_requests_do_not_count() {
    let extra = r#"
[[sources]]
id = "sw"
provider = "standard_webhooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
rate_limit = { per_second = 0.05, burst = 1 }
"#;
    let gw = Gateway::start(extra).await;
    for i in 0..5 {
        let mut forged = sw("env", &format!("f{i}"));
        forged.body.push(b' ');
        assert_eq!(send(gw.public, &forged).await.status, 401);
    }
    assert_eq!(send(gw.public, &sw("env", "m1")).await.status, 200);
    let r = send(gw.public, &sw("env", "m2")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("20"));
    assert_eq!(event_count(gw.admin).await, 1);
    // The provider retries later with the same id: it was never claimed.
    let m = Scrape::take(gw.admin).await;
    assert_eq!(m.webhooks("sw", "rate_limited"), 1.0);
    assert_eq!(m.webhooks("sw", "unauthorized"), 5.0);
    gw.stop().await;
}

/// Sends a request head declaring `len` body bytes and `part` of the body.
async fn start_request(addr: SocketAddr, req: &Req, part: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n",
        req.path,
        req.body.len()
    );
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&req.body[..part]).await.unwrap();
    s
}

/// Reads until the peer closes (or 10 s pass); returns what was read.
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server closes the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// Clients trickling their bodies use up their own share of open requests
/// (`max_requests_per_client`), not the processing slots
/// (`max_requests_in_flight`, taken once a body is in): honest traffic is
/// served meanwhile.
#[tokio::test]
async fn slow_bodies_take_their_clients_share_not_everyones_slots() {
    let toml = |dir: &std::path::Path| {
        with_server_keys(
            dir,
            SOURCES,
            "max_requests_in_flight = 1\nmax_requests_per_client = 2\nclient_ip_header = \"x-forwarded-for\"\n",
        )
    };
    let gw = Gateway::start_with(toml, Clock::System).await;
    let from = |ip: &str, id: &str| {
        let mut r = sw("env", id);
        r.headers.push(("X-Forwarded-For".into(), ip.into()));
        r
    };
    let slow = "198.51.100.1";
    let held_1 = from(slow, "held-1");
    let held_2 = from(slow, "held-2");
    let mut s1 = start_request(gw.public, &held_1, 10).await;
    let mut s2 = start_request(gw.public, &held_2, 10).await;
    wait_in_flight(gw.admin, 2).await;
    // The only processing slot is free: another client is served at once.
    assert_eq!(
        send(gw.public, &from("198.51.100.2", "honest"))
            .await
            .status,
        200
    );
    // The slow client has used up its share.
    let r = send(gw.public, &from(slow, "third")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    for (s, req) in [(&mut s1, &held_1), (&mut s2, &held_2)] {
        s.write_all(&req.body[10..]).await.unwrap();
        let answer = read_answer(s).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    assert_eq!(send(gw.public, &from(slow, "after")).await.status, 200);
    let m = Scrape::take(gw.admin).await;
    assert_eq!(m.webhooks("sw", "rate_limited"), 1.0);
    assert_eq!(event_count(gw.admin).await, 4);
    gw.stop().await;
}

/// Reads one answer's head and as much body as arrives at once.
async fn read_answer(s: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let toml = |dir: &std::path::Path| {
        with_server_keys(
            dir,
            SOURCES,
            "header_read_timeout = \"1s\"\nbody_read_timeout = \"1s\"\n",
        )
    };
    let gw = Gateway::start_with(toml, Clock::System).await;
    // Slowloris: a header line every 300 ms, never finishing the head.
    let mut s = TcpStream::connect(gw.public).await.unwrap();
    s.write_all(b"POST /hooks/sw HTTP/1.1\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut cut = false;
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if s.write_all(format!("x-pad-{i}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = true;
            break;
        }
        let mut b = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut b)).await {
            // An answer (408) or end of stream: cut off either way.
            let _ = n;
            cut = true;
            break;
        }
    }
    assert!(
        cut,
        "a trickling head kept its connection for {:?}",
        started.elapsed()
    );
    // An idle connection that never sends a byte is closed too.
    let mut idle = TcpStream::connect(gw.public).await.unwrap();
    read_to_close(&mut idle).await;
    // A body that trickles: 408, connection closed, nothing stored.
    let req = sw("env", "trickle");
    let mut s = start_request(gw.public, &req, 5).await;
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(event_count(gw.admin).await, 0);
    let m = Scrape::take(gw.admin).await;
    assert_eq!(m.webhooks("sw", "timeout"), 1.0);
    // A client that vanishes mid-body leaves nothing in flight.
    let gone = start_request(gw.public, &sw("env", "gone"), 5).await;
    let admin = gw.admin;
    wait_in_flight(admin, 1).await;
    drop(gone);
    wait_in_flight(admin, 0).await;
    // The gateway still serves.
    assert_eq!(send(gw.public, &sw("env", "ok")).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn shutdown_turns_unready_at_once_and_finishes_requests_in_flight() {
    let toml =
        |dir: &std::path::Path| with_server_keys(dir, SOURCES, "shutdown_timeout = \"10s\"\n");
    let gw = Gateway::start_with(toml, Clock::System).await;
    let (public, admin) = (gw.public, gw.admin);
    let req = sw("env", "in-flight");
    let mut s = start_request(public, &req, 10).await;
    wait_in_flight(admin, 1).await;
    let stopping = tokio::spawn(gw.stop());
    eventually("unready", Duration::from_secs(20), async || {
        (get(admin, "/readyz").await.status == 503).then_some(())
    })
    .await;
    // No new connections are taken on the public listener.
    eventually(
        "the public listener to close",
        Duration::from_secs(20),
        async || (TcpStream::connect(public).await.is_err()).then_some(()),
    )
    .await;
    assert!(
        !stopping.is_finished(),
        "shutdown must wait for the request"
    );
    s.write_all(&req.body[10..]).await.unwrap();
    let answer = read_answer(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let stopped = tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown completes once the request is done")
        .unwrap();
    // The event it took is in the store.
    let gw = stopped.start().await;
    assert_eq!(get(gw.admin, "/v1/events/in-flight").await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn shutdown_gives_up_on_stalled_requests_at_the_deadline() {
    let toml = |dir: &std::path::Path| {
        with_server_keys(
            dir,
            SOURCES,
            "shutdown_timeout = \"1s\"\nbody_read_timeout = \"1h\"\n",
        )
    };
    let gw = Gateway::start_with(toml, Clock::System).await;
    let req = sw("env", "stalled");
    let _s = start_request(gw.public, &req, 10).await;
    let admin = gw.admin;
    wait_in_flight(admin, 1).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), gw.stop())
        .await
        .expect("shutdown ends at its deadline");
    assert!(started.elapsed() >= Duration::from_millis(900));
}
