//! The audit trail end to end: a gateway with `[audit] enabled` writes one
//! entry per fact and signs checkpoints; `countersign audit pubkey` prints
//! the key to trust; `countersign audit verify` checks a stopped gateway's
//! store and an export; one envelope's export from `GET /v1/audit` verifies
//! with the public key alone, also with the independent Python verifier
//! (`tools/audit_verify.py`); after `kill -9` mid-stream the chain verifies
//! and every acknowledged webhook has its entry; the Kafka copy (tansu)
//! equals the local chain.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::kafka::{Broker, Storage, consume};
use crate::common::receiver::Receiver;
use crate::common::*;
use crate::envelopes::hooks::{TRACKING, archive, docusign, hook, register};

const KEY: &str = "0707070707070707070707070707070707070707070707070707070707070707";

fn audit(extra: &str) -> String {
    format!("[audit]\nenabled = true\nsigning_key = \"{KEY}\"\n{extra}\n")
}

/// The public key of [`KEY`], as `countersign audit pubkey` prints it.
fn pubkey(dir: &Path) -> String {
    let cfg = dir.join("audit.toml");
    std::fs::write(&cfg, audit("")).unwrap();
    let out = countersign(&["audit", "pubkey", "--config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let key = text.split_whitespace().next().unwrap().to_owned();
    assert_eq!(key.len(), 64);
    assert!(text.contains("key id "), "{text}");
    key
}

/// `countersign audit verify --store PATH --pubkey KEY`: (exit code, stdout).
fn verify(path: &Path, key: &str) -> (Option<i32>, String) {
    verify_with(path, key, &[])
}

/// [`verify`] with further arguments.
fn verify_with(path: &Path, key: &str, more: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "audit",
        "verify",
        "--store",
        path.to_str().unwrap(),
        "--pubkey",
        key,
    ];
    args.extend_from_slice(more);
    let out = countersign(&args);
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The entries of a stopped gateway's store.
async fn entries(dir: &Path) -> Vec<countersign::audit::chain::Entry> {
    let cfg = countersign::config::StoreConfig {
        path: dir.to_path_buf(),
        ..Default::default()
    };
    let s = countersign::store::Store::open(&cfg, countersign::time::Clock::System).unwrap();
    let all = s.audit_entries(0, 1_000_000).unwrap();
    s.close().await;
    all
}

fn kinds(entries: &[countersign::audit::chain::Entry]) -> Vec<String> {
    let mut k: Vec<String> = entries.iter().map(|e| e.kind.clone()).collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_and_duplicate_webhooks_and_deliveries_are_audited_and_the_chain_verifies() {
    let rx = Receiver::ok(countersign::time::Clock::System).await;
    let endpoint = format!(
        "[[endpoints]]\nid = \"crm\"\nurl = \"http://{}/crm\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nallow_private = true\n[[routes]]\nendpoints = [\"crm\"]\n",
        rx.addr
    );
    let gw = Gateway::start(&format!(
        "{SOURCES}\n{}\n{endpoint}",
        audit("checkpoint_every = 2")
    ))
    .await;
    let l = gw.loaded();
    for id in ["msg_1", "msg_2", "msg_1"] {
        let r = send(gw.public, &sw_hook(&l, id)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // A rejected webhook changes nothing: no entry.
    let mut bad = sw_hook(&l, "msg_3");
    tamper(&mut bad);
    assert_eq!(send(gw.public, &bad).await.status, 401);
    rx.wait_hits(2).await;
    eventually(
        "both deliveries recorded",
        Duration::from_secs(20),
        async || {
            let m = crate::common::metrics::Scrape::take(gw.admin).await;
            (m.get("countersign_audit_entries_total", &[]) >= 5.0).then_some(())
        },
    )
    .await;
    let stopped = gw.stop().await;
    assert_eq!(
        kinds(&entries(stopped.dir()).await),
        [
            "http.delivered",
            "http.delivered",
            "webhook.accepted",
            "webhook.accepted",
            "webhook.duplicate"
        ]
    );
    let key = pubkey(stopped.dir());
    let (code, text) = verify(stopped.dir(), &key);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("ok: 5 entries (1..5), head "), "{text}");
    // Every 2 entries, and the last one at shutdown.
    assert!(
        text.contains(
            "3 checkpoints with verified signatures, 0 entries after the last checkpoint"
        ),
        "{text}"
    );
    // The CLI's export of the whole log (and of a time range) verifies.
    let store = stopped.dir().to_str().unwrap();
    let out = countersign(&["audit", "export", "--store", store]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = stopped.dir().join("all.jsonl");
    std::fs::write(&file, &out.stdout).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1 + 5 + 3
    );
    let (code, text) = verify(&file, &key);
    assert_eq!(code, Some(0), "{text}");
    python_verifier(&file, &key, 0, "ok: 5 entries, 3 checkpoints");
    let out = countersign(&[
        "audit",
        "export",
        "--store",
        store,
        "--since",
        "2999-01-01T00:00:00Z",
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "a header alone"
    );
    let out = countersign(&["audit", "export", "--store", store, "--envelope", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOURCE/ENVELOPE_ID"));

    // A key that did not sign: exit 1 naming the checkpoint.
    let other = hex::encode(
        ed25519_dalek::SigningKey::from_bytes(&[1; 32])
            .verifying_key()
            .as_bytes(),
    );
    let (code, text) = verify(stopped.dir(), &other);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("broken: checkpoint 2: signed with key"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_envelopes_export_verifies_with_the_public_key_alone_in_rust_and_python() {
    let gw = Gateway::start(&format!("{SOURCES}\n{TRACKING}\n{}", audit(""))).await;
    let l = gw.loaded();
    let now = countersign::time::Clock::System.now_ms() / 1000;
    let sha = "ab".repeat(32);
    let r = register(
        gw.admin,
        "docusign",
        "env-audit",
        json!({"reference": "LEASE-9", "document_sha256": sha}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Another envelope's events interleave: they appear as links only.
    hook(
        gw.public,
        &docusign(&l, "envelope-sent", "env-other", None, now),
    )
    .await;
    hook(
        gw.public,
        &docusign(&l, "envelope-sent", "env-audit", None, now),
    )
    .await;
    hook(
        gw.public,
        &docusign(&l, "envelope-completed", "env-other", None, now),
    )
    .await;
    hook(
        gw.public,
        &docusign(&l, "envelope-completed", "env-audit", None, now),
    )
    .await;
    assert_eq!(
        archive(gw.admin, "docusign", "env-audit", &sha)
            .await
            .status,
        200
    );

    let r = get(gw.admin, "/v1/audit?envelope=docusign/env-audit").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let text = r.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "header");
    assert_eq!(lines[0]["filter"]["envelope"], "docusign/env-audit");
    let full: Vec<&Value> = lines.iter().filter(|l| l["type"] == "entry").collect();
    let full_kinds: HashSet<&str> = full.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for k in [
        "admin.envelope",
        "webhook.accepted",
        "envelope.transition",
        "envelope.derived",
    ] {
        assert!(full_kinds.contains(k), "{k} missing: {full_kinds:?}");
    }
    assert!(
        !text.contains("env-other"),
        "another envelope's data is not shown"
    );
    assert!(lines.iter().any(|l| l["type"] == "link"));
    assert_eq!(
        lines.last().unwrap()["type"],
        "checkpoint",
        "covered by a signature"
    );
    // The caller of the admin actions (no admin token on this listener).
    let admin_entries: Vec<&&Value> = full
        .iter()
        .filter(|e| e["kind"] == "admin.envelope")
        .collect();
    assert_eq!(admin_entries.len(), 2, "registration and archive");
    for e in &admin_entries {
        assert_eq!(e["data"]["by"]["client"], "127.0.0.1");
        assert_eq!(e["data"]["by"]["credential"], "none");
    }
    let transitions: Vec<(&str, &str)> = full
        .iter()
        .filter(|e| e["kind"] == "envelope.transition")
        .map(|e| {
            (
                e["data"]["from"].as_str().unwrap(),
                e["data"]["to"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        transitions,
        [("open", "in_signing"), ("in_signing", "completed")]
    );
    let bad = get(gw.admin, "/v1/audit?envelope=no-slash").await;
    assert_eq!(bad.status, 400, "{}", bad.text());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("env-audit.jsonl");
    std::fs::write(&file, &text).unwrap();
    let key = pubkey(dir.path());
    let (code, out) = verify(&file, &key);
    assert_eq!(code, Some(0), "{out}");
    python_verifier(&file, &key, 0, "ok: ");

    // One changed byte of the data: both verifiers refuse it.
    let edited = dir.path().join("edited.jsonl");
    std::fs::write(&edited, text.replacen("LEASE-9", "LEASE-8", 1)).unwrap();
    let (code, out) = verify(&edited, &key);
    assert_eq!(code, Some(1), "{out}");
    python_verifier(&edited, &key, 1, "broken: ");
    gw.stop().await;
}

/// Runs `tools/audit_verify.py` (Python 3 with `cryptography`, installed by
/// scripts/test.sh).
fn python_verifier(file: &Path, key: &str, code: i32, starts: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/audit_verify.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg("--pubkey")
        .arg(key)
        .arg(file)
        .output()
        .expect("python3 runs (scripts/test.sh installs python3 and python3-cryptography)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(code), "{text}");
    assert!(text.starts_with(starts), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_mid_stream_the_chain_verifies_and_every_acknowledged_webhook_has_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("countersign.toml");
    // The write-ahead log is checkpointed only at shutdown, so the kill
    // always finds acknowledged commits in it (with the default 10 ms idle
    // checkpoint, it may land just after one, with nothing left to replay).
    let toml = format!(
        "{}\n{}",
        with_store_keys(
            dir.path(),
            SOURCES,
            "wal_checkpoint_interval = \"1h\"\nwal_checkpoint_idle = \"1h\"\n"
        ),
        audit("checkpoint_every = 50")
    );
    std::fs::write(&config, toml).unwrap();
    let mut bin = Binary::start(&config);
    let l = countersign::app::load_str(&config_text(dir.path(), SOURCES)).unwrap();
    let acked = stream_then_kill9(&mut bin, 4, 300, move |w, n| {
        let id = format!("msg_{w}_{n}");
        (id.clone(), sw_hook(&l, &id))
    })
    .await;
    let key = pubkey(dir.path());
    let store = dir.path().to_path_buf();
    // The newest acknowledged commits are in the store's write-ahead log:
    // without the config to replay them, the store is not read partially.
    let (code, text) = verify(&store, &key);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("write-ahead log holds"), "{text}");
    assert!(text.contains("--config"), "{text}");
    // With it, they are replayed first, as the gateway's next start would.
    let (code, text) = verify_with(&store, &key, &["--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("replayed"), "{text}");
    let (code, text) = verify(&store, &key);
    assert_eq!(code, Some(0), "{text}");
    let all = entries(&store).await;
    let audited: HashSet<String> = all
        .iter()
        .filter(|e| e.kind == "webhook.accepted")
        .map(|e| e.data["event_id"].as_str().unwrap().to_owned())
        .collect();
    for id in &acked {
        assert!(
            audited.contains(id),
            "{id} was acknowledged but has no entry"
        );
    }
    // Restarted on the same files, the chain goes on and still verifies.
    let mut bin = Binary::start(&config);
    let l = countersign::app::load_str(&config_text(dir.path(), SOURCES)).unwrap();
    assert_eq!(send(bin.public, &sw_hook(&l, "after")).await.status, 200);
    assert!(bin.sigterm().success());
    let (code, text) = verify(&store, &key);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("0 entries after the last checkpoint"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_copy_equals_the_local_chain() {
    let broker = Broker::start(Storage::Memory);
    broker.create_topic("signature.events");
    broker.create_topic("audit.log");
    let kafka = format!(
        "[kafka]\nbrokers = \"{}\"\ndefault_topic = \"signature.events\"\nretry_backoff = \"100ms\"\n",
        broker.addr()
    );
    let gw = Gateway::start(&format!(
        "{SOURCES}\n{kafka}\n{}",
        audit("kafka_topic = \"audit.log\"")
    ))
    .await;
    let l = gw.loaded();
    for i in 0..20 {
        let r = send(gw.public, &sw_hook(&l, &format!("msg_{i}"))).await;
        assert_eq!(r.status, 200);
    }
    // 20 accepted + 20 published.
    let copied = consume(&broker.addr(), "audit.log", 40, Duration::from_secs(30));
    let stopped = gw.stop().await;
    let local = entries(stopped.dir()).await;
    assert_eq!(local.len(), 40, "{:?}", kinds(&local));
    assert!(copied.len() >= 40, "copied {}", copied.len());
    for (c, e) in copied.iter().zip(&local) {
        assert_eq!(c.partition, 0);
        assert_eq!(c.key, e.seq.to_string(), "in order, keyed by sequence");
        assert_eq!(c.value, serde_json::to_value(e).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_actions_record_the_caller_and_refusals_record_nothing() {
    const TOKEN: &str = "adm-audit-0123456789abcdef";
    let endpoint = "[[endpoints]]\nid = \"crm\"\nurl = \"http://127.0.0.1:9/crm\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nallow_private = true\n";
    let gw = Gateway::start_with_server_keys(
        &format!("{SOURCES}\n{endpoint}\n{}", audit("")),
        &format!("admin_token = \"{TOKEN}\"\n"),
    )
    .await;
    let call = |token: &str| Req {
        method: "POST",
        path: "/v1/endpoints/crm/enable".into(),
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
        body: Vec::new(),
    };
    // Refused (a wrong token): no entry.
    assert_eq!(
        send(gw.admin, &call("wrong-token-0123456789")).await.status,
        401
    );
    assert_eq!(send(gw.admin, &call(TOKEN)).await.status, 200);
    // The audit export needs the token like every /v1 route.
    assert_eq!(get(gw.admin, "/v1/audit").await.status, 401);
    let stopped = gw.stop().await;
    let all = entries(stopped.dir()).await;
    assert_eq!(kinds(&all), ["admin.enable"]);
    assert_eq!(
        all[0].data,
        json!({ "endpoint": "crm", "by": { "client": "127.0.0.1", "credential": "admin_token" } })
    );
}
