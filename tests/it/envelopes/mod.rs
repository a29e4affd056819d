//! Envelopes end to end: real multi-signer sequences of DocuSign, Dropbox
//! Sign, Yousign, Zoho Sign and Skribble (with duplicates, reordering, a
//! decline mid-way, registration before and after the first event) give
//! exactly one `envelope.all_signed` per envelope on Kafka (tansu) and at an
//! HTTP receiver; archive confirmation; a `kill -9` between events; the API's
//! errors.

mod api;
pub(crate) mod hooks;
mod stream;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use countersign::admin::api::EnvelopeList;
use countersign::time::Clock;
use serde_json::json;

use crate::common::kafka::{Broker, Storage, consume_until};
use crate::common::receiver::Receiver;
use crate::common::*;
use hooks::*;

const TRIGGERS: &str = "envelope.triggers";
const EVENTS: &str = "signature.events";

/// Kafka on `broker`; `envelope.all_signed` to its own topic and to the
/// `billing` endpoint at `rx`.
fn config(broker: &Broker, rx: &Receiver) -> String {
    format!(
        r#"{SOURCES}
{TRACKING}
[kafka]
brokers = "{}"
default_topic = "{EVENTS}"
retry_backoff = "100ms"

[kafka.producer]
"linger.ms" = 2

[[endpoints]]
id = "billing"
url = "http://{}/billing"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
allow_private = true

[[routes]]
match = {{ kinds = ["envelope.all_signed"] }}
topics = ["{TRIGGERS}"]
endpoints = ["billing"]
"#,
        broker.addr(),
        rx.addr
    )
}

fn now() -> i64 {
    Clock::System.now_ms() / 1000
}

/// Sends each request twice (a provider's retry) and in the order given.
async fn twice(gw: std::net::SocketAddr, reqs: &[Req]) {
    for r in reqs {
        hook(gw, r).await;
        hook(gw, r).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_sequence_triggers_all_signed_exactly_once() {
    let broker = Broker::start(Storage::Memory);
    for t in [TRIGGERS, EVENTS] {
        broker.create_topic(t);
    }
    let rx = Receiver::ok(Clock::System).await;
    let gw = Gateway::start(&config(&broker, &rx)).await;
    let l = gw.loaded();
    let t = now();
    let (a, b, c) = (
        ("1", "a@example.com"),
        ("2", "b@example.com"),
        ("3", "c@example.com"),
    );

    // DocuSign, registered before the first event: sent, three signatures
    // (the last one first), then the provider's completion, all duplicated.
    let r = register(
        gw.admin,
        "docusign",
        "ds-env",
        json!({"reference": "LEASE-1", "metadata": {"value": 1200},
               "signers": [{"email": "A@example.com"}, {"email": "b@example.com"}, {"id": "3"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    twice(
        gw.public,
        &[
            docusign(&l, "envelope-sent", "ds-env", None, t),
            docusign(&l, "recipient-completed", "ds-env", Some(c), t + 3),
            docusign(&l, "recipient-completed", "ds-env", Some(a), t + 1),
            docusign(&l, "recipient-delivered", "ds-env", Some(b), t + 2),
            docusign(&l, "recipient-completed", "ds-env", Some(b), t + 2),
            docusign(&l, "envelope-completed", "ds-env", None, t + 4),
        ],
    )
    .await;
    let ds = envelope(gw.admin, "docusign", "ds-env").await;
    assert_eq!(ds.state, "completed");
    assert_eq!(
        ds.completed_by.as_deref(),
        Some("signers"),
        "the third signature completed it"
    );
    assert_eq!((ds.progress.expected, ds.progress.signed), (3, 3));

    // Dropbox Sign, registered after every signature: the provider's
    // all_signed arrives before the second signature.
    twice(
        gw.public,
        &[
            dropbox(&l, "signature_request_sent", "dbx-env", None, t),
            dropbox(&l, "signature_request_signed", "dbx-env", Some(a), t + 1),
            dropbox(&l, "signature_request_all_signed", "dbx-env", None, t + 3),
            dropbox(&l, "signature_request_signed", "dbx-env", Some(b), t + 2),
        ],
    )
    .await;
    let r = register(
        gw.admin,
        "dropbox",
        "dbx-env",
        json!({"reference": "POLICY-9"}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body::<countersign::admin::api::EnvelopeView>().state,
        "completed"
    );

    // Yousign, registered after the first event; its own `done` never comes:
    // the registration's two signers signing completes it.
    hook(
        gw.public,
        &yousign(&l, "ys-1", "signature_request.activated", "ys-env", None, t),
    )
    .await;
    let r = register(
        gw.admin,
        "yousign",
        "ys-env",
        json!({"reference": "CRM-3", "signers": [{"id": "y1"}, {"id": "y2"}]}),
    )
    .await;
    assert_eq!(r.status, 200);
    twice(
        gw.public,
        &[
            yousign(
                &l,
                "ys-2",
                "signer.done",
                "ys-env",
                Some(("y2", "y2@example.com")),
                t + 1,
            ),
            yousign(
                &l,
                "ys-3",
                "signer.link_opened",
                "ys-env",
                Some(("y1", "y1@example.com")),
                t + 2,
            ),
            yousign(
                &l,
                "ys-4",
                "signer.done",
                "ys-env",
                Some(("y1", "y1@example.com")),
                t + 3,
            ),
        ],
    )
    .await;

    // Zoho: RequestSigningSuccess and RequestCompleted together on the last signature.
    let zoho_signer = Some(("act-1", "a@example.com"));
    twice(
        gw.public,
        &[
            zoho(&l, "RequestSubmitted", "777", None, t),
            zoho(&l, "RequestSigningSuccess", "777", zoho_signer, t + 1),
            zoho(&l, "RequestCompleted", "777", zoho_signer, t + 1),
            zoho(&l, "RequestSigningSuccess", "777", zoho_signer, t + 1),
        ],
    )
    .await;

    // Skribble: URL events.
    twice(
        gw.public,
        &[
            skribble(&l, "INITIATE", "sk-env", None),
            skribble(&l, "UPDATE", "sk-env", Some("sig-1")),
            skribble(&l, "SUCCESS", "sk-env", None),
        ],
    )
    .await;

    // A decline mid-way (DocuSign): one signed, one declined; never all_signed.
    twice(
        gw.public,
        &[
            docusign(&l, "envelope-sent", "ds-declined", None, t),
            docusign(&l, "recipient-completed", "ds-declined", Some(a), t + 1),
            docusign(&l, "recipient-declined", "ds-declined", Some(b), t + 2),
            docusign(&l, "envelope-declined", "ds-declined", None, t + 3),
        ],
    )
    .await;
    let d = envelope(gw.admin, "docusign", "ds-declined").await;
    assert_eq!(d.state, "cancelled");
    assert_eq!(d.cancel_reason.as_deref(), Some("declined"));
    assert!(d.emitted.contains(&"envelope.cancelled".to_owned()));

    // Exactly one all_signed per completed envelope, at the endpoint and on Kafka.
    let completed = ["ds-env", "dbx-env", "ys-env", "777", "sk-env"];
    let hits = rx.wait_hits(completed.len()).await;
    rx.assert_stays_at(completed.len()).await;
    let by_env: HashMap<String, serde_json::Value> = hits
        .iter()
        .map(|h| {
            let v = h.json();
            assert_eq!(v["kind"], "envelope.all_signed");
            (v["envelope_id"].as_str().unwrap().to_owned(), v)
        })
        .collect();
    assert_eq!(
        by_env.keys().cloned().collect::<HashSet<_>>(),
        completed.iter().map(|s| s.to_string()).collect()
    );
    let lease = &by_env["ds-env"];
    assert_eq!(lease["envelope"]["reference"], "LEASE-1");
    assert_eq!(lease["envelope"]["metadata"]["value"], 1200);
    assert_eq!(lease["origin"], "countersign");
    assert!(lease["cause"].as_str().is_some_and(|c| !c.is_empty()));

    let msgs = consume_until(
        &broker.addr(),
        TRIGGERS,
        |got| got.len() >= completed.len(),
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_millis(500));
    let again = consume_until(&broker.addr(), TRIGGERS, |_| false, Duration::from_secs(2));
    assert_eq!(
        again.len(),
        completed.len(),
        "one message per envelope, no more"
    );
    let keys: HashSet<&str> = msgs.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, completed.iter().copied().collect());
    for m in &msgs {
        assert_eq!(m.header("ce_type"), Some("countersign.envelope.all_signed"));
        assert_eq!(m.header("ce_id"), m.value["id"].as_str());
    }
    let ds_msg = msgs.iter().find(|m| m.key == "ds-env").unwrap();
    assert_eq!(ds_msg.header("countersign_reference"), Some("LEASE-1"));
    assert_eq!(
        msgs.iter()
            .find(|m| m.key == "sk-env")
            .unwrap()
            .header("countersign_reference"),
        None
    );

    // Provider events of a registered envelope carry the block too.
    let events = consume_until(
        &broker.addr(),
        EVENTS,
        |got| {
            got.iter()
                .any(|m| m.key == "ds-env" && m.value["kind"] == "completed")
        },
        Duration::from_secs(30),
    );
    let done = events
        .iter()
        .find(|m| m.key == "ds-env" && m.value["kind"] == "completed")
        .unwrap();
    assert_eq!(done.value["envelope"]["state"], "completed");
    assert_eq!(done.header("countersign_reference"), Some("LEASE-1"));

    // The listing: filtered by state and source, paged.
    let list: EnvelopeList = get(gw.admin, "/v1/envelopes?state=completed&limit=2")
        .await
        .body();
    assert_eq!(list.envelopes.len(), 2);
    let rest: EnvelopeList = get(
        gw.admin,
        &format!(
            "/v1/envelopes?state=completed&limit=10&before={}",
            list.next_before.unwrap()
        ),
    )
    .await
    .body();
    assert_eq!(list.envelopes.len() + rest.envelopes.len(), completed.len());
    let cancelled: EnvelopeList = get(gw.admin, "/v1/envelopes?state=cancelled&source=docusign")
        .await
        .body();
    assert_eq!(cancelled.envelopes.len(), 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_events_keeps_all_signed_once() {
    let rx = Receiver::ok(Clock::System).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    let extra = format!(
        "{SOURCES}\n{TRACKING}\n[[endpoints]]\nid = \"billing\"\nurl = \"http://{}/b\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nallow_private = true\n\n[[routes]]\nmatch = {{ kinds = [\"envelope.all_signed\"] }}\nendpoints = [\"billing\"]\n",
        rx.addr
    );
    std::fs::write(&cfg, config_text(&dir.path().join("store"), &extra)).unwrap();
    let l = sources();
    let t = now();
    let who = |i: usize| (["1", "2", "3"][i], ["a@x.io", "b@x.io", "c@x.io"][i]);
    let seq: Vec<Req> = (0..3)
        .map(|i| {
            docusign(
                &l,
                "recipient-completed",
                "k9-env",
                Some(who(i)),
                t + i as i64,
            )
        })
        .chain([docusign(&l, "envelope-completed", "k9-env", None, t + 5)])
        .collect();

    let mut bin = Binary::start(&cfg);
    let r = register(
        bin.admin,
        "docusign",
        "k9-env",
        json!({"reference": "K9", "signers": [{"id": "1"}, {"id": "2"}, {"id": "3"}]}),
    )
    .await;
    assert_eq!(r.status, 200);
    hook(bin.public, &seq[0]).await;
    hook(bin.public, &seq[1]).await;
    bin.kill9();

    // The provider retries what it sent, then goes on.
    let bin = Binary::start(&cfg);
    for r in &seq {
        hook(bin.public, r).await;
        hook(bin.public, r).await;
    }
    let v = envelope(bin.admin, "docusign", "k9-env").await;
    assert_eq!(v.state, "completed");
    rx.wait_hits(1).await;
    rx.assert_stays_at(1).await;
    assert_eq!(rx.hits()[0].json()["envelope"]["reference"], "K9");
}
