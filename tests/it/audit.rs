//! The audit trail end to end (issue 17, in progress): a gateway with
//! `[audit] enabled` writes one entry per accepted and per duplicate webhook
//! and signs checkpoints; `countersign audit pubkey` prints the key to trust
//! and `countersign audit verify` re-computes the chain and checks the
//! signatures from the stopped gateway's store.

use crate::common::receiver::Receiver;
use crate::common::*;

const KEY: &str = "0707070707070707070707070707070707070707070707070707070707070707";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_and_duplicate_webhooks_are_audited_and_the_chain_verifies() {
    let audit = format!("[audit]\nenabled = true\nsigning_key = \"{KEY}\"\ncheckpoint_every = 2\n");
    let rx = Receiver::ok(countersign::time::Clock::System).await;
    let endpoint = format!(
        "[[endpoints]]\nid = \"crm\"\nurl = \"http://{}/crm\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nallow_private = true\n[[routes]]\nendpoints = [\"crm\"]\n",
        rx.addr
    );
    let gw = Gateway::start(&format!("{SOURCES}\n{audit}\n{endpoint}")).await;
    let l = gw.loaded();
    for id in ["msg_1", "msg_2", "msg_1"] {
        let r = send(gw.public, &sw_hook(&l, id)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    rx.wait_hits(2).await;
    // The deliveries' outcomes are recorded once the worker reports them.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let stopped = gw.stop().await;
    {
        let cfg = countersign::config::StoreConfig {
            path: stopped.dir().to_path_buf(),
            ..Default::default()
        };
        let s = countersign::store::Store::open(&cfg, countersign::time::Clock::System).unwrap();
        let mut kinds: Vec<String> = s
            .audit_entries(1, 100)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "http.delivered",
                "http.delivered",
                "webhook.accepted",
                "webhook.accepted",
                "webhook.duplicate"
            ]
        );
        s.close().await;
    }
    let cfg = stopped.dir().join("audit.toml");
    std::fs::write(&cfg, &audit).unwrap();
    let out = countersign(&["audit", "pubkey", "--config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pubkey = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(pubkey.len(), 64);

    let store = stopped.dir().to_str().unwrap().to_owned();
    let out = countersign(&["audit", "verify", "--store", &store, "--pubkey", &pubkey]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("ok: 5 entries, head 5 "), "{text}");
    assert!(
        text.contains("2 checkpoints verified, 1 entries after the last"),
        "{text}"
    );
    // A key that did not sign: exit 1 naming the checkpoint.
    let other = countersign::audit::checkpoint::key_id(
        &ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key(),
    );
    assert_eq!(other.len(), 16);
    let other = hex::encode(
        ed25519_dalek::SigningKey::from_bytes(&[1; 32])
            .verifying_key()
            .as_bytes(),
    );
    let out = countersign(&["audit", "verify", "--store", &store, "--pubkey", &other]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("broken: checkpoint 2: signed with key"),
        "{text}"
    );
}
