//! A store that cannot record attempts must not make a worker re-send in a
//! loop: before the hold-back, a receiver answering 200 got thousands of
//! copies of one `webhook-id` within seconds.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::{EndpointStatus, Worker};
use crate::config::StoreConfig;
use crate::metrics::Metrics;
use crate::shutdown::Trigger;
use crate::store::{DeliveryState, NewEvent, Store};
use crate::time::Clock;

/// A receiver on 127.0.0.1:0 that answers 200 and counts requests.
async fn receiver() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let h = h.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    h.fetch_add(1, Ordering::SeqCst);
                    async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (addr, hits)
}

/// A fresh store and endpoint `e` delivering to `addr` (with `extra`
/// config lines), its metrics and status.
fn setup(
    addr: std::net::SocketAddr,
    extra: &str,
) -> (
    tempfile::TempDir,
    Store,
    Arc<super::Endpoint>,
    Metrics,
    Arc<EndpointStatus>,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &StoreConfig {
            path: dir.path().into(),
            ..StoreConfig::default()
        },
        Clock::System,
    )
    .unwrap();
    let toml = format!(
        "[[endpoints]]\nid = \"e\"\nurl = \"http://{addr}/h\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nallow_private = true\n{extra}"
    );
    let ep = Arc::new(crate::app::load_str(&toml).unwrap().endpoints.remove(0));
    let metrics = Metrics::new(&[], &["e"], &[], false);
    let status = Arc::new(EndpointStatus::new(&metrics, "e"));
    (dir, store, ep, metrics, status)
}

#[tokio::test]
async fn a_store_that_cannot_record_pauses_the_worker_instead_of_resending() {
    let (addr, hits) = receiver().await;
    let (_dir, store, ep, metrics, status) = setup(addr, "");
    store.commit(vec![event("ev-1", "env-1")]).await.unwrap();
    // From now on nothing can be recorded.
    store.fail_commits(u32::MAX);
    let (trigger, shutdown) = Trigger::new(Duration::from_millis(200));
    let worker = Worker::new(ep, store.clone(), Clock::System, &metrics, status);
    let task = tokio::spawn(worker.run(shutdown));
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    // The first send, then one after the 1 s pause; the next waits 2 s more.
    let n = hits.load(Ordering::SeqCst);
    assert!((1..=3).contains(&n), "{n} copies in 2.5 s");
    trigger.begin();
    task.await.unwrap();
    store.fail_commits(0);
    store.close().await;
}

/// A receiver on 127.0.0.1:0 that answers 200, noting each request's
/// `webhook-id`, and holds the answer to `slow` for three seconds.
async fn noting_receiver(slow: &'static str) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = l.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let id = (req.headers().get("webhook-id"))
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    s.lock().unwrap().push(id.clone());
                    async move {
                        if id == slow {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(conn), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn event(id: &str, envelope: &str) -> NewEvent {
    NewEvent {
        source: "s".into(),
        id: id.into(),
        received_ms: Clock::System.now_ms(),
        json: format!(r#"{{"id":"{id}"}}"#).into_bytes(),
        topics: vec![],
        endpoints: vec!["e".into()],
        envelope: envelope.into(),
        traceparent: None,
        audit: None,
        held: false,
        facts: None,
    }
}

/// While the store records a finished attempt (here: held), the worker goes
/// on sending other envelopes' deliveries; it used to wait for the record.
#[tokio::test]
#[expect(
    clippy::await_holding_lock,
    reason = "the guard holds the store's writer thread while the test watches the worker"
)]
async fn the_worker_sends_on_while_an_attempt_is_being_recorded() {
    let (addr, seen) = noting_receiver("ev-2").await;
    let (_dir, store, ep, metrics, status) = setup(addr, "max_in_flight = 2\n");
    let events = vec![event("ev-1", "a"), event("ev-2", "b"), event("ev-3", "c")];
    let seqs: Vec<u64> = (store.commit(events).await.unwrap().iter())
        .map(|c| match c {
            crate::store::Claim::Stored { seq } => *seq,
            other => panic!("{other:?}"),
        })
        .collect();
    let (trigger, shutdown) = Trigger::new(Duration::from_secs(5));
    let task = {
        let held = store.hold_commits();
        let worker = Worker::new(ep, store.clone(), Clock::System, &metrics, status);
        let task = tokio::spawn(worker.run(shutdown));
        // ev-1 and ev-2 go out (two in flight); ev-1's answer comes at once,
        // its record waits for the store; ev-2's answer takes 3 s (after it,
        // two records would wait and fill the window).
        let deadline = tokio::time::Instant::now() + Duration::from_millis(2_800);
        while seen.lock().unwrap().len() < 3 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let sent = seen.lock().unwrap().clone();
        assert_eq!(sent.len(), 3, "sent while ev-1's record was held: {sent:?}");
        assert_eq!(sent[2], "ev-3");
        drop(held);
        task
    };
    // Once the store records again, every delivery is recorded as delivered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let done = seqs.iter().all(|seq| {
            let d = store.http_deliveries(*seq).unwrap();
            d.len() == 1 && d[0].0.state == DeliveryState::Delivered
        });
        if done {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not all recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.lock().unwrap().len(), 3, "nothing sent twice");
    trigger.begin();
    task.await.unwrap();
    store.close().await;
}
