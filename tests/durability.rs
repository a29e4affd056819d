//! Durability: what was acknowledged survives a restart and a `kill -9`, with its
//! dedup claim; SIGTERM exits cleanly.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use countersign::config::StoreConfig;
use countersign::store::Store;

#[tokio::test]
async fn restart_keeps_events_and_their_dedup_claims() {
    let dir = tempfile::tempdir().unwrap();
    let toml = config_text(dir.path(), SOURCES);
    let loaded = sources();
    let req = signed(&loaded, fixture("yousign"), "m");
    let gw = Gateway::start(&toml).await;
    assert_eq!(send(gw.public, &req).await.status, 200);
    gw.stop().await;

    let gw = Gateway::start(&toml).await;
    let again = send(gw.public, &req).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("countersign-duplicate"), Some("true"));
    let e = get(gw.admin, "/v1/events/ys-1").await;
    assert_eq!(e.status, 200);
    assert_eq!(e.json()["event"]["kind"], "completed");
    gw.stop().await;
}

/// Like `send`, but a dropped connection is `None` instead of a panic.
async fn try_send(addr: std::net::SocketAddr, req: &Req) -> Option<u16> {
    let r = tokio::spawn({
        let req = req.clone();
        async move { send(addr, &req).await.status }
    });
    r.await.ok()
}

#[tokio::test]
async fn kill_9_loses_nothing_that_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("countersign.toml");
    let store_dir = dir.path().join("store");
    std::fs::write(&cfg_path, config_text(&store_dir, SOURCES)).unwrap();
    let mut bin = Binary::start(&cfg_path);
    let loaded = Arc::new(sources());
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (kill_tx, mut kill_rx) = tokio::sync::mpsc::channel::<()>(1);

    // Eight clients send distinct events back to back; once 40 are acknowledged the
    // process is killed while the others are still in flight.
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (loaded, acked, kill_tx, addr) =
                (loaded.clone(), acked.clone(), kill_tx.clone(), bin.public);
            tokio::spawn(async move {
                for i in 0..1000 {
                    let id = format!("msg_kill_{w}_{i}");
                    let mut req = signed(&loaded, fixture("sw"), &id);
                    req.path = "/hooks/sw".into();
                    match try_send(addr, &req).await {
                        Some(200) => {
                            let mut a = acked.lock().unwrap();
                            a.push(id);
                            if a.len() == 40 {
                                let _ = kill_tx.try_send(());
                            }
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    kill_rx.recv().await.unwrap();
    bin.kill9();
    for w in workers {
        let _ = w.await;
    }

    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40);
    let store = Store::open(&StoreConfig {
        path: store_dir,
        ..StoreConfig::default()
    })
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
    let mut req = signed(&sources(), fixture("sw"), "msg_term");
    req.path = "/hooks/sw".into();
    assert_eq!(send(bin.public, &req).await.status, 200);
    let status = bin.sigterm();
    assert!(status.success(), "{status:?}");
}
