//! A store that cannot record attempts must not make a worker re-send in a
//! loop: before the hold-back, a receiver answering 200 got thousands of
//! copies of one `webhook-id` within seconds.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
use crate::store::{NewEvent, Store};
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

#[tokio::test]
async fn a_store_that_cannot_record_pauses_the_worker_instead_of_resending() {
    let (addr, hits) = receiver().await;
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
        "[[endpoints]]\nid = \"e\"\nurl = \"http://{addr}/h\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nallow_private = true\n"
    );
    let ep = Arc::new(crate::app::load_str(&toml).unwrap().endpoints.remove(0));
    let metrics = Metrics::new(&[], &["e"], &[], false);
    let status = Arc::new(EndpointStatus::new(&metrics, "e"));
    store
        .commit(vec![NewEvent {
            source: "s".into(),
            id: "ev-1".into(),
            received_ms: Clock::System.now_ms(),
            json: br#"{"id":"ev-1"}"#.to_vec(),
            topics: vec![],
            endpoints: vec!["e".into()],
            envelope: "env-1".into(),
            traceparent: None,
            audit: None,
            held: false,
            facts: None,
        }])
        .await
        .unwrap();
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
