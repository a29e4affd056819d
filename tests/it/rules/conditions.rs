//! CEL conditions end to end: registration metadata decides which endpoint
//! an envelope's events reach; an evaluation error never fails a webhook, is
//! counted per route and makes only that route not match; `route test`
//! explains a match.

use serde_json::json;

use crate::common::receiver::Receiver;
use crate::common::*;
use crate::envelopes::hooks::*;

fn config(rx: &Receiver) -> String {
    let endpoint = |id: &str| {
        format!(
            "[[endpoints]]\nid = \"{id}\"\nurl = \"http://{}/{id}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nallow_private = true\n",
            rx.addr
        )
    };
    format!(
        r#"{SOURCES}
{TRACKING}
{}
{}
{}
[[routes]]
name = "insurance"
when = 'event.kind == "envelope.all_signed" && envelope.metadata.contract_value > 50000'
endpoints = ["insurance-orders"]

[[routes]]
name = "leasing"
match = {{ kinds = ["completed"] }}
when = 'envelope.metadata.product == "leasing"'
endpoints = ["payment-plans"]

[[routes]]
name = "signed-by-big"
match = {{ kinds = ["signer_completed"] }}
when = 'source == "docusign" && event.signer.email.endsWith("@big.example")'
endpoints = ["audit"]
"#,
        endpoint("insurance-orders"),
        endpoint("payment-plans"),
        endpoint("audit"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_routes_events_and_errors_never_fail_a_webhook() {
    let rx = Receiver::ok(countersign::time::Clock::System).await;
    let gw = Gateway::start(&config(&rx)).await;
    let l = gw.loaded();
    let t = countersign::time::Clock::System.now_ms() / 1000;
    for (env, metadata) in [
        (
            "env-big",
            Some(json!({ "contract_value": 60000, "product": "leasing" })),
        ),
        (
            "env-small",
            Some(json!({ "contract_value": 100, "product": "car" })),
        ),
        ("env-bare", None),
    ] {
        let mut body = json!({ "reference": format!("R-{env}") });
        if let Some(m) = metadata {
            body["metadata"] = m;
        }
        assert_eq!(register(gw.admin, "docusign", env, body).await.status, 200);
        let who = (
            "1",
            if env == "env-big" {
                "ceo@big.example"
            } else {
                "x@small.example"
            },
        );
        for req in [
            docusign(&l, "envelope-sent", env, None, t),
            docusign(&l, "recipient-completed", env, Some(who), t + 1),
            docusign(&l, "envelope-completed", env, None, t + 2),
        ] {
            // Every webhook is taken, whatever the conditions make of it.
            hook(gw.public, &req).await;
        }
    }
    let hits = rx.wait_hits(3).await;
    let mut got: Vec<(String, String, String)> = hits
        .iter()
        .map(|h| {
            let j = h.json();
            (
                h.path.clone(),
                j["kind"].as_str().unwrap().to_owned(),
                j["envelope_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("/audit".into(), "signer_completed".into(), "env-big".into()),
            (
                "/insurance-orders".into(),
                "envelope.all_signed".into(),
                "env-big".into()
            ),
            (
                "/payment-plans".into(),
                "completed".into(),
                "env-big".into()
            ),
        ]
    );
    rx.assert_stays_at(3).await;
    // env-bare has no metadata: `insurance` failed once (its all_signed),
    // `leasing` once (its completion); the third route never errs.
    let metrics = get(gw.admin, "/metrics").await.text();
    for (route, n) in [("insurance", 1), ("leasing", 1)] {
        let line = format!("\ncountersign_route_errors_total{{route=\"{route}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(!metrics.contains("route=\"signed-by-big\""), "{metrics}");
}

#[test]
fn route_test_explains_a_match() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "{TRACKING}\n[kafka]\nbrokers = \"127.0.0.1:9\"\ndefault_topic = \"all\"\n\n[[routes]]\nname = \"insurance\"\nmatch = {{ kinds = [\"envelope.all_signed\"] }}\nwhen = 'envelope.metadata.contract_value > 50000'\ntopics = [\"insurance.orders\"]\n\n[[routes]]\nwhen = 'event.payload.missing == 1'\ntopics = [\"never\"]\n"
        ),
    )
    .unwrap();
    let event = dir.path().join("e.json");
    std::fs::write(
        &event,
        json!({
            "schema_version": 1, "id": "cs_1", "source": "docusign", "provider": "docusign",
            "provider_event_type": "envelope.all_signed", "kind": "envelope.all_signed",
            "envelope_id": "env-1", "received_at": "2026-12-01T00:00:00Z", "payload": {},
            "auth": { "method": "countersign", "covers_body": false },
        })
        .to_string(),
    )
    .unwrap();
    let envelope = dir.path().join("env.json");
    std::fs::write(
        &envelope,
        json!({
            "state": "completed", "reference": "R-1", "metadata": { "contract_value": 70000 },
            "progress": { "expected": 2, "viewed": 0, "signed": 2, "declined": 0 }, "signers": [],
        })
        .to_string(),
    )
    .unwrap();
    let (c, e, v) = (
        cfg.to_str().unwrap(),
        event.to_str().unwrap(),
        envelope.to_str().unwrap(),
    );
    let out = countersign(&[
        "route",
        "test",
        "--config",
        c,
        "--event",
        e,
        "--envelope",
        v,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "insurance: MATCH",
        "  match.kinds = [\"envelope.all_signed\"]: yes",
        "  when `envelope.metadata.contract_value > 50000`: true",
        "routes[1]: no match",
        "  when `event.payload.missing == 1`: error:",
        "=> topics: insurance.orders",
        "=> endpoints: (none)",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    // Without the envelope, the condition cannot be evaluated.
    let out = countersign(&["route", "test", "--config", c, "--event", e]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("insurance: no match"), "{text}");
    assert!(text.contains("=> topics: all"), "{text}");
    // A bad event file is a clear error.
    let out = countersign(&["route", "test", "--config", c, "--event", v]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--event is not a normalized event"));
}
