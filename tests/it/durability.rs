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
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("countersign.toml");
    let store_dir = dir.path().join("store");
    std::fs::write(&cfg_path, config_text(&store_dir, SOURCES)).unwrap();
    let mut bin = Binary::start(&cfg_path);
    let loaded = sources();
    // Eight clients send distinct events back to back; once 40 are acknowledged the
    // process is killed while the others are still in flight.
    let acked = stream_then_kill9(&mut bin, 8, 40, move |w, n| {
        let id = format!("msg_kill_{w}_{n}");
        let mut req = signed(&loaded, fixture("sw"), &id);
        req.path = "/hooks/sw".into();
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
    let mut req = signed(&sources(), fixture("sw"), "msg_term");
    req.path = "/hooks/sw".into();
    assert_eq!(send(bin.public, &req).await.status, 200);
    let status = bin.sigterm();
    assert!(status.success(), "{status:?}");
}
