//! The audit trail end to end (issue 17, in progress): a gateway with
//! `[audit] enabled` writes one entry per accepted and per duplicate webhook
//! and signs checkpoints; `countersign audit pubkey` prints the key to trust
//! and `countersign audit verify` re-computes the chain and checks the
//! signatures from the stopped gateway's store.

use crate::common::*;

const KEY: &str = "0707070707070707070707070707070707070707070707070707070707070707";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_and_duplicate_webhooks_are_audited_and_the_chain_verifies() {
    let audit = format!("[audit]\nenabled = true\nsigning_key = \"{KEY}\"\ncheckpoint_every = 2\n");
    let gw = Gateway::start(&format!("{SOURCES}\n{audit}")).await;
    let l = gw.loaded();
    for id in ["msg_1", "msg_2", "msg_1"] {
        let r = send(gw.public, &sw_hook(&l, id)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let stopped = gw.stop().await;
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
    assert!(text.starts_with("ok: 3 entries, head 3 "), "{text}");
    assert!(
        text.contains("1 checkpoints verified, 1 entries after the last"),
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
