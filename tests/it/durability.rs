//! Durability: what was acknowledged survives a restart and a `kill -9`, with its
//! dedup claim; SIGTERM exits cleanly.

use crate::common::*;
use countersign::config::StoreConfig;
use countersign::store::Store;

#[tokio::test]
async fn restart_keeps_events_and_their_dedup_claims() {
    let loaded = sources();
    let req = signed(&loaded, fixture("yousign"), "m");
    let gw = Gateway::start(SOURCES).await;
    assert_eq!(send(gw.public, &req).await.status, 200);

    let gw = gw.restart().await;
    let again = send(gw.public, &req).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("countersign-duplicate"), Some("true"));
    let e = get(gw.admin, "/v1/events/ys-1").await;
    assert_eq!(e.status, 200);
    assert_eq!(e.json()["event"]["kind"], "completed");
    gw.stop().await;
}

#[tokio::test]
async fn kill_9_loses_nothing_that_was_acknowledged() {
    // The write-ahead log with checkpoints a second apart: the kill lands
    // between checkpoints, and the restart replays the log.
    kill_9_then_reopen("", "log").await;
}

#[tokio::test]
async fn kill_9_around_checkpoints_loses_nothing_that_was_acknowledged() {
    // A checkpoint after nearly every logged commit: kills land while pages
    // are written, between a checkpoint and the next record, and during
    // the next record's write over the previous generation.
    kill_9_then_reopen(
        "wal_checkpoint_interval = \"1ms\"\nwal_checkpoint_idle = \"1ms\"\n",
        "checkpoints",
    )
    .await;
}

#[tokio::test]
async fn kill_9_without_the_log_loses_nothing_that_was_acknowledged() {
    kill_9_then_reopen("wal = false\n", "nolog").await;
}

/// Streams webhooks at the gateway binary with `store_keys` under `[store]`,
/// kills it with SIGKILL mid-stream, and checks that every acknowledged
/// event is in the store when it opens again.
async fn kill_9_then_reopen(store_keys: &str, tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("countersign.toml");
    let store_dir = dir.path().join("store");
    let text = with_store_keys(&store_dir, SOURCES, store_keys);
    std::fs::write(&cfg_path, text).unwrap();
    let mut bin = Binary::start(&cfg_path);
    let loaded = sources();
    // Eight clients send distinct events back to back; once 40 are acknowledged the
    // process is killed while the others are still in flight.
    let tag = tag.to_owned();
    let acked = stream_then_kill9(&mut bin, 8, 40, move |w, n| {
        let id = format!("msg_kill_{tag}_{w}_{n}");
        let req = sw_hook(&loaded, &id);
        (id, req)
    })
    .await;
    let store = Store::open(
        &StoreConfig {
            path: store_dir,
            ..StoreConfig::default()
        },
        countersign::time::Clock::System,
    )
    .unwrap();
    for id in &acked {
        assert_eq!(
            store.get(id).unwrap().len(),
            1,
            "acknowledged event {id} was lost"
        );
    }
    store.close().await;
}

#[tokio::test]
async fn sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("countersign.toml");
    std::fs::write(&cfg_path, config_text(&dir.path().join("store"), SOURCES)).unwrap();
    let mut bin = Binary::start(&cfg_path);
    let req = sw_hook(&sources(), "msg_term");
    assert_eq!(send(bin.public, &req).await.status, 200);
    let status = bin.sigterm();
    assert!(status.success(), "{status:?}");
}

/// Unmounts a tmpfs when dropped.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A full disk fails the store: webhooks get 503 (nothing acknowledged that
/// is not stored), readiness goes, the error is counted, and the gateway
/// exits non-zero so it is started again; once space is freed, it starts on
/// the same files with every acknowledged event.
#[tokio::test]
async fn a_full_disk_fails_the_store_visibly_and_a_restart_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("fs");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let _mount = Mount(mnt.clone());
    let store = mnt.join("store");
    let gw = Gateway::start_with(
        |_| config_text(&store, SOURCES),
        countersign::time::Clock::System,
    )
    .await;
    let loaded = sources();
    let hook = |i: usize| sw_hook(&loaded, &format!("msg_disk_{i}"));
    let mut acked = Vec::new();
    for i in 0..5 {
        assert_eq!(send(gw.public, &hook(i)).await.status, 200);
        acked.push(i);
    }
    // Fill the file system.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    // Refused: answered 503, or (the write that failed was a checkpoint
    // after the answers) the gateway already stopped listening.
    let mut refused = false;
    for i in 5..2000 {
        let Some(r) = try_send(gw.public, &hook(i)).await else {
            refused = true;
            break;
        };
        match r.status {
            200 => acked.push(i),
            503 => {
                refused = true;
                break;
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert!(refused, "a full disk must refuse webhooks");
    let (result, stopped) = gw.exited().await;
    let err = result
        .expect_err("the gateway exits with an error")
        .to_string();
    assert!(err.contains("the store failed"), "{err}");
    // Space again: the same files, every acknowledged event, new ones taken.
    std::fs::remove_file(&filler).unwrap();
    let gw = stopped.start().await;
    for i in &acked {
        let e = get(gw.admin, &format!("/v1/events/msg_disk_{i}")).await;
        assert_eq!(e.status, 200, "acknowledged event {i} lost");
    }
    assert_eq!(send(gw.public, &hook(9_999)).await.status, 200);
    gw.stop().await;
}
