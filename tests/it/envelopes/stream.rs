//! The live stream over real sockets: SSE and WebSocket clients that
//! disconnect and resume (`Last-Event-ID`, `since=`) without gaps or
//! duplicates; filters; a slow subscriber cut off (with its reason) while
//! ingest goes on; the subscriber cap.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use countersign::app::Loaded;
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::hooks::*;
use crate::common::metrics::Scrape;
use crate::common::sse::connect;
use crate::common::*;

const WAIT: Duration = Duration::from_secs(10);

/// Sent, one signature and completion for envelope `env`: five changes
/// (sent, in_signing, the signer, completed, all_signed).
async fn lifecycle(gw: SocketAddr, l: &Loaded, env: &str, t: i64) {
    lifecycle_of(gw, l, env, t, "1").await
}

/// [`lifecycle`] with the signer's recipient id `who` (its history entry
/// names the signer by it).
async fn lifecycle_of(gw: SocketAddr, l: &Loaded, env: &str, t: i64, who: &str) {
    hook(gw, &docusign(l, "envelope-sent", env, None, t)).await;
    hook(
        gw,
        &docusign(l, "recipient-completed", env, Some((who, "a@x.io")), t + 1),
    )
    .await;
    hook(gw, &docusign(l, "envelope-completed", env, None, t + 2)).await;
}

/// The sequences of every change of `envs`, from their histories.
async fn changes(admin: SocketAddr, envs: &[String]) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    for e in envs {
        let v = envelope(admin, "docusign", e).await;
        out.extend(v.history.iter().filter(|h| h.changed).map(|h| h.seq));
    }
    out
}

fn now() -> i64 {
    countersign::time::Clock::System.now_ms() / 1000
}

async fn ws_connect(
    admin: SocketAddr,
    query: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("ws://{admin}/v1/stream/ws{query}");
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket")
        .0
}

/// The next text frame's sequence, or the close frame's reason.
async fn ws_next(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Result<u64, String> {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        match m {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                return Ok(v["seq"].as_u64().unwrap());
            }
            Message::Close(f) => return Err(f.map(|f| f.reason.to_string()).unwrap_or_default()),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_and_websocket_subscribers_resume_without_gaps_or_duplicates() {
    resume_without_gaps_or_duplicates("").await;
}

/// The same without coalescing: each subscriber waits on the ring itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_coalescing_subscribers_resume_without_gaps_or_duplicates() {
    resume_without_gaps_or_duplicates("stream_coalesce = \"0s\"\n").await;
}

async fn resume_without_gaps_or_duplicates(extra: &str) {
    let gw = Gateway::start(&format!("{SOURCES}\n{TRACKING}{extra}")).await;
    let l = gw.loaded();
    let t = now();
    let envs: Vec<String> = (0..8).map(|i| format!("st-{i}")).collect();

    let mut sse = connect(gw.admin, "/v1/stream", None, None).await;
    assert_eq!(sse.status, 200);
    let mut ws = ws_connect(gw.admin, "").await;
    for e in &envs[..4] {
        lifecycle(gw.public, &l, e, t).await;
    }
    // Both read part of it, then drop off.
    let first = sse.take(7, WAIT).await;
    let sse_seen: Vec<u64> = first.iter().map(|e| e.id.unwrap()).collect();
    let mut ws_seen = Vec::new();
    for _ in 0..12 {
        ws_seen.push(ws_next(&mut ws).await.unwrap());
    }
    drop(sse);
    ws.close(None).await.unwrap();
    drop(ws);

    // More happens while they are away.
    for e in &envs[4..] {
        lifecycle(gw.public, &l, e, t).await;
    }
    let truth = changes(gw.admin, &envs).await;
    assert_eq!(truth.len(), envs.len() * 5, "five changes per envelope");

    let mut sse = connect(gw.admin, "/v1/stream", sse_seen.last().copied(), None).await;
    let rest = sse.take(truth.len() - sse_seen.len(), WAIT).await;
    let mut all = sse_seen.clone();
    all.extend(rest.iter().map(|e| e.id.unwrap()));
    assert_eq!(all.len(), truth.len(), "no duplicates");
    assert_eq!(
        all.iter().copied().collect::<BTreeSet<_>>(),
        truth,
        "no gaps"
    );
    assert!(all.windows(2).all(|w| w[0] < w[1]), "in order: {all:?}");

    let mut ws = ws_connect(gw.admin, &format!("?since={}", ws_seen.last().unwrap())).await;
    while ws_seen.len() < truth.len() {
        ws_seen.push(ws_next(&mut ws).await.unwrap());
    }
    assert_eq!(ws_seen, all, "the same messages over WebSocket");

    // Live after the replay: one more envelope reaches both.
    lifecycle(gw.public, &l, "st-live", t).await;
    let live = sse.take(5, WAIT).await;
    assert_eq!(live.len(), 5);
    assert_eq!(live[0].json()["envelope_id"], "st-live");
    assert_eq!(ws_next(&mut ws).await.unwrap(), live[0].id.unwrap());
    gw.stop().await;
}

/// Changes that commit within `stream_coalesce` of the first go out in one
/// write: three webhooks (five changes), one SSE chunk, and the WebSocket
/// subscriber gets all five as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_within_the_window_go_out_in_one_write() {
    let gw = Gateway::start(&format!("{SOURCES}\n{TRACKING}stream_coalesce = \"1s\"\n")).await;
    let l = gw.loaded();
    let mut sse = connect(gw.admin, "/v1/stream", None, None).await;
    let mut ws = ws_connect(gw.admin, "").await;
    let sent = std::time::Instant::now();
    lifecycle(gw.public, &l, "co-1", now()).await;
    // The webhooks took much less than the window (else this test proves
    // nothing); on a machine this slow, it says so.
    assert!(
        sent.elapsed() < Duration::from_millis(700),
        "{:?}",
        sent.elapsed()
    );
    let got = sse.take(5, WAIT).await;
    assert_eq!(got.len(), 5);
    assert_eq!(sse.frames, 1, "all five changes in one write");
    for _ in 0..5 {
        ws_next(&mut ws).await.unwrap();
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_see_only_what_they_filter_for() {
    let gw = Gateway::start(&format!("{SOURCES}\n{TRACKING}")).await;
    let l = gw.loaded();
    let r = register(gw.admin, "docusign", "f-1", json!({"reference": "LEASE-1"})).await;
    assert_eq!(r.status, 200);
    let mut by_ref = connect(gw.admin, "/v1/stream?reference=LEASE-1", None, None).await;
    let mut completed = connect(
        gw.admin,
        "/v1/stream?state=completed&source=docusign",
        None,
        None,
    )
    .await;
    let mut other_source = connect(gw.admin, "/v1/stream?source=yousign", None, None).await;
    lifecycle(gw.public, &l, "f-1", now()).await;
    lifecycle(gw.public, &l, "f-2", now()).await;

    let mine = by_ref.take(5, WAIT).await;
    assert_eq!(mine.len(), 5);
    assert!(
        mine.iter()
            .all(|e| e.json()["envelope_id"] == "f-1" && e.json()["reference"] == "LEASE-1")
    );
    let extra = by_ref.next(Duration::from_millis(300)).await;
    assert!(
        extra.is_none(),
        "f-2 is not LEASE-1's: {extra:?} after {mine:?}"
    );
    let done = completed.take(4, WAIT).await;
    let kinds: Vec<String> = done
        .iter()
        .map(|e| e.json()["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "completed",
            "envelope.all_signed",
            "completed",
            "envelope.all_signed"
        ]
    );
    assert!(
        other_source
            .next(Duration::from_millis(300))
            .await
            .is_none()
    );
    assert_eq!(
        connect(gw.admin, "/v1/stream?state=finished", None, None)
            .await
            .status,
        400
    );
    gw.stop().await;
}

const ENVELOPES: usize = 200;
const TOTAL: usize = ENVELOPES * 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_cut_off_and_ingest_goes_on() {
    let gw = Gateway::start(&format!(
        "{SOURCES}\n[envelopes]\nenabled = true\nstream_buffer = 16\nstream_max_subscribers = 2\n"
    ))
    .await;
    let l = gw.loaded();
    // A reader with a 4 KiB receive buffer that does not read, and one that does.
    let mut slow = connect(gw.admin, "/v1/stream", None, Some(4096)).await;
    let mut fast = connect(gw.admin, "/v1/stream", None, None).await;
    assert_eq!(
        connect(gw.admin, "/v1/stream", None, None).await.status,
        503,
        "at the cap"
    );
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while fast.next(WAIT).await.is_some() {
            n += 1;
            if n == TOTAL {
                break;
            }
        }
        n
    });
    // Every webhook is taken while the slow one stalls (ingest never waits
    // for a subscriber: if it did, these would hang). Signers with 24 KiB
    // ids make ~10 MB of stream, more than the kernel buffers between the
    // gateway and the stalled reader hold.
    let t = now();
    let who = "r".repeat(24 * 1024);
    let sends: Vec<_> = (0..4)
        .map(|w| {
            let (gw, l, who) = (gw.public, l.clone(), who.clone());
            tokio::spawn(async move {
                for i in 0..ENVELOPES / 4 {
                    lifecycle_of(gw, &l, &format!("slow-{w}-{i}"), t, &who).await;
                }
            })
        })
        .collect();
    for s in sends {
        s.await.unwrap();
    }
    assert_eq!(
        reader.await.unwrap(),
        TOTAL,
        "the fast reader got every change"
    );

    // The slow one, once it reads: what fit in its buffers, then the reason.
    let mut got = Vec::new();
    let close = loop {
        let e = slow.next(WAIT).await.unwrap_or_else(|| {
            panic!(
                "the stream ends with a close event; got {} ({:?})",
                got.len(),
                got.last()
            )
        });
        if e.event.as_deref() == Some("close") {
            break e.json();
        }
        got.push(e.id.unwrap());
    };
    assert_eq!(close["reason"], "lagged");
    assert!(
        got.len() < TOTAL,
        "cut off, not fed everything ({})",
        got.len()
    );
    assert_eq!(close["last_seq"].as_u64(), got.last().copied().or(Some(0)));
    assert!(
        slow.next(Duration::from_secs(1)).await.is_none(),
        "and closed"
    );
    let s = Scrape::take(gw.admin).await;
    assert_eq!(
        s.get(
            "countersign_stream_disconnects_total",
            &[("reason", "lagged")]
        ),
        1.0
    );

    // It resumes from there and misses nothing.
    let mut resumed = connect(gw.admin, "/v1/stream", close["last_seq"].as_u64(), None).await;
    let rest = resumed.take(TOTAL - got.len(), WAIT).await;
    assert_eq!(got.len() + rest.len(), TOTAL);
    gw.stop().await;
}
