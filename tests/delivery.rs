//! HTTP fan-out end to end: webhooks into a gateway, signed deliveries out to
//! real receivers on 127.0.0.1:0 scripted to fail, hang, throttle or vanish.
//! Time is a manual clock the test moves: retry spacing, breaker cool-downs and
//! rate limits are checked without sleeping through them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::receiver::{Hit, Receiver, Reply, verify_hit, verify_standard_webhooks};
use common::{Gateway, config_text, get, send, sign_for};
use countersign::app::Loaded;
use countersign::sink::clock::{Clock, Manual};
use serde_json::Value;

/// The endpoint's signing secret (the receiver verifies with it).
const OUT_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const SOURCE: &str = r#"
[[sources]]
id = "sw"
provider = "standard_webhooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
"#;

struct Setup {
    gw: Gateway,
    rx: Receiver,
    clock: Clock,
    manual: Arc<Manual>,
    loaded: Loaded,
    dir: tempfile::TempDir,
    toml: String,
}

/// Endpoint `crm` at the receiver; `extra` adds or overrides endpoint keys.
fn endpoint(rx: &Receiver, extra: &str) -> String {
    format!(
        r#"
[[endpoints]]
id = "crm"
url = "http://{}/hooks/signature?tenant=7"
secret = "{OUT_SECRET}"
allow_private = true
timeout = "400ms"
headers = {{ Authorization = "Bearer t0ken" }}
{extra}

[[routes]]
endpoints = ["crm"]
"#,
        rx.addr
    )
}

/// A manual clock an hour ahead of real time, so deliveries queued at real
/// time are due at once and retries wait for the test.
fn clock() -> (Clock, Arc<Manual>) {
    Clock::manual(countersign::time::now_ms() + 3_600_000)
}

async fn setup(extra: &str, script: impl Fn(&Hit, &[Hit]) -> Reply + Send + 'static) -> Setup {
    let (clock, manual) = clock();
    let rx = Receiver::start(clock.clone(), script).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = config_text(dir.path(), &format!("{SOURCE}{}", endpoint(&rx, extra)));
    let gw = Gateway::start_with_clock(&toml, clock.clone()).await;
    let loaded = countersign::app::load_str(&toml).unwrap();
    Setup {
        gw,
        rx,
        clock,
        manual,
        loaded,
        dir,
        toml,
    }
}

impl Setup {
    /// Sends a Standard Webhooks webhook (event id `id`) for `envelope`.
    async fn hook(&self, envelope: &str, kind: &str, id: &str) {
        self.hook_with(envelope, kind, id, &[]).await;
    }

    async fn hook_with(&self, envelope: &str, kind: &str, id: &str, headers: &[(&str, &str)]) {
        let body = format!(r#"{{"type":"envelope.{kind}","data":{{"envelope_id":"{envelope}"}}}}"#);
        let now = countersign::time::now_ms() / 1000;
        let mut req = sign_for(&self.loaded, "sw", body.as_bytes(), now, id);
        req.headers
            .extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let resp = send(self.gw.public, &req).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
    }

    /// The delivery record of event `id` to `crm`, from the admin API.
    async fn delivery(&self, id: &str) -> Value {
        let v = get(self.gw.admin, &format!("/v1/events/{id}")).await.json();
        v["state"]["http"][0].clone()
    }

    /// Waits until event `id`'s delivery has `attempts` recorded.
    async fn recorded(&self, id: &str, attempts: u64) -> Value {
        for _ in 0..2000 {
            let d = self.delivery(id).await;
            if d["attempts"].as_u64() >= Some(attempts) {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "event {id}: {attempts} attempts never recorded: {}",
            self.delivery(id).await
        );
    }

    /// Moves the clock to event `id`'s next attempt time (plus 1 ms).
    async fn advance_to_next(&self, id: &str) {
        let d = self.delivery(id).await;
        let next =
            countersign::time::parse_rfc3339_ms(d["next_attempt_at"].as_str().unwrap()).unwrap();
        let by = (next - self.clock.now_ms()).max(0) + 1;
        self.manual.advance(Duration::from_millis(by as u64));
    }

    async fn endpoint_state(&self) -> Value {
        get(self.gw.admin, "/v1/endpoints").await.json()["endpoints"][0].clone()
    }

    async fn post(&self, path: &str) -> common::Resp {
        admin_call(self.gw.admin, "POST", path).await
    }
}

async fn admin_call(admin: std::net::SocketAddr, method: &'static str, path: &str) -> common::Resp {
    send(
        admin,
        &common::Req {
            method,
            path: path.into(),
            headers: vec![],
            body: vec![],
        },
    )
    .await
}

fn ms(d: &Value, key: &str) -> i64 {
    countersign::time::parse_rfc3339_ms(d[key].as_str().unwrap()).unwrap()
}

#[test]
fn independent_verifier_accepts_the_published_vectors() {
    assert!(verify_standard_webhooks(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        "v1,bad v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        br#"{"test": 2432232314}"#,
    ));
    assert!(verify_standard_webhooks(
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        "1649367553",
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        br#"{"email":"test@example.com","username":"test_user"}"#,
    ));
    assert!(!verify_standard_webhooks(
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        "1649367553",
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        br#"{"email":"test@example.com","username":"test_user2"}"#,
    ));
}

#[tokio::test]
async fn deliveries_are_signed_posts_of_the_stored_event() {
    let s = setup("", |_, _| Reply::Status(204)).await;
    for (i, kind) in ["sent", "signed", "completed"].iter().enumerate() {
        s.hook("env-1", kind, &format!("msg_{i}")).await;
    }
    let hits = s.rx.wait_hits(3).await;
    for (i, hit) in hits.iter().enumerate() {
        assert_eq!(
            hit.header("traceparent"),
            "",
            "no trace without an incoming one"
        );
        let id = format!("msg_{i}");
        assert!(verify_hit(OUT_SECRET, hit), "signature of {id}");
        assert_eq!(hit.header("webhook-id"), id);
        assert_eq!(hit.header("content-type"), "application/json");
        assert_eq!(hit.header("authorization"), "Bearer t0ken");
        assert!(hit.header("user-agent").starts_with("countersign/"));
        assert_eq!(hit.path, "/hooks/signature?tenant=7");
        let ts: i64 = hit.header("webhook-timestamp").parse().unwrap();
        assert_eq!(ts, hit.at_ms / 1000, "signed at the attempt's time");
        let stored = get(s.gw.admin, &format!("/v1/events/{id}")).await.json();
        assert_eq!(hit.json(), stored["event"], "the body is the stored event");
    }
    let d = s.recorded("msg_2", 1).await;
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["endpoint"], "crm");
    assert_eq!(d["history"][0]["status"], 204);
    // A provider's retry of an accepted webhook is not delivered again.
    s.hook("env-1", "completed", "msg_2").await;
    s.rx.assert_stays_at(3).await;
    // A webhook that arrives in a trace is delivered as a child span of it.
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    s.hook_with("env-2", "sent", "msg_tp", &[("traceparent", tp)])
        .await;
    let hit = s.rx.wait_hits(4).await[3].clone();
    let child = hit.header("traceparent");
    assert_eq!(child.len(), tp.len());
    assert_eq!(&child[..36], &tp[..36], "same trace id");
    assert_ne!(&child[36..52], &tp[36..52], "a new parent id");
    // The receiver sees the request before the gateway records its answer.
    s.recorded("msg_tp", 1).await;
    let ep = s.endpoint_state().await;
    assert_eq!(ep["delivered"], 4);
    assert_eq!(ep["state"], "closed");
    assert_eq!(
        ep["url"],
        format!("http://{}/hooks/signature", s.rx.addr),
        "no query (tokens) shown"
    );
    s.gw.stop().await;
}

#[tokio::test]
async fn retries_follow_the_jittered_schedule_until_delivered() {
    let s = setup(
        r#"retry_schedule = ["10s", "1m"]"#,
        |_, earlier| match earlier.len() {
            0 => Reply::Status(503),
            1 => Reply::Status(500),
            _ => Reply::Status(200),
        },
    )
    .await;
    s.hook("env-1", "completed", "msg_r").await;
    let mut ceilings = [10_000, 60_000].into_iter();
    for attempt in 1..=2u64 {
        let d = s.recorded("msg_r", attempt).await;
        assert_eq!(d["status"], "scheduled");
        let last = ms(&d["history"][attempt as usize - 1], "at");
        let wait = ms(&d, "next_attempt_at") - last;
        assert!(
            (0..=ceilings.next().unwrap()).contains(&wait),
            "retry {attempt} after {wait} ms"
        );
        if wait > 1 {
            // Just before the due time nothing is sent.
            s.manual.advance(Duration::from_millis(
                (ms(&d, "next_attempt_at") - s.clock.now_ms() - 1).max(0) as u64,
            ));
            s.rx.assert_stays_at(attempt as usize).await;
        }
        s.advance_to_next("msg_r").await;
        let hits = s.rx.wait_hits(attempt as usize + 1).await;
        assert!(hits[attempt as usize].at_ms >= ms(&d, "next_attempt_at"));
    }
    let d = s.recorded("msg_r", 3).await;
    assert_eq!(d["status"], "delivered");
    let statuses: Vec<&Value> = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [503, 500, 200]);
    assert!(
        d["history"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 503")
    );
    let hits = s.rx.hits();
    assert!(
        hits.iter().all(|h| verify_hit(OUT_SECRET, h)),
        "every attempt is signed afresh"
    );
    assert!(
        hits.iter().all(|h| h.header("webhook-id") == "msg_r"),
        "one webhook-id across retries"
    );
    s.gw.stop().await;
}

#[tokio::test]
async fn a_receiver_that_hangs_is_cut_off_at_the_timeout_and_retried() {
    let s = setup("", |_, earlier| {
        if earlier.is_empty() {
            Reply::Hang
        } else {
            Reply::Status(200)
        }
    })
    .await;
    s.hook("env-1", "completed", "msg_h").await;
    let d = s.recorded("msg_h", 1).await;
    assert_eq!(d["history"][0]["status"], Value::Null);
    assert_eq!(d["history"][0]["error"], "no answer within 400ms");
    s.advance_to_next("msg_h").await;
    assert_eq!(s.recorded("msg_h", 2).await["status"], "delivered");
    s.gw.stop().await;
}

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
        ms(&d, "next_attempt_at") - s.clock.now_ms(),
        120_000,
        "no jitter on Retry-After"
    );
    assert_eq!(s.endpoint_state().await["state"], "paused");
    // Another envelope waits too: the receiver asked the endpoint to slow down.
    s.hook("env-2", "completed", "msg_t2").await;
    s.rx.assert_stays_at(1).await;
    s.manual.advance(Duration::from_secs(120));
    s.rx.wait_hits(3).await;
    assert_eq!(s.recorded("msg_t1", 2).await["status"], "delivered");
    assert_eq!(s.recorded("msg_t2", 1).await["status"], "delivered");
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
        assert_eq!(d["status"], "dead_lettered");
        assert!(
            d["reason"]
                .as_str()
                .unwrap()
                .starts_with("permanent failure: HTTP 400"),
            "{d}"
        );
    }
    let list = get(s.gw.admin, "/v1/dead-letters?endpoint=crm")
        .await
        .json();
    let ids: Vec<&str> = list["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    let a = ids[0].to_owned();
    let one = get(s.gw.admin, &format!("/v1/dead-letters/{a}"))
        .await
        .json();
    assert_eq!(one["event_id"], "msg_a");
    assert_eq!(one["event"]["id"], "msg_a");
    assert_eq!(one["history"][0]["status"], 400);

    s.rx.set(|_, _| Reply::Status(200));
    assert_eq!(
        s.post(&format!("/v1/dead-letters/{a}/replay")).await.status,
        200
    );
    let d = s.recorded("msg_a", 2).await;
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["history"][0]["status"], 400, "replay keeps the history");
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
    assert_eq!(s.delivery("msg_b").await["status"], "discarded");
    let r = s.post("/v1/dead-letters/replay?endpoint=crm").await.json();
    assert_eq!(r["replayed"], 2);
    for id in ["msg_c", "msg_d"] {
        assert_eq!(s.recorded(id, 2).await["status"], "delivered");
    }
    let left = get(s.gw.admin, "/v1/dead-letters").await.json();
    assert!(left["dead_letters"].as_array().unwrap().is_empty());
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
    assert_eq!(d["status"], "dead_lettered");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .starts_with("gave up after 3 attempts; last: HTTP 502"),
        "{d}"
    );
    assert_eq!(d["history"].as_array().unwrap().len(), 3);
    assert!(
        d["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["latency_ms"].is_u64())
    );
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
    assert_eq!(ep["state"], "disabled");
    assert!(ep["disabled"]["reason"].as_str().unwrap().contains("410"));
    s.hook("env-2", "completed", "msg_g2").await;
    s.manual.advance(Duration::from_secs(86_400));
    s.rx.assert_stays_at(1).await;
    assert_eq!(s.endpoint_state().await["pending"], 2);
    assert_eq!(s.post("/v1/endpoints/nope/enable").await.status, 404);
    assert_eq!(s.post("/v1/endpoints/crm/enable").await.status, 200);
    s.rx.wait_hits(3).await;
    let d = s.recorded("msg_g1", 2).await;
    assert_eq!(d["status"], "delivered");
    assert_eq!(s.recorded("msg_g2", 1).await["status"], "delivered");
    assert_eq!(s.endpoint_state().await["state"], "closed");
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
    assert_eq!(s.delivery("a2").await["status"], "waiting");
    s.advance_to_next("a1").await;
    s.recorded("a1", 2).await;
    s.advance_to_next("a1").await;
    assert_eq!(s.recorded("a3", 1).await["status"], "delivered");
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
    assert_eq!(s.endpoint_state().await["state"], "open");
    // Retries fall due, but nothing is sent while open.
    s.manual.advance(Duration::from_secs(29));
    s.rx.assert_stays_at(3).await;
    // Cool-down over: exactly one probe, which fails: open again, for 60 s.
    s.manual.advance(Duration::from_secs(1));
    s.rx.wait_hits(4).await;
    s.rx.assert_stays_at(4).await;
    assert_eq!(s.endpoint_state().await["state"], "open");
    s.rx.set(|_, _| Reply::Status(200));
    s.manual.advance(Duration::from_secs(59));
    s.rx.assert_stays_at(4).await;
    s.manual.advance(Duration::from_secs(1));
    // Everything is delivered once the probe succeeds, none lost.
    for i in 0..5 {
        let id = format!("msg_{i}");
        for _ in 0..500 {
            if s.delivery(&id).await["status"] == "delivered" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(s.delivery(&id).await["status"], "delivered", "{id}");
    }
    assert_eq!(s.endpoint_state().await["state"], "closed");
    s.gw.stop().await;
}

#[tokio::test]
async fn a_restart_resumes_a_retry_sequence_with_its_attempts_and_due_time() {
    let s = setup(r#"retry_schedule = ["1h"]"#, |_, earlier| {
        if earlier.len() < 2 {
            Reply::Status(503)
        } else {
            Reply::Status(200)
        }
    })
    .await;
    s.hook("env-1", "completed", "msg_s").await;
    s.recorded("msg_s", 1).await;
    s.advance_to_next("msg_s").await;
    let before = s.recorded("msg_s", 2).await;
    let due = ms(&before, "next_attempt_at");
    let Setup {
        gw,
        rx,
        clock,
        manual,
        dir,
        toml,
        ..
    } = s;
    gw.stop().await;
    // Same store, same clock: the delivery is still due at the same time.
    let gw = Gateway::start_with_clock(&toml, clock.clone()).await;
    let s = Setup {
        gw,
        rx,
        clock,
        manual,
        loaded: countersign::app::load_str(&toml).unwrap(),
        dir,
        toml,
    };
    let after = s.delivery("msg_s").await;
    assert_eq!(after["attempts"], 2);
    assert_eq!(ms(&after, "next_attempt_at"), due);
    s.rx.assert_stays_at(2).await;
    s.advance_to_next("msg_s").await;
    let d = s.recorded("msg_s", 3).await;
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["history"].as_array().unwrap().len(), 3);
    s.gw.stop().await;
}

#[tokio::test]
async fn the_rate_limit_spaces_deliveries() {
    let s = setup("rate_limit = { per_second = 2, burst = 1 }", |_, _| {
        Reply::Status(200)
    })
    .await;
    for i in 0..4 {
        s.hook(&format!("env-{i}"), "completed", &format!("msg_{i}"))
            .await;
    }
    s.rx.wait_hits(1).await;
    for n in 1..4 {
        s.rx.assert_stays_at(n).await;
        s.manual.advance(Duration::from_millis(500));
        s.rx.wait_hits(n + 1).await;
    }
    let hits = s.rx.hits();
    for w in hits.windows(2) {
        assert!(
            w[1].at_ms - w[0].at_ms >= 500,
            "{} ms apart",
            w[1].at_ms - w[0].at_ms
        );
    }
    s.gw.stop().await;
}

/// Runs the real binary off the runtime's thread (the gateway answers meanwhile).
async fn cli(args: &[&str]) -> (bool, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn the_dlq_cli_lists_replays_and_discards_through_the_admin_api() {
    let s = setup("", |_, _| Reply::Status(422)).await;
    for id in ["msg_1", "msg_2"] {
        s.hook(&format!("env-{id}"), "completed", id).await;
        s.recorded(id, 1).await;
    }
    // The admin address comes from the config file's server.admin_listen.
    let cfg = s.dir.path().join("cli.toml");
    std::fs::write(
        &cfg,
        format!("[server]\nadmin_listen = \"{}\"\n", s.gw.admin),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let (ok, out) = cli(&["dlq", "list", "--config", cfg, "--endpoint", "crm"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("msg_1") && out.contains("msg_2") && out.contains("HTTP 422"),
        "{out}"
    );
    assert!(out.contains("2 dead letter(s)"), "{out}");
    let list = get(s.gw.admin, "/v1/dead-letters").await.json();
    let id = |i: usize| list["dead_letters"][i]["id"].as_str().unwrap().to_owned();
    let admin = format!("http://{}", s.gw.admin);

    s.rx.set(|_, _| Reply::Status(200));
    let (ok, out) = cli(&["dlq", "replay", "--admin", &admin, &id(0)]).await;
    assert!(ok && out.contains("replayed"), "{out}");
    assert_eq!(s.recorded("msg_1", 2).await["status"], "delivered");
    let (ok, out) = cli(&["dlq", "discard", "--admin", &admin, &id(1)]).await;
    assert!(ok && out.contains("discarded"), "{out}");
    assert_eq!(s.delivery("msg_2").await["status"], "discarded");
    let (ok, out) = cli(&["dlq", "discard", "--admin", &admin, &id(1)]).await;
    assert!(!ok && out.contains("no such dead letter"), "{out}");
    let (ok, out) = cli(&["dlq", "list", "--admin", &admin, "--json"]).await;
    assert!(ok, "{out}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["dead_letters"],
        serde_json::json!([])
    );
    s.gw.stop().await;
}
