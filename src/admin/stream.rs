//! `/v1/stream` (Server-Sent Events) and `/v1/stream/ws` (WebSocket, the
//! same messages as JSON text frames): every envelope change and derived
//! event as it commits, filterable by `source`, `state` and `reference`.
//!
//! Resumable: each message carries its store sequence (the SSE `id`); a
//! subscriber that reconnects with `Last-Event-ID` (or `since=`) is first
//! replayed what it missed from the store's envelope log, then follows the
//! live feed, without gaps or duplicates (it subscribes to the live feed
//! before reading the store, and skips what it has already sent).
//!
//! Bounded: the live feed is a broadcast ring of `envelopes.stream_buffer`
//! messages; a subscriber that falls further behind is disconnected with the
//! reason (`lagged`) and its last sequence, and resumes from there. Ingest
//! never waits for a subscriber. At most `envelopes.stream_max_subscribers`
//! at once (beyond it 503).
//!
//! Coalesced: subscribers do not wait on the ring itself (every commit would
//! wake every one of them). One task, the [`Pacer`], follows the ring while
//! anyone subscribes; once a change commits it waits
//! `envelopes.stream_coalesce` and then wakes every subscriber once. Each
//! sends all it finds in one write. So a subscriber wakes at most once per
//! window, however fast changes come, and a change waits at most one window.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::SinkExt as _;
use tokio::sync::Notify;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::query::{number, param};
use super::response::{self, AdminError};
use super::{Admin, Shared};
use crate::event::EnvelopeState;
use crate::shutdown::Shutdown;
use crate::store::{Store, StreamMsg};

/// Messages read from the store per step of a replay.
const REPLAY_PAGE: usize = 512;

/// The stream's limits and its subscriber count.
pub struct Streams {
    pub max_subscribers: usize,
    pub max_replay: usize,
    pub keepalive: Duration,
    pub active: Arc<AtomicUsize>,
    /// Wakes the subscribers once per `envelopes.stream_coalesce` window;
    /// `None` when the window is zero (each waits on the ring itself).
    pacer: Option<Arc<Pacer>>,
    /// Ends every stream when shutdown begins.
    pub shutdown: Shutdown,
    /// Subscribers now.
    pub subscribers: prometheus::IntGauge,
    /// Subscribers disconnected by the gateway, by reason.
    pub disconnects: prometheus::IntCounterVec,
}

impl Streams {
    pub fn new(cfg: &crate::config::EnvelopesConfig, shutdown: Shutdown) -> Streams {
        Streams {
            max_subscribers: cfg.stream_max_subscribers,
            max_replay: cfg.stream_max_replay,
            keepalive: cfg.stream_keepalive,
            active: Arc::new(AtomicUsize::new(0)),
            pacer: (!cfg.stream_coalesce.is_zero()).then(|| {
                Arc::new(Pacer {
                    window: cfg.stream_coalesce,
                    tick: Notify::new(),
                    wanted: Notify::new(),
                })
            }),
            shutdown,
            subscribers: prometheus::IntGauge::new(
                "stream_subscribers",
                "Subscribers of /v1/stream and /v1/stream/ws now.",
            )
            .expect("valid gauge"),
            disconnects: prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "stream_disconnects_total",
                    "Stream subscribers the gateway disconnected, by reason (lagged, replay_too_long, shutdown).",
                ),
                &["reason"],
            )
            .expect("valid counter"),
        }
    }

    /// Starts the pacer (when coalescing) on the current runtime: it
    /// follows `store`'s ring while anyone subscribes.
    pub fn start(&self, store: &Store) {
        if let Some(p) = &self.pacer
            && store.tracking()
        {
            tokio::spawn(
                p.clone()
                    .run(store.clone(), self.active.clone(), self.shutdown.clone()),
            );
        }
    }
}

/// Wakes the subscribers once per coalescing window.
struct Pacer {
    window: Duration,
    /// Every subscriber waiting for news waits on this.
    tick: Notify,
    /// A subscriber arrived (the pacer may be idle).
    wanted: Notify,
}

impl Pacer {
    async fn run(self: Arc<Pacer>, store: Store, active: Arc<AtomicUsize>, mut stop: Shutdown) {
        loop {
            // Nobody subscribes: no receiver, so the writer renders nothing.
            while active.load(Ordering::Acquire) == 0 {
                tokio::select! {
                    _ = self.wanted.notified() => {}
                    _ = stop.begun() => return,
                }
            }
            let mut rx = store.subscribe();
            // A change that committed before this subscription is in the
            // subscribers' own receivers: let them look.
            self.tick.notify_waiters();
            while active.load(Ordering::Acquire) > 0 {
                let news = tokio::select! {
                    r = rx.recv() => !matches!(r, Err(RecvError::Closed)),
                    _ = stop.begun() => false,
                };
                let on = news
                    && tokio::select! {
                        _ = tokio::time::sleep(self.window) => true,
                        _ = stop.begun() => false,
                    };
                // What came during the window is in this wake-up too.
                while matches!(rx.try_recv(), Ok(_) | Err(TryRecvError::Lagged(_))) {}
                self.tick.notify_waiters();
                if !on {
                    // Closed or shutting down: the subscribers have looked
                    // once more and found out.
                    return;
                }
            }
        }
    }
}

/// Holds a subscriber slot; frees it when dropped.
pub(super) struct Slot(Arc<Admin>);

impl Slot {
    pub(super) fn take(admin: &Arc<Admin>) -> Result<Slot, AdminError> {
        let s = &admin.streams;
        let taken = s
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < s.max_subscribers).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            return Err(AdminError::Busy(
                "too many stream subscribers (envelopes.stream_max_subscribers)",
            ));
        }
        s.subscribers.inc();
        if let Some(p) = &s.pacer {
            p.wanted.notify_one();
        }
        Ok(Slot(admin.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.streams.active.fetch_sub(1, Ordering::AcqRel);
        self.0.streams.subscribers.dec();
    }
}

/// What a subscriber asked to see.
#[derive(Debug, Clone, Default)]
struct Filter {
    source: Option<String>,
    state: Option<EnvelopeState>,
    reference: Option<String>,
}

impl Filter {
    fn parse(q: Option<&str>) -> Result<Filter, AdminError> {
        Ok(Filter {
            source: param(q, "source"),
            state: super::query::state(q)?,
            reference: param(q, "reference"),
        })
    }

    fn matches(&self, m: &StreamMsg) -> bool {
        self.source.as_deref().is_none_or(|s| s == m.source)
            && self.state.is_none_or(|s| s == m.state)
            && self
                .reference
                .as_deref()
                .is_none_or(|r| m.reference.as_deref() == Some(r))
    }
}

/// Why a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Fell more than `stream_buffer` messages behind.
    Lagged,
    /// Asked to resume from further back than `stream_max_replay` messages.
    ReplayTooLong,
    Shutdown,
    /// The store is gone (closing).
    Closed,
}

impl End {
    fn reason(self) -> &'static str {
        match self {
            End::Lagged => "lagged",
            End::ReplayTooLong => "replay_too_long",
            End::Shutdown | End::Closed => "shutdown",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            End::Lagged => {
                "fell behind the stream buffer; reconnect with Last-Event-ID (or since=) to resume"
            }
            End::ReplayTooLong => {
                "the resume point is too far back; read GET /v1/envelopes, then subscribe without a resume point"
            }
            End::Shutdown | End::Closed => "the gateway is shutting down; reconnect to resume",
        }
    }
}

/// One subscriber's feed: a store replay after `last`, then the live feed.
struct Feed {
    store: Store,
    rx: broadcast::Receiver<Arc<StreamMsg>>,
    filter: Filter,
    /// The newest sequence sent (or the resume point).
    last: u64,
    /// Where the store replay goes on; `None` once caught up.
    replay: Option<u64>,
    replayed: usize,
    max_replay: usize,
    backlog: VecDeque<Arc<StreamMsg>>,
    pacer: Option<Arc<Pacer>>,
    shutdown: Shutdown,
    _slot: Slot,
}

impl Feed {
    fn new(admin: &Arc<Admin>, filter: Filter, since: Option<u64>) -> Result<Feed, AdminError> {
        let slot = Slot::take(admin)?;
        // Subscribe first: whatever commits from now on is in `rx`, whatever
        // committed before is in the store.
        let rx = admin.store.subscribe();
        Ok(Feed {
            store: admin.store.clone(),
            rx,
            filter,
            last: since.unwrap_or(0),
            replay: since,
            replayed: 0,
            max_replay: admin.streams.max_replay,
            backlog: VecDeque::new(),
            pacer: admin.streams.pacer.clone(),
            shutdown: admin.streams.shutdown.clone(),
            _slot: slot,
        })
    }

    /// The next message to send, or why the stream ends.
    async fn next(&mut self) -> Result<Arc<StreamMsg>, End> {
        loop {
            if let Some(m) = self.pop() {
                return Ok(m);
            }
            if let Some(cursor) = self.replay {
                let (msgs, reached) = self
                    .store
                    .read(move |s| s.envelope_log(cursor, REPLAY_PAGE))
                    .await
                    .map_err(|_| End::Closed)?;
                if reached == cursor {
                    self.replay = None;
                    continue;
                }
                self.replayed += msgs.len();
                if self.replayed > self.max_replay {
                    return Err(End::ReplayTooLong);
                }
                self.replay = Some(reached);
                self.backlog.extend(msgs.into_iter().map(Arc::new));
                continue;
            }
            let m = match self.pacer.clone() {
                None => tokio::select! {
                    r = self.rx.recv() => r,
                    _ = self.shutdown.begun() => return Err(End::Shutdown),
                },
                Some(pacer) => {
                    // Registered before looking, so a tick after the look
                    // is not missed.
                    let tick = pacer.tick.notified();
                    tokio::pin!(tick);
                    tick.as_mut().enable();
                    match self.look() {
                        Some(r) => r,
                        None => tokio::select! {
                            _ = tick => continue,
                            _ = self.shutdown.begun() => return Err(End::Shutdown),
                        },
                    }
                }
            };
            if let Some(m) = self.live(m)? {
                return Ok(m);
            }
        }
    }

    /// A message ready now without waiting (for sending several in one
    /// write); `None` when there is none or the replay is not done.
    fn ready(&mut self) -> Option<Result<Arc<StreamMsg>, End>> {
        loop {
            if let Some(m) = self.pop() {
                return Some(Ok(m));
            }
            if self.replay.is_some() {
                return None;
            }
            let r = self.look()?;
            match self.live(r) {
                Ok(Some(m)) => return Some(Ok(m)),
                Ok(None) => {}
                Err(end) => return Some(Err(end)),
            }
        }
    }

    /// The ring's next message without waiting, as `recv` would give it;
    /// `None` when it is empty.
    fn look(&mut self) -> Option<Result<Arc<StreamMsg>, RecvError>> {
        match self.rx.try_recv() {
            Ok(m) => Some(Ok(m)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
        }
    }

    /// The next replayed message that passes the filter.
    fn pop(&mut self) -> Option<Arc<StreamMsg>> {
        while let Some(m) = self.backlog.pop_front() {
            self.last = m.seq;
            if self.filter.matches(&m) {
                return Some(m);
            }
        }
        None
    }

    /// A live message, unless already sent (replayed) or filtered out.
    fn live(
        &mut self,
        r: Result<Arc<StreamMsg>, RecvError>,
    ) -> Result<Option<Arc<StreamMsg>>, End> {
        let m = match r {
            Ok(m) => m,
            Err(RecvError::Lagged(_)) => return Err(End::Lagged),
            Err(RecvError::Closed) => return Err(End::Closed),
        };
        if m.seq <= self.last {
            return Ok(None);
        }
        self.last = m.seq;
        Ok(self.filter.matches(&m).then_some(m))
    }
}

/// The resume point: `Last-Event-ID`, else `since=`.
fn since(headers: &HeaderMap, q: Option<&str>) -> Result<Option<u64>, AdminError> {
    match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| {
                AdminError::BadRequest("Last-Event-ID must be a sequence number".into())
            }),
        None => number(q, "since"),
    }
}

fn subscribe(admin: &Arc<Admin>, headers: &HeaderMap, q: Option<&str>) -> Result<Feed, AdminError> {
    if !admin.store.tracking() {
        return Err(AdminError::Conflict(
            "envelope tracking is off; set envelopes.enabled = true",
        ));
    }
    let filter = Filter::parse(q)?;
    Feed::new(admin, filter, since(headers, q)?)
}

/// Messages (or bytes) one SSE write carries at most.
const BATCH: usize = 64;
const BATCH_BYTES: usize = 64 * 1024;

/// `GET /v1/stream`: Server-Sent Events. Each message: `id: <seq>` and
/// `data: <history entry JSON>`. The last one, when the gateway ends the
/// stream, is `event: close` with `{"reason", "last_seq", "hint"}`. Messages
/// that are ready together go out in one write; each is rendered once for
/// every subscriber.
pub async fn sse(
    State(admin): Shared,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let feed = subscribe(&admin, &headers, query.as_deref())?;
    let keepalive = admin.streams.keepalive;
    let stream = futures_util::stream::unfold(Some((feed, admin)), move |state| async move {
        let (mut feed, admin) = state?;
        let first = tokio::select! {
            r = feed.next() => r,
            _ = tokio::time::sleep(keepalive) => {
                return Some((Ok::<_, Infallible>(Bytes::from_static(b":\n\n")), Some((feed, admin))));
            }
        };
        let mut out = BytesMut::new();
        let mut end = None;
        match first {
            Ok(m) => out.extend_from_slice(&m.sse),
            Err(e) => end = Some(e),
        }
        let mut n = 1;
        while end.is_none() && n < BATCH && out.len() < BATCH_BYTES {
            match feed.ready() {
                Some(Ok(m)) => out.extend_from_slice(&m.sse),
                Some(Err(e)) => end = Some(e),
                None => break,
            }
            n += 1;
        }
        let next = match end {
            None => Some((feed, admin)),
            Some(end) => {
                admin
                    .streams
                    .disconnects
                    .with_label_values(&[end.reason()])
                    .inc();
                let body = serde_json::json!({
                    "reason": end.reason(),
                    "last_seq": feed.last,
                    "hint": end.hint(),
                });
                out.extend_from_slice(format!("event: close\ndata: {body}\n\n").as_bytes());
                None
            }
        };
        Some((Ok(out.freeze()), next))
    });
    Ok(response::event_stream(Body::from_stream(stream)))
}

/// `GET /v1/stream/ws`: the same messages as JSON text frames. When the
/// gateway ends the stream it closes with code 1013 (lagged, replay too long)
/// or 1001 (shutdown) and the reason and last sequence in the close reason
/// (`lagged; last_seq=123`).
pub async fn ws(
    State(admin): Shared,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Result<Response, AdminError> {
    let feed = subscribe(&admin, &headers, query.as_deref())?;
    Ok(upgrade.on_upgrade(move |socket| serve_ws(socket, feed, admin)))
}

async fn serve_ws(mut socket: WebSocket, mut feed: Feed, admin: Arc<Admin>) {
    let keepalive = admin.streams.keepalive;
    let mut ping = tokio::time::interval(keepalive);
    ping.tick().await;
    // The newest sequence the peer was sent: the resume point it is told.
    let mut sent = feed.last;
    let end = loop {
        tokio::select! {
            next = feed.next() => match next {
                Ok(m) => {
                    // What is ready with it goes in the same write.
                    let mut batch = vec![m];
                    let mut end = None;
                    while end.is_none() && batch.len() < BATCH {
                        match feed.ready() {
                            Some(Ok(m)) => batch.push(m),
                            Some(Err(e)) => end = Some(e),
                            None => break,
                        }
                    }
                    let last = batch.last().map_or(sent, |m| m.seq);
                    let send = async {
                        for m in batch {
                            let text = axum::extract::ws::Utf8Bytes::try_from(m.json.clone())
                                .unwrap_or_default();
                            socket.feed(Message::Text(text)).await?;
                        }
                        socket.flush().await
                    };
                    // A peer that stops reading entirely holds the send; give
                    // it the keep-alive interval twice, then cut it off.
                    match tokio::time::timeout(keepalive * 2, send).await {
                        Ok(Ok(())) => sent = last,
                        Ok(Err(_)) => return,
                        Err(_) => break End::Lagged,
                    }
                    if let Some(end) = end {
                        break end;
                    }
                }
                Err(end) => break end,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    };
    admin
        .streams
        .disconnects
        .with_label_values(&[end.reason()])
        .inc();
    let code = match end {
        End::Shutdown | End::Closed => 1001,
        End::Lagged | End::ReplayTooLong => 1013,
    };
    let frame = CloseFrame {
        code,
        reason: format!("{}; last_seq={sent}", end.reason()).into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}
