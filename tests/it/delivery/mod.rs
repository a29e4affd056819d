//! HTTP fan-out end to end: webhooks into a gateway, signed deliveries out to
//! real receivers on 127.0.0.1:0 scripted to fail, hang, throttle or vanish.
//! Time is a manual clock the test moves: retry spacing, breaker cool-downs and
//! rate limits are checked without sleeping through them.

mod failures;
mod recovery;

use std::sync::Arc;
use std::time::Duration;

use crate::common::receiver::{Hit, Receiver, Reply, verify_hit, verify_standard_webhooks};
use crate::common::{Gateway, config_text, eventually, get, send, sign_for};
use countersign::admin::api::{EndpointList, EndpointView, EventView, HttpDeliveryView};
use countersign::app::Loaded;
use countersign::time::{Clock, Manual};

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

/// 2026-01-01T00:00:00Z.
const START_MS: i64 = 1_767_225_600_000;

/// A manual clock at a fixed instant. The gateway reads it everywhere (ingest,
/// store, sinks) and so does the receiver: deliveries are due at once and
/// retries wait for the test.
fn clock() -> (Clock, Arc<Manual>) {
    Clock::manual(START_MS)
}

async fn setup(extra: &str, script: impl Fn(&Hit, &[Hit]) -> Reply + Send + 'static) -> Setup {
    let (clock, manual) = clock();
    let rx = Receiver::start(clock.clone(), script).await;
    let extra = format!("{SOURCE}{}", endpoint(&rx, extra));
    let gw = Gateway::start_with(|dir| config_text(dir, &extra), clock.clone()).await;
    Setup {
        loaded: gw.loaded(),
        gw,
        rx,
        clock,
        manual,
    }
}

impl Setup {
    /// Sends a Standard Webhooks webhook (event id `id`) for `envelope`.
    async fn hook(&self, envelope: &str, kind: &str, id: &str) {
        self.hook_with(envelope, kind, id, &[]).await;
    }

    async fn hook_with(&self, envelope: &str, kind: &str, id: &str, headers: &[(&str, &str)]) {
        let body = format!(r#"{{"type":"envelope.{kind}","data":{{"envelope_id":"{envelope}"}}}}"#);
        let now = self.clock.now_ms() / 1000;
        let mut req = sign_for(&self.loaded, "sw", body.as_bytes(), now, id);
        req.headers
            .extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let resp = send(self.gw.public, &req).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
    }

    /// The delivery record of event `id` to `crm`, from the admin API.
    async fn delivery(&self, id: &str) -> HttpDeliveryView {
        let v: EventView = get(self.gw.admin, &format!("/v1/events/{id}")).await.body();
        v.state.http[0].clone()
    }

    /// Waits until event `id`'s delivery has `attempts` recorded.
    async fn recorded(&self, id: &str, attempts: u32) -> HttpDeliveryView {
        let what = format!("event {id}: {attempts} attempts recorded");
        eventually(what, Duration::from_secs(20), async || {
            Some(self.delivery(id).await).filter(|d| d.attempts >= attempts)
        })
        .await
    }

    /// Moves the clock to event `id`'s next attempt time (plus 1 ms), once
    /// the delivery shows one (right after an attempt is recorded it may still
    /// be in flight on a loaded machine).
    async fn advance_to_next(&self, id: &str) {
        let what = format!("event {id}: a next attempt scheduled");
        let d = eventually(what, Duration::from_secs(20), async || {
            Some(self.delivery(id).await).filter(|d| d.next_attempt_at.is_some())
        })
        .await;
        let next = ms(&d.next_attempt_at);
        let by = (next - self.clock.now_ms()).max(0) + 1;
        self.manual.advance(Duration::from_millis(by as u64));
    }

    async fn endpoint_state(&self) -> EndpointView {
        let list: EndpointList = get(self.gw.admin, "/v1/endpoints").await.body();
        list.endpoints[0].clone()
    }

    async fn post(&self, path: &str) -> crate::common::Resp {
        admin_call(self.gw.admin, "POST", path).await
    }
}

async fn admin_call(
    admin: std::net::SocketAddr,
    method: &'static str,
    path: &str,
) -> crate::common::Resp {
    send(
        admin,
        &crate::common::Req {
            method,
            path: path.into(),
            headers: vec![],
            body: vec![],
        },
    )
    .await
}

/// An API time (present) as unix ms.
fn ms(t: &Option<String>) -> i64 {
    countersign::time::parse_rfc3339_ms(t.as_deref().expect("a time")).unwrap()
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
    assert_eq!(d.status, "delivered");
    assert_eq!(d.endpoint, "crm");
    assert_eq!(d.history[0].status, Some(204));
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
    assert_eq!(ep.delivered, 4);
    assert_eq!(ep.state, "closed");
    assert_eq!(
        ep.url,
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
    for attempt in 1..=2u32 {
        let d = s.recorded("msg_r", attempt).await;
        assert_eq!(d.status, "scheduled");
        let last = ms(&Some(d.history[attempt as usize - 1].at.clone()));
        let wait = ms(&d.next_attempt_at) - last;
        assert!(
            (0..=ceilings.next().unwrap()).contains(&wait),
            "retry {attempt} after {wait} ms"
        );
        if wait > 1 {
            // Just before the due time nothing is sent.
            s.manual.advance(Duration::from_millis(
                (ms(&d.next_attempt_at) - s.clock.now_ms() - 1).max(0) as u64,
            ));
            s.rx.assert_stays_at(attempt as usize).await;
        }
        s.advance_to_next("msg_r").await;
        let hits = s.rx.wait_hits(attempt as usize + 1).await;
        assert!(hits[attempt as usize].at_ms >= ms(&d.next_attempt_at));
    }
    let d = s.recorded("msg_r", 3).await;
    assert_eq!(d.status, "delivered");
    let statuses: Vec<Option<u16>> = d.history.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(503), Some(500), Some(200)]);
    assert!(
        d.history[0]
            .error
            .as_deref()
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
    assert_eq!(d.history[0].status, None);
    assert_eq!(
        d.history[0].error.as_deref(),
        Some("no answer within 400ms")
    );
    s.advance_to_next("msg_h").await;
    assert_eq!(s.recorded("msg_h", 2).await.status, "delivered");
    s.gw.stop().await;
}
