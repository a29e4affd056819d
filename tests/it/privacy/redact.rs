//! Redaction end to end on the real binary: the source hashes the signer's
//! e-mail and removes the client address before anything is stored; the
//! `crm` endpoint gets names masked; the `minimal` topic's route removes the
//! IBAN while the `full` topic keeps it; the store keeps what the source
//! left. Nothing of a removed or hashed value appears in a delivery, a Kafka
//! message, the log (at debug level) or the metrics; the same pepper gives
//! the same hash after a restart.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::common::kafka::{Broker, Storage, consume};
use crate::common::receiver::Receiver;
use crate::common::*;
use countersign::admin::api::EventView;
use countersign::time::Clock;

const PEPPER: &str = "pepper-for-the-redaction-test-0001";
const EMAIL: &str = "jane.secretperson@example.com";
const IP: &str = "203.0.113.77";
const IBAN: &str = "DE89370400440532013000";
const NAME: &str = "Jane Secretperson";

fn hmac_hex(value: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(PEPPER.as_bytes()).unwrap();
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn config(dir: &std::path::Path, broker: &Broker, crm: &Receiver) -> String {
    let extra = format!(
        r#"
[telemetry]
log_level = "debug"

[privacy]
pepper = "{PEPPER}"

[[sources]]
id = "sw"
provider = "standard_webhooks"
secrets = ["{}"]
redact = [
  {{ path = "/signer/email", mode = "hash" }},
  {{ path = "/payload/data/signer/email", mode = "hash" }},
  {{ path = "/payload/data/client/ip", mode = "remove" }},
]

[kafka]
brokers = "{}"
default_topic = "full"

[[endpoints]]
id = "crm"
url = "http://{}/crm"
allow_private = true
secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
redact = [
  {{ path = "/signer/name", mode = "mask" }},
  {{ path = "/payload/data/signer/name", mode = "mask" }},
]

[[routes]]
topics = ["minimal"]
redact = [{{ path = "/payload/data/accounts/*/iban", mode = "remove" }}]

[[routes]]
topics = ["full"]
endpoints = ["crm"]
"#,
        super::SW_SECRET,
        broker.addr(),
        crm.addr
    );
    config_text(dir, &extra)
}

fn body(id: &str) -> Vec<u8> {
    json!({
        "type": "envelope.completed",
        "data": {
            "envelope_id": format!("env-{id}"),
            "signer": { "email": EMAIL, "name": NAME },
            "client": { "ip": IP, "agent": "browser" },
            "accounts": [{ "iban": IBAN, "holder": "J" }, { "holder": "K" }]
        }
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_destination_receives_its_view_and_nothing_removed_leaks() {
    let broker = Broker::start(Storage::Memory);
    broker.create_topic("minimal");
    broker.create_topic("full");
    let crm = Receiver::ok(Clock::System).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("countersign.toml");
    let text = config(dir.path(), &broker, &crm);
    std::fs::write(&path, &text).unwrap();
    let l = countersign::app::load_str(&text).unwrap();
    let mut bin = Binary::start(&path);
    let now = Clock::System.now_ms() / 1000;
    let req = sign_for(&l, "sw", &body("1"), now, "msg_r1");
    assert_eq!(send(bin.public, &req).await.status, 200);

    // The store: hashed e-mail at both places, no client address; the rest
    // (names, IBAN) kept for the admin view.
    let stored: EventView = get(bin.admin, "/v1/events/msg_r1").await.body();
    let e = &stored.event;
    assert_eq!(e["signer"]["email"], hmac_hex(EMAIL));
    assert_eq!(e["payload"]["data"]["signer"]["email"], hmac_hex(EMAIL));
    assert_eq!(
        e["payload"]["data"]["client"],
        json!({ "agent": "browser" })
    );
    assert_eq!(e["payload"]["data"]["accounts"][0]["iban"], IBAN);
    assert_eq!(e["signer"]["name"], NAME);

    // The endpoint: exactly the stored event with the names masked on top.
    let hit = crm.wait_hits(1).await.remove(0);
    let mut expected = e.clone();
    expected["signer"]["name"] = json!("J***");
    expected["payload"]["data"]["signer"]["name"] = json!("J***");
    assert_eq!(hit.json(), expected);

    // The topics: `minimal` without IBANs, `full` with them.
    let addr = broker.addr();
    let (minimal, full) = tokio::task::spawn_blocking(move || {
        (
            consume(&addr, "minimal", 1, Duration::from_secs(60)),
            consume(&addr, "full", 1, Duration::from_secs(60)),
        )
    })
    .await
    .unwrap();
    // Exactly the stored event, without the IBANs on `minimal`.
    let mut expected = e.clone();
    expected["payload"]["data"]["accounts"] = json!([{ "holder": "J" }, { "holder": "K" }]);
    assert_eq!(minimal[0].value, expected);
    assert_eq!(&full[0].value, e, "the full topic gets the event as stored");

    // Nothing of the hashed or removed values anywhere it went.
    let metrics = get(bin.admin, "/metrics").await.text();
    let everything = [
        String::from_utf8_lossy(&hit.body).into_owned(),
        minimal[0].value.to_string(),
        full[0].value.to_string(),
        serde_json::to_string(&stored).unwrap(),
        metrics,
        bin.log_text(),
    ];
    for (i, text) in everything.iter().enumerate() {
        for secret in [EMAIL, IP] {
            assert!(!text.contains(secret), "{secret} in output {i}: {text}");
        }
    }
    assert!(!minimal[0].value.to_string().contains(IBAN));
    assert!(
        bin.log_text().contains("\"level\":\"DEBUG\""),
        "the log ran at debug level"
    );

    // Same pepper after a restart: same hash, so consumers can join on it.
    assert!(bin.sigterm().success());
    let bin = Binary::start(&path);
    let req = sign_for(&l, "sw", &body("2"), now, "msg_r2");
    assert_eq!(send(bin.public, &req).await.status, 200);
    let again: EventView = get(bin.admin, "/v1/events/msg_r2").await.body();
    assert_eq!(
        again.event["signer"]["email"],
        stored.event["signer"]["email"]
    );
}
