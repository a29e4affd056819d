//! Durable timers with the manual clock: reminders at each offset with the
//! signers still pending, completion cancelling what is left, overdue and
//! escalation in order, a restart across a due time firing once, and the
//! manual actions (`…/remind`, `…/deadline`).

use std::sync::Arc;
use std::time::Duration;

use countersign::time::{Clock, Manual};
use serde_json::{Value, json};

use crate::common::receiver::Receiver;
use crate::common::*;
use crate::envelopes::hooks::*;

/// 2026-01-01T00:00:00Z.
const START_MS: i64 = 1_767_225_600_000;
const DAY: Duration = Duration::from_secs(86_400);

/// DocuSign envelopes remind after 3 and 7 days, expire after 30 and
/// escalate 7 days past that; every timer event goes to `chase`.
pub fn timed_sources() -> String {
    SOURCES.replacen(
        "secrets = [\"dskey-old\", \"dskey\"]\n",
        "secrets = [\"dskey-old\", \"dskey\"]\nreminders = [\"3d\", \"7d\"]\nexpire_after = \"30d\"\nescalate_after = \"7d\"\n",
        1,
    )
}

fn config(rx: &Receiver) -> String {
    format!(
        r#"{}
{TRACKING}
[[endpoints]]
id = "chase"
url = "http://{}/chase"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
allow_private = true

[[routes]]
match = {{ kinds = ["envelope.reminder_due", "envelope.overdue", "envelope.escalated"] }}
endpoints = ["chase"]
"#,
        timed_sources(),
        rx.addr
    )
}

struct Setup {
    gw: Gateway,
    rx: Receiver,
    manual: Arc<Manual>,
}

async fn setup() -> Setup {
    let (clock, manual) = Clock::manual(START_MS);
    let rx = Receiver::ok(clock.clone()).await;
    let toml = config(&rx);
    let gw = Gateway::start_with(|dir| config_text(dir, &toml), clock).await;
    Setup { gw, rx, manual }
}

/// Sends the envelope out with two expected signers; `a` signs at once.
async fn send_out(s: &Setup, env: &str) {
    let body = json!({
        "reference": format!("R-{env}"),
        "signers": [{ "id": "a", "email": "a@example.com" }, { "id": "b", "email": "b@example.com" }],
    });
    assert_eq!(
        register(s.gw.admin, "docusign", env, body).await.status,
        200
    );
    let l = s.gw.loaded();
    let t = START_MS / 1000;
    hook(s.gw.public, &docusign(&l, "envelope-sent", env, None, t)).await;
    let a = ("a", "a@example.com");
    hook(
        s.gw.public,
        &docusign(&l, "recipient-completed", env, Some(a), t + 1),
    )
    .await;
}

/// (kind, envelope id, payload) of every delivery so far.
fn got(rx: &Receiver) -> Vec<(String, String, Value)> {
    rx.hits()
        .iter()
        .map(|h| {
            let j = h.json();
            (
                j["kind"].as_str().unwrap().to_owned(),
                j["envelope_id"].as_str().unwrap().to_owned(),
                j["payload"].clone(),
            )
        })
        .collect()
}

fn emails(payload: &Value) -> Vec<String> {
    payload["pending_signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_overdue_and_escalation_fire_once_in_order() {
    let s = setup().await;
    send_out(&s, "env-slow").await;
    send_out(&s, "env-fast").await;
    let v = envelope(s.gw.admin, "docusign", "env-slow").await;
    assert_eq!(v.timers.len(), 4, "{:?}", v.timers);
    assert_eq!(v.deadline.as_deref(), Some("2026-01-31T00:00:00.000Z"));
    s.rx.assert_stays_at(0).await;

    // Day 3: both envelopes' first reminder, naming b only.
    s.manual.advance(3 * DAY);
    let hits = s.rx.wait_hits(2).await;
    assert_eq!(hits.len(), 2);
    for (kind, _, p) in got(&s.rx) {
        assert_eq!(kind, "envelope.reminder_due");
        assert_eq!(p["reminder"], 0);
        assert_eq!(p["manual"], false);
        assert_eq!(p["due_at"], "2026-01-04T00:00:00.000Z");
        assert_eq!(emails(&p), ["b@example.com"]);
    }
    // env-fast completes: its remaining timers go in the same transaction.
    let l = s.gw.loaded();
    let b = ("b", "b@example.com");
    let t = START_MS / 1000 + 4 * 86_400;
    hook(
        s.gw.public,
        &docusign(&l, "recipient-completed", "env-fast", Some(b), t),
    )
    .await;
    assert!(
        envelope(s.gw.admin, "docusign", "env-fast")
            .await
            .timers
            .is_empty()
    );

    // Day 7: env-slow's second reminder only; then overdue at day 30 and the
    // escalation at day 37, each once, in order.
    for (days, n) in [(4, 3), (23, 4), (7, 5)] {
        s.manual.advance(days * DAY);
        s.rx.wait_hits(n).await;
    }
    // Long after: nothing more.
    s.manual.advance(100 * DAY);
    s.rx.assert_stays_at(5).await;
    let slow: Vec<(String, Value)> = got(&s.rx)
        .into_iter()
        .filter(|(_, env, _)| env == "env-slow")
        .map(|(k, _, p)| (k, p))
        .collect();
    let kinds: Vec<&str> = slow.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "envelope.reminder_due",
            "envelope.reminder_due",
            "envelope.overdue",
            "envelope.escalated"
        ]
    );
    assert_eq!(slow[1].1["reminder"], 1);
    assert_eq!(slow[2].1["deadline"], "2026-01-31T00:00:00.000Z");
    assert_eq!(slow[3].1["due_at"], "2026-02-07T00:00:00.000Z");
    assert!(
        envelope(s.gw.admin, "docusign", "env-slow")
            .await
            .timers
            .is_empty()
    );
    let metrics = get(s.gw.admin, "/metrics").await.text();
    for line in [
        "countersign_envelope_timers_fired_total{kind=\"reminder\"} 3",
        "countersign_envelope_timers_fired_total{kind=\"overdue\"} 1",
        "countersign_envelope_timers_fired_total{kind=\"escalated\"} 1",
        "countersign_envelope_timers_pending 0",
        "countersign_envelope_timer_lateness_seconds_count 5",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_across_a_due_time_fires_once_late() {
    let s = setup().await;
    send_out(&s, "env-1").await;
    let Setup { gw, rx, manual } = s;
    let stopped = gw.stop().await;
    // Down across the first reminder: it fires once after start, late.
    manual.advance(5 * DAY);
    let gw = stopped.start().await;
    let hits = rx.wait_hits(1).await;
    let p = &hits[0].json()["payload"];
    assert_eq!(p["due_at"], "2026-01-04T00:00:00.000Z");
    assert_eq!(hits[0].json()["received_at"], "2026-01-06T00:00:00.000Z");
    rx.assert_stays_at(1).await;
    let gw = gw.restart().await;
    rx.assert_stays_at(1).await;
    // The next one still comes, once.
    manual.advance(2 * DAY);
    rx.wait_hits(2).await;
    let gw = gw.restart().await;
    rx.assert_stays_at(2).await;
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_reminder_and_a_moved_deadline() {
    let s = setup().await;
    send_out(&s, "env-1").await;
    let post = |path: &str, body: Value| Req {
        method: "POST",
        path: path.to_owned(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    };
    let r = send(
        s.gw.admin,
        &post("/v1/envelopes/docusign/env-1/remind", json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let hits = s.rx.wait_hits(1).await;
    let j = hits[0].json();
    assert_eq!(j["kind"], "envelope.reminder_due");
    assert_eq!(j["payload"]["manual"], true);
    assert_eq!(emails(&j["payload"]), ["b@example.com"]);

    // The deadline moves to day 10: the second reminder (day 7) stays, the
    // overdue and escalation move.
    let r = send(
        s.gw.admin,
        &post(
            "/v1/envelopes/docusign/env-1/deadline",
            json!({ "deadline": "2026-01-11T00:00:00Z" }),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: countersign::admin::api::EnvelopeView = r.body();
    assert_eq!(v.deadline.as_deref(), Some("2026-01-11T00:00:00.000Z"));
    let due: Vec<(&str, &str)> = v
        .timers
        .iter()
        .map(|t| (t.kind.as_str(), t.due_at.as_str()))
        .collect();
    assert_eq!(
        due,
        [
            ("reminder", "2026-01-04T00:00:00.000Z"),
            ("reminder", "2026-01-08T00:00:00.000Z"),
            ("overdue", "2026-01-11T00:00:00.000Z"),
            ("escalated", "2026-01-18T00:00:00.000Z"),
        ]
    );
    s.manual.advance(10 * DAY);
    s.rx.wait_hits(4).await;
    let kinds: Vec<String> = got(&s.rx).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(
        kinds,
        [
            "envelope.reminder_due",
            "envelope.reminder_due",
            "envelope.reminder_due",
            "envelope.overdue"
        ]
    );
    // Bad requests change nothing; a finished envelope has no timers.
    let r = send(
        s.gw.admin,
        &post(
            "/v1/envelopes/docusign/env-1/deadline",
            json!({ "deadline": "soon" }),
        ),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = send(
        s.gw.admin,
        &post("/v1/envelopes/docusign/nope/remind", json!({})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let l = s.gw.loaded();
    let t = START_MS / 1000 + 10 * 86_400;
    hook(
        s.gw.public,
        &docusign(&l, "envelope-voided", "env-1", None, t),
    )
    .await;
    let r = send(
        s.gw.admin,
        &post("/v1/envelopes/docusign/env-1/remind", json!({})),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    s.manual.advance(30 * DAY);
    s.rx.assert_stays_at(4).await;
}

/// 10 000 envelopes sent out, one reminder each: after the due time each
/// fires exactly once, on Kafka (tansu) and at an HTTP receiver, and a
/// restart afterwards fires nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_envelopes_each_remind_exactly_once() {
    use crate::common::kafka::{Broker, Storage, consume};
    const N: usize = 10_000;
    const TOPIC: &str = "envelope.reminders";
    let broker = Broker::start(Storage::Memory);
    broker.create_topic(TOPIC);
    broker.create_topic("signature.events");
    let (clock, manual) = Clock::manual(START_MS);
    let rx = Receiver::ok(clock.clone()).await;
    let toml = format!(
        r#"[[sources]]
id = "docusign"
provider = "docusign"
secrets = ["dskey"]
reminders = ["3d"]

{TRACKING}
[kafka]
brokers = "{}"
default_topic = "signature.events"

[kafka.producer]
"linger.ms" = 5

[[endpoints]]
id = "chase"
url = "http://{}/chase"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
allow_private = true
max_in_flight = 64

[[routes]]
match = {{ kinds = ["envelope.reminder_due"] }}
topics = ["{TOPIC}"]
endpoints = ["chase"]
"#,
        broker.addr(),
        rx.addr
    );
    let gw = Gateway::start_with(|dir| config_text(dir, &toml), clock).await;
    let l = Arc::new(gw.loaded());
    let public = gw.public;
    let t = START_MS / 1000;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let l = l.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..N).step_by(16) {
                let req = docusign(&l, "envelope-sent", &format!("env-{i:05}"), None, t);
                hook(public, &req).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let metrics = get(gw.admin, "/metrics").await.text();
    assert!(
        metrics.contains(&format!("countersign_envelope_timers_pending {N}\n")),
        "{metrics}"
    );
    manual.advance(3 * DAY);
    let hits = {
        let until = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let h = rx.hits();
            if h.len() >= N || std::time::Instant::now() > until {
                break h;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let envs: std::collections::HashSet<String> = hits
        .iter()
        .map(|h| h.json()["envelope_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!((hits.len(), envs.len()), (N, N));
    let addr = broker.addr();
    let msgs =
        tokio::task::spawn_blocking(move || consume(&addr, TOPIC, N, Duration::from_secs(120)))
            .await
            .unwrap();
    let envs: std::collections::HashSet<String> = msgs
        .iter()
        .map(|m| m.value["envelope_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!((msgs.len(), envs.len()), (N, N));
    // Restarted and long after: nothing fires again.
    let gw = gw.restart().await;
    manual.advance(30 * DAY);
    rx.assert_stays_at(N).await;
    let metrics = get(gw.admin, "/metrics").await.text();
    assert!(
        metrics.contains("countersign_envelope_timers_pending 0\n"),
        "{metrics}"
    );
    let addr = broker.addr();
    let again =
        tokio::task::spawn_blocking(move || consume(&addr, TOPIC, N + 1, Duration::from_secs(3)))
            .await
            .unwrap();
    assert_eq!(again.len(), N);
}
