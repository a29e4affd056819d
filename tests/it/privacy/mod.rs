//! Plausibility checks and data minimisation end to end: an authentic but
//! implausible event is stored, held in quarantine and routed only to the
//! review route; a person releases (it routes normally, and only then moves
//! its envelope) or rejects it; redactions at the source (what is stored),
//! at an endpoint and on a route's Kafka topic, with nothing of a removed or
//! hashed value left in deliveries, messages, logs or metrics.

mod redact;

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::metrics::Scrape;
use crate::common::receiver::Receiver;
use crate::common::*;
use crate::envelopes::hooks::{TRACKING, docusign, envelope, hook};
use countersign::admin::api::{EventView, QuarantineList};
use countersign::time::Clock;

const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const AUDIT_KEY: &str = "0707070707070707070707070707070707070707070707070707070707070707";

/// A contract value must not be negative; the payload must say its type.
const SCHEMA: &str = r#"{
  "type": "object",
  "required": ["type", "data"],
  "properties": {
    "data": {
      "type": "object",
      "properties": { "contract_value": { "type": "number", "minimum": 0 } }
    }
  }
}"#;

fn write_schema(dir: &Path) -> String {
    let p = dir.join("contract.schema.json");
    std::fs::write(&p, SCHEMA).unwrap();
    p.display().to_string()
}

/// Source `sw` with the schema and a `require` rule for completions; the
/// `crm` endpoint on the normal route, `review` on the quarantine route.
fn quarantine_config(dir: &Path, crm: &Receiver, review: &Receiver) -> String {
    let extra = format!(
        r#"
[[sources]]
id = "sw"
provider = "standard_webhooks"
secrets = ["{SW_SECRET}"]
schema = "{}"
require = [{{ kinds = ["completed"], fields = ["envelope_id", "signer.email"] }}]

[[endpoints]]
id = "crm"
url = "http://{}/crm"
allow_private = true
secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"

[[endpoints]]
id = "review"
url = "http://{}/review"
allow_private = true
secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"

[[routes]]
endpoints = ["crm"]

[[routes]]
name = "review"
quarantined = true
endpoints = ["review"]

[audit]
enabled = true
signing_key = "{AUDIT_KEY}"
"#,
        write_schema(dir),
        crm.addr,
        review.addr
    );
    config_text(dir, &extra)
}

pub fn sw(gw: &countersign::app::Loaded, id: &str, data: Value) -> Req {
    let body = json!({ "type": "envelope.completed", "data": data });
    let now = Clock::System.now_ms() / 1000;
    sign_for(gw, "sw", body.to_string().as_bytes(), now, id)
}

async fn post(admin: SocketAddr, path: &str) -> Resp {
    send(
        admin,
        &Req {
            method: "POST",
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        },
    )
    .await
}

fn pointers(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["pointer"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_implausible_event_is_held_for_review_then_released_or_rejected() {
    let crm = Receiver::ok(Clock::System).await;
    let review = Receiver::ok(Clock::System).await;
    let gw = Gateway::start_with(|d| quarantine_config(d, &crm, &review), Clock::System).await;
    let l = gw.loaded();
    let signer = json!({ "email": "a@example.com" });

    // A sound completion goes to the normal route only.
    let good = sw(
        &l,
        "evt-good",
        json!({ "envelope_id": "env-1", "signer": signer, "contract_value": 1200 }),
    );
    hook(gw.public, &good).await;
    assert_eq!(crm.wait_hits(1).await[0].json()["id"], "evt-good");

    // A negative contract value (schema) and a completion without an
    // envelope id (require): accepted (200, the provider must not retry),
    // held, and routed to the review route only.
    let bad_value = sw(
        &l,
        "evt-value",
        json!({ "envelope_id": "env-2", "signer": signer, "contract_value": -5 }),
    );
    let no_envelope = sw(&l, "evt-noenv", json!({ "signer": signer }));
    hook(gw.public, &bad_value).await;
    hook(gw.public, &no_envelope).await;
    let hits = review.wait_hits(2).await;
    let mut held: Vec<(String, Vec<String>)> = hits
        .iter()
        .map(|h| {
            let e = h.json();
            (
                e["id"].as_str().unwrap().to_owned(),
                pointers(&e["quarantined"]["violations"]),
            )
        })
        .collect();
    held.sort();
    assert_eq!(
        held,
        [
            ("evt-noenv".to_owned(), vec!["/envelope_id".to_owned()]),
            (
                "evt-value".to_owned(),
                vec!["/payload/data/contract_value".to_owned()]
            ),
        ]
    );
    // The provider's retry is a duplicate: stored and counted once.
    hook(gw.public, &bad_value).await;
    crm.assert_stays_at(1).await;
    let m = Scrape::take(gw.admin).await;
    assert_eq!(
        m.get("countersign_events_quarantined_total", &[("source", "sw")]),
        2.0
    );

    let list: QuarantineList = get(gw.admin, "/v1/quarantine").await.body();
    let ids: Vec<&str> = list.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["evt-noenv", "evt-value"], "newest first");
    assert!(list.events.iter().all(|e| e.state.status == "held"));
    let message = list.events[1].violations[0]["message"].as_str().unwrap();
    assert!(!message.contains("-5"), "{message}");

    // Released by a person: routed normally now, saying who released it.
    let r = post(gw.admin, "/v1/events/evt-value/release").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "released");
    let hits = crm.wait_hits(2).await;
    let released = hits[1].json();
    assert_eq!(released["id"], "evt-value");
    assert!(
        released["quarantined"]["released_by"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1")
    );
    assert!(released["quarantined"]["released_at"].is_string());
    // Once only.
    let again = post(gw.admin, "/v1/events/evt-value/release").await;
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(
        again.text().contains("released already"),
        "{}",
        again.text()
    );

    // Rejected: never routed.
    let r = post(gw.admin, "/v1/events/evt-noenv/reject").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        post(gw.admin, "/v1/events/evt-noenv/release").await.status,
        409
    );
    let sound = post(gw.admin, "/v1/events/evt-good/release").await;
    assert_eq!(sound.status, 409);
    assert!(sound.text().contains("not quarantined"), "{}", sound.text());
    assert_eq!(post(gw.admin, "/v1/events/nope/release").await.status, 404);
    crm.assert_stays_at(2).await;
    assert_eq!(review.hits().len(), 2);

    let list: QuarantineList = get(gw.admin, "/v1/quarantine").await.body();
    assert!(list.events.is_empty());
    let v: EventView = get(gw.admin, "/v1/events/evt-value").await.body();
    let q = v.state.quarantine.unwrap();
    assert_eq!(q.status, "released");
    assert!(q.by.unwrap().starts_with("127.0.0.1"));

    // Both decisions are in the audit trail, with who took them.
    let audit = get(gw.admin, "/v1/audit").await.text();
    for kind in ["admin.release", "admin.reject"] {
        let line = audit
            .lines()
            .find(|l| l.contains(&format!("\"kind\":\"{kind}\"")))
            .unwrap_or_else(|| panic!("no {kind} entry in {audit}"));
        assert!(line.contains("\"by\""), "{line}");
    }

    // Decisions survive a restart.
    let gw = gw.restart().await;
    let all: QuarantineList = get(gw.admin, "/v1/quarantine?status=all").await.body();
    let states: Vec<(&str, &str)> = all
        .events
        .iter()
        .map(|e| (e.id.as_str(), e.state.status.as_str()))
        .collect();
    assert_eq!(
        states,
        [("evt-noenv", "rejected"), ("evt-value", "released")]
    );
    let rejected: QuarantineList = get(gw.admin, "/v1/quarantine?status=rejected").await.body();
    assert_eq!(rejected.events.len(), 1);
    assert_eq!(get(gw.admin, "/v1/quarantine?status=odd").await.status, 400);
}

/// DocuSign sends envelope `env` out at `at`, then completes it 100 s later
/// with a negative contract value (which the test's schema refuses).
async fn sent_then_held_completion(gw: &Gateway, l: &countersign::app::Loaded, env: &str, at: i64) {
    hook(gw.public, &docusign(l, "envelope-sent", env, None, at)).await;
    let body = json!({
        "event": "envelope-completed",
        "generatedDateTime": countersign::time::format_ms((at + 100) * 1000),
        "data": { "envelopeId": env, "contractValue": -5 }
    });
    let req = sign_for(l, "docusign", body.to_string().as_bytes(), at + 100, "");
    hook(gw.public, &req).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_completion_moves_its_envelope_only_once_released() {
    let gw = Gateway::start_with(
        |d| {
            let schema = d.join("ds.schema.json");
            std::fs::write(
                &schema,
                r#"{"properties":{"data":{"properties":{"contractValue":{"type":"number","minimum":0}}}}}"#,
            )
            .unwrap();
            config_text(
                d,
                &format!(
                    "{TRACKING}\n[[sources]]\nid = \"docusign\"\nprovider = \"docusign\"\nsecrets = [\"dskey\"]\nschema = \"{}\"\n",
                    schema.display()
                ),
            )
        },
        Clock::System,
    )
    .await;
    let l = gw.loaded();
    sent_then_held_completion(&gw, &l, "env-q", 1_700_000_000).await;
    let e = envelope(gw.admin, "docusign", "env-q").await;
    assert_eq!(e.state, "in_signing", "a held completion triggers nothing");
    assert!(!e.emitted.contains(&"envelope.all_signed".to_owned()));

    let list: QuarantineList = get(gw.admin, "/v1/quarantine").await.body();
    assert_eq!(list.events.len(), 1);
    let id = list.events[0].id.clone();
    let r = post(
        gw.admin,
        &format!("/v1/events/{id}/release?source=docusign"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = envelope(gw.admin, "docusign", "env-q").await;
    assert_eq!(e.state, "completed");
    assert_eq!(
        e.emitted
            .iter()
            .filter(|k| *k == "envelope.all_signed")
            .count(),
        1
    );
    // The derived trigger names the released event as its cause.
    let events: countersign::admin::api::EventList =
        get(gw.admin, "/v1/events?limit=20").await.body();
    let all_signed = events
        .events
        .iter()
        .find(|v| v.event["kind"] == "envelope.all_signed")
        .expect("envelope.all_signed stored");
    assert_eq!(all_signed.event["cause"], Value::String(id.clone()));
    // The envelope's history shows the decision after the event's own entry.
    let e = envelope(gw.admin, "docusign", "env-q").await;
    let kinds: Vec<(&str, &str)> = e
        .history
        .iter()
        .map(|h| (h.kind.as_str(), h.origin.as_str()))
        .collect();
    let at = kinds
        .iter()
        .position(|k| *k == ("quarantine.released", "admin"))
        .unwrap_or_else(|| panic!("{kinds:?}"));
    assert_eq!(e.history[at].event_id.as_deref(), Some(id.as_str()));
    assert!(
        kinds[..at].contains(&("completed", "provider")),
        "{kinds:?}"
    );

    // A rejected completion: the envelope stays as it was, and says why.
    sent_then_held_completion(&gw, &l, "env-r", 1_700_000_200).await;
    let list: QuarantineList = get(gw.admin, "/v1/quarantine").await.body();
    let id = list.events[0].id.clone();
    let r = post(gw.admin, &format!("/v1/events/{id}/reject")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = envelope(gw.admin, "docusign", "env-r").await;
    assert_eq!(e.state, "in_signing");
    let last = e.history.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.origin.as_str()),
        ("quarantine.rejected", "admin")
    );
    assert_eq!(last.event_id.as_deref(), Some(id.as_str()));
}

/// Runs the binary off the runtime (the gateway under test shares it).
async fn cli(args: &[&str]) -> (bool, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        countersign(&args)
    })
    .await
    .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quarantine_cli_lists_releases_and_rejects() {
    let crm = Receiver::ok(Clock::System).await;
    let review = Receiver::ok(Clock::System).await;
    let gw = Gateway::start_with(|d| quarantine_config(d, &crm, &review), Clock::System).await;
    let l = gw.loaded();
    for id in ["evt-a", "evt-b"] {
        hook(
            gw.public,
            &sw(&l, id, json!({ "envelope_id": id, "contract_value": -1 })),
        )
        .await;
    }
    let admin = format!("http://{}", gw.admin);
    let (ok, out) = cli(&["quarantine", "list", "--admin", &admin]).await;
    assert!(ok, "{out}");
    assert!(out.contains("evt-a") && out.contains("evt-b"), "{out}");
    assert!(out.contains("/payload/data/contract_value"), "{out}");
    assert!(out.contains("2 event(s)"), "{out}");

    let (ok, out) = cli(&["quarantine", "release", "--admin", &admin, "evt-a"]).await;
    assert!(ok, "{out}");
    assert!(out.starts_with("released evt-a (source sw"), "{out}");
    assert_eq!(crm.wait_hits(1).await[0].json()["id"], "evt-a");
    let (ok, out) = cli(&[
        "quarantine",
        "reject",
        "--admin",
        &admin,
        "evt-b",
        "--source",
        "sw",
    ])
    .await;
    assert!(ok, "{out}");
    assert!(out.starts_with("rejected evt-b"), "{out}");
    let (ok, out) = cli(&["quarantine", "release", "--admin", &admin, "evt-b"]).await;
    assert!(!ok);
    assert!(out.contains("rejected already"), "{out}");
    let (ok, out) = cli(&["quarantine", "reject", "--admin", &admin, "nope"]).await;
    assert!(!ok);
    assert!(out.contains("no such event"), "{out}");

    let (ok, out) = cli(&[
        "quarantine",
        "list",
        "--admin",
        &admin,
        "--status",
        "all",
        "--json",
    ])
    .await;
    assert!(ok, "{out}");
    let list: QuarantineList = serde_json::from_str(&out).unwrap();
    let states: Vec<(&str, &str)> = list
        .events
        .iter()
        .map(|e| (e.id.as_str(), e.state.status.as_str()))
        .collect();
    assert_eq!(states, [("evt-b", "rejected"), ("evt-a", "released")]);
    crm.assert_stays_at(1).await;
}
