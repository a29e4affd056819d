//! The audit trail end to end (issue 17, in progress): a gateway with
//! `[audit] enabled` writes one entry per accepted and per duplicate webhook,
//! and `countersign audit verify` re-computes the chain from the stopped
//! gateway's store.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_and_duplicate_webhooks_are_audited_and_the_chain_verifies() {
    let gw = Gateway::start(&format!("{SOURCES}\n[audit]\nenabled = true\n")).await;
    let l = gw.loaded();
    for id in ["msg_1", "msg_2", "msg_1"] {
        let r = send(gw.public, &sw_hook(&l, id)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let stopped = gw.stop().await;
    let store = stopped.dir().to_str().unwrap().to_owned();
    let out = countersign(&["audit", "verify", "--store", &store]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("ok: 3 entries, head 3 "), "{text}");
}
