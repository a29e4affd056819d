//! The webhook sink: one worker per `[[endpoints]]` entry delivers the store's
//! queued deliveries as signed POSTs.
//!
//! A worker takes deliveries that are due from the store (earliest first, at
//! most `max_in_flight` at a time, paced by the endpoint's rate limit and
//! gated by its circuit breaker), sends them, and records each attempt through
//! the store writer: one call at a time, taking every attempt finished since
//! the last, while the worker goes on sending (a delivery is fetched again
//! only once its record landed). [`retry`](super::retry) decides what an
//! answer means and what follows it; the store keeps the schedule, so a
//! restart resumes every delivery with its attempt count and due time. While
//! an endpoint is disabled (410 Gone) or its breaker is open, nothing is sent
//! and everything waits on disk.

mod client;
mod endpoint;
mod holdback;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::IntCounter;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument as _;

pub use endpoint::Endpoint;

use super::breaker::{Breaker, Permit};
use super::retry::{self, Answer, Policy, Verdict};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::{Attempt, Due, HttpOp, Next, Store, StoreError};
use crate::time::Clock;
use holdback::Holdback;

/// One endpoint's histograms, looked up once.
struct Series {
    request_seconds: prometheus::Histogram,
    lag_seconds: prometheus::Histogram,
    attempts: prometheus::Histogram,
}

impl Series {
    fn new(m: &Metrics, id: &str) -> Series {
        Series {
            request_seconds: m.http_request_seconds.with_label_values(&[id]),
            lag_seconds: m.http_delivery_lag.with_label_values(&[id]),
            attempts: m.http_attempts_per_delivery.with_label_values(&[id]),
        }
    }
}

/// What an endpoint's worker is doing, for the admin API. The counters are the
/// endpoint's series of `countersign_http_attempts_total` and
/// `countersign_http_deliveries_total`.
#[derive(Debug)]
pub struct EndpointStatus {
    pub success: IntCounter,
    pub retryable: IntCounter,
    pub permanent: IntCounter,
    pub delivered: IntCounter,
    pub dead_lettered: IntCounter,
    /// Written by the worker, read by the admin API: a mutex, as the fields
    /// change together.
    pub snapshot: Mutex<Snapshot>,
}

impl EndpointStatus {
    pub fn new(m: &Metrics, id: &str) -> EndpointStatus {
        EndpointStatus {
            success: m.attempts(id, "success"),
            retryable: m.attempts(id, "retryable"),
            permanent: m.attempts(id, "permanent"),
            delivered: m.http_deliveries.with_label_values(&[id, "delivered"]),
            dead_lettered: m.http_deliveries.with_label_values(&[id, "dead_lettered"]),
            snapshot: Mutex::new(Snapshot::default()),
        }
    }

    /// Attempts that did not deliver.
    pub fn failed_attempts(&self) -> u64 {
        self.retryable.get() + self.permanent.get()
    }
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `closed`, `open`, `half_open`.
    pub breaker: &'static str,
    pub paused_until_ms: Option<i64>,
    pub disabled: Option<(i64, String)>,
    pub in_flight: usize,
}

/// Before the worker's first report: a new breaker is closed (not "", which
/// would show the endpoint in no breaker state at all).
impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot {
            breaker: "closed",
            paused_until_ms: None,
            disabled: None,
            in_flight: 0,
        }
    }
}

/// An attempt that finished.
struct Finished {
    due: Due,
    at_ms: i64,
    latency: Duration,
    answer: Answer,
    error: String,
}

pub struct Worker {
    ep: Arc<Endpoint>,
    store: Store,
    clock: Clock,
    client: client::Client,
    limiter: Option<crate::ratelimit::Direct>,
    breaker: Breaker,
    status: Arc<EndpointStatus>,
    /// seq → envelope of each delivery in flight.
    in_flight: HashMap<u64, String>,
    /// Taken from the store and not yet sent (the rate limit held them back).
    ready: VecDeque<Due>,
    disabled: Option<(i64, String)>,
    series: Series,
    /// Store trouble: see [`Holdback`].
    holdback: Holdback,
    /// Finished attempts not yet recorded: `recording` is on its way to the
    /// store (one call at a time), `unrecorded` waits for it. Neither is
    /// fetched again before its record lands; meanwhile the worker goes on
    /// sending (see [`Worker::record`]).
    recording: Option<Recording>,
    unrecorded: Vec<HttpOp>,
}

/// One call to the store with attempt records, and the deliveries it records.
struct Recording {
    seqs: Vec<u64>,
    answer: tokio::sync::oneshot::Receiver<Result<(), StoreError>>,
}

impl Worker {
    /// A worker for `ep` reporting into `status` (which outlives the worker:
    /// a restarted worker keeps counting into the same series).
    pub fn new(
        ep: Arc<Endpoint>,
        store: Store,
        clock: Clock,
        metrics: &Metrics,
        status: Arc<EndpointStatus>,
    ) -> Worker {
        let limiter = ep
            .rate_limit
            .map(|rl| crate::ratelimit::direct(&rl, clock.clone()));
        Worker {
            series: Series::new(metrics, &ep.id),
            status,
            client: client::client(&ep),
            breaker: Breaker::new(ep.breaker.failures, ep.breaker.cooldown),
            ep,
            store,
            clock,
            limiter,
            in_flight: HashMap::new(),
            ready: VecDeque::new(),
            disabled: None,
            holdback: Holdback::default(),
            recording: None,
            unrecorded: Vec::new(),
        }
    }

    /// Runs until the shutdown; then waits until its deadline for attempts in
    /// flight (those still running after it are sent again after a restart).
    pub async fn run(mut self, mut shutdown: Shutdown) {
        let mut changed = self.store.http_notify();
        self.disabled = self.store.disabled(&self.ep.id).unwrap_or_else(|e| {
            tracing::error!(endpoint = %self.ep.id, error = %e, "cannot read endpoint state");
            None
        });
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Finished>();
        let mut deadline: Option<Instant> = None;
        loop {
            let wake = match deadline {
                None if self.disabled.is_none() => self.dispatch(&done_tx).await,
                _ => None,
            };
            self.publish();
            if deadline.is_some() && self.in_flight.is_empty() && self.recording.is_none() {
                return;
            }
            let clock = self.clock.clone();
            let recording = self.recording.as_mut().map(|r| &mut r.answer);
            tokio::select! {
                Some(f) = done_rx.recv() => {
                    let mut batch = vec![f];
                    while let Ok(f) = done_rx.try_recv() {
                        batch.push(f);
                    }
                    self.settle(batch).await;
                }
                r = async {
                    match recording {
                        Some(answer) => answer.await,
                        None => std::future::pending().await,
                    }
                } => {
                    let seqs = self.recording.take().map(|r| r.seqs).unwrap_or_default();
                    self.recorded(seqs, r.unwrap_or(Err(StoreError::Closed)));
                }
                r = changed.changed(), if deadline.is_none() => {
                    if r.is_err() {
                        // The store is gone: finish what is in flight.
                        deadline = Some(shutdown.deadline().unwrap_or_else(Instant::now));
                    }
                    self.disabled = self.store.disabled(&self.ep.id).unwrap_or(None);
                }
                _ = clock.sleep_until(wake.unwrap_or(i64::MAX)), if wake.is_some() && deadline.is_none() => {}
                d = shutdown.begun(), if deadline.is_none() => {
                    deadline = Some(d);
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    tracing::warn!(endpoint = %self.ep.id, in_flight = self.in_flight.len(), "stopped with deliveries in flight; they are sent again after a restart");
                    return;
                }
            }
        }
    }

    /// Sends what is due and allowed; returns when to look again (`None`: when
    /// an attempt finishes or the store has news).
    async fn dispatch(&mut self, done: &mpsc::UnboundedSender<Finished>) -> Option<i64> {
        let now = self.clock.now_ms();
        if let Some(until) = self.holdback.paused(now) {
            return Some(until);
        }
        // Finished attempts waiting for their record count against the
        // window too, so a slow store bounds what the worker holds: the
        // record's answer wakes it.
        let unrecorded =
            self.unrecorded.len() + self.recording.as_ref().map_or(0, |r| r.seqs.len());
        if unrecorded >= self.ep.max_in_flight {
            return None;
        }
        let (cap, probe) = match self.breaker.permit(now, self.in_flight.len()) {
            Permit::Wait { until_ms } => return until_ms,
            Permit::One => (1, true),
            Permit::Any => (
                self.ep.max_in_flight.saturating_sub(self.in_flight.len()),
                false,
            ),
        };
        if cap == 0 {
            return None;
        }
        if self.ready.len() < cap {
            match self.fetch(now, cap - self.ready.len()).await {
                Ok(fresh) => self.ready.extend(fresh),
                Err(e) => {
                    tracing::warn!(endpoint = %self.ep.id, error = %e, "cannot read the delivery queue");
                    return Some(now + 1000);
                }
            }
        }
        let mut sent = 0;
        while sent < cap {
            let Some(d) = self.ready.front() else { break };
            if self.in_flight.values().any(|e| *e == d.envelope) {
                // An earlier delivery of the envelope is on its way (after a
                // replay): this one is fetched again once that finishes.
                self.ready.pop_front();
                continue;
            }
            if let Some(l) = &self.limiter
                && let Err(not_until) = l.check()
            {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(&self.clock));
                return Some(now + wait.as_nanos().div_ceil(1_000_000) as i64);
            }
            let d = self.ready.pop_front().expect("front exists");
            if probe {
                self.breaker.probe_sent();
            }
            self.in_flight.insert(d.seq, d.envelope.clone());
            self.spawn_attempt(d, done.clone());
            sent += 1;
        }
        if !self.ready.is_empty() || self.in_flight.len() >= self.ep.max_in_flight {
            // Held back, or full: the next finished attempt wakes the worker.
            return None;
        }
        let id = self.ep.id.clone();
        self.store
            .read(move |s| s.next_due(&id, now))
            .await
            .ok()
            .flatten()
    }

    async fn fetch(&self, now: i64, limit: usize) -> Result<Vec<Due>, StoreError> {
        let taken: std::collections::HashSet<u64> = self
            .in_flight
            .keys()
            .copied()
            .chain(self.ready.iter().map(|d| d.seq))
            .chain(self.holdback.held.keys().copied())
            .chain(self.recording.iter().flat_map(|r| r.seqs.iter().copied()))
            .chain(self.unrecorded.iter().filter_map(op_seq))
            .collect();
        let id = self.ep.id.clone();
        self.store
            .read(move |s| s.due(&id, now, limit, |seq| taken.contains(&seq)))
            .await
    }

    fn spawn_attempt(&self, due: Due, done: mpsc::UnboundedSender<Finished>) {
        let (ep, client, clock) = (self.ep.clone(), self.client.clone(), self.clock.clone());
        tokio::spawn(async move {
            let at_ms = clock.now_ms();
            let span = tracing::info_span!(
                "http.delivery",
                otel.kind = "client",
                endpoint = %ep.id,
                event = %due.event_id,
                attempt = due.tries + 1,
                http.response.status_code = tracing::field::Empty,
                error = tracing::field::Empty,
            );
            let tp = crate::telemetry::outbound(&span, due.traceparent.as_deref());
            // What the endpoint may see (`endpoints[].redact`); unreadable
            // JSON cannot be redacted, so it is not sent.
            let view = ep
                .redact
                .as_ref()
                .map(|r| r.apply_bytes(&due.json).unwrap_or_default());
            let body = view.as_deref().unwrap_or(&due.json);
            let req = client::request(&ep, &due.event_id, body, at_ms / 1000, tp.as_deref());
            let started = Instant::now();
            let (answer, error) = client::send(&client, &ep, req, &clock)
                .instrument(span.clone())
                .await;
            match &answer {
                Answer::Status { code, .. } => {
                    span.record("http.response.status_code", code);
                }
                Answer::Failed(_) => {
                    span.record("error", error.as_str());
                }
            }
            drop(span);
            let _ = done.send(Finished {
                due,
                at_ms,
                latency: started.elapsed(),
                answer,
                error,
            });
        });
    }

    /// Records finished attempts and decides what follows each.
    async fn settle(&mut self, batch: Vec<Finished>) {
        let mut ops = Vec::with_capacity(batch.len());
        let mut gone = None;
        for f in batch {
            self.in_flight.remove(&f.due.seq);
            let now = self.clock.now_ms();
            let verdict = retry::verdict(&f.answer, self.ep.retry_after_max);
            self.series.request_seconds.observe(f.latency.as_secs_f64());
            self.feel(&verdict, now);
            let policy = Policy {
                max_attempts: self.ep.max_attempts,
                schedule: &self.ep.schedule,
            };
            let next = retry::next(
                &verdict,
                f.due.tries,
                policy,
                now,
                &f.error,
                fastrand::f64(),
            );
            self.count(&f, &verdict, &next, now);
            if verdict == Verdict::Gone {
                gone = Some((now, f.error.clone()));
            }
            ops.push(HttpOp::Attempted {
                seq: f.due.seq,
                endpoint: self.ep.id.clone(),
                attempt: Attempt {
                    at_ms: f.at_ms,
                    status: match f.answer {
                        Answer::Status { code, .. } => Some(code),
                        Answer::Failed(_) => None,
                    },
                    latency_ms: f.latency.as_millis() as u64,
                    error: f.error,
                },
                next,
            });
        }
        if let Some((at, why)) = gone {
            tracing::error!(endpoint = %self.ep.id, answer = %why, "endpoint answered 410 Gone; disabled until enabled again through the admin API");
            self.disabled = Some((at, why.clone()));
            if let Err(e) = self
                .store
                .set_disabled(&self.ep.id, Some((at, why)), None)
                .await
            {
                tracing::error!(endpoint = %self.ep.id, error = %e, "cannot record that the endpoint is disabled");
            }
        }
        // Shown before the attempts are recorded, so whoever reads a recorded
        // attempt also sees the endpoint state it led to.
        self.publish();
        self.unrecorded.extend(ops);
        self.record();
    }

    /// Sends the unrecorded attempts to the store unless a call is on its
    /// way: one call at a time, each taking every attempt finished since the
    /// last. The worker does not wait for it: sending goes on, and a
    /// delivery is fetched again (its retry, or its envelope's next event)
    /// only once its record landed.
    fn record(&mut self) {
        if self.recording.is_some() || self.unrecorded.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.unrecorded);
        let seqs: Vec<u64> = ops.iter().filter_map(op_seq).collect();
        let (tx, answer) = tokio::sync::oneshot::channel();
        let store = self.store.clone();
        tokio::spawn(async move {
            let _ = tx.send(store.http(ops).await.map(drop));
        });
        self.recording = Some(Recording { seqs, answer });
    }

    /// A call to the store with attempt records answered.
    fn recorded(&mut self, seqs: Vec<u64>, r: Result<(), StoreError>) {
        match r {
            Ok(()) => self.holdback.recorded(seqs),
            Err(e) => {
                // The deliveries stay scheduled and are sent again (at least
                // once), but not before a pause: the store must work first.
                let until = self.holdback.failed(seqs, self.clock.now_ms());
                tracing::error!(endpoint = %self.ep.id, error = %e, resume_at = %crate::time::format_ms(until), "cannot record delivery attempts; pausing the endpoint");
            }
        }
        self.record();
    }

    /// The breaker learns from a verdict: a delivery (or a permanent refusal,
    /// which says the endpoint is up) closes it, a `Retry-After` pauses it, any
    /// other retryable failure counts against it; 410 Gone disables the
    /// endpoint instead.
    fn feel(&mut self, verdict: &Verdict, now: i64) {
        match verdict {
            Verdict::Delivered | Verdict::Permanent => self.breaker.on_success(),
            Verdict::Retry { after: Some(after) } => {
                self.breaker.pause_until(now + after.as_millis() as i64)
            }
            Verdict::Retry { after: None } => self.breaker.on_failure(now),
            Verdict::Gone => {}
        }
    }

    /// The counters, histograms and logs of one attempt and what follows it.
    fn count(&self, f: &Finished, verdict: &Verdict, next: &Next, now: i64) {
        let (st, s) = (&self.status, &self.series);
        match verdict {
            Verdict::Delivered => st.success.inc(),
            Verdict::Permanent => st.permanent.inc(),
            Verdict::Gone | Verdict::Retry { .. } => st.retryable.inc(),
        }
        let tries = f.due.tries + 1;
        match next {
            Next::Delivered => {
                st.delivered.inc();
                s.attempts.observe(f64::from(tries));
                s.lag_seconds
                    .observe((now - f.due.received_ms).max(0) as f64 / 1000.0);
            }
            Next::Retry { due_ms, counts } => {
                if *counts {
                    let delay = Duration::from_millis((due_ms - now).max(0) as u64);
                    tracing::debug!(endpoint = %self.ep.id, event = %f.due.event_id, tries, ?delay, error = %f.error, "delivery failed; retrying");
                }
            }
            Next::DeadLetter { reason } => {
                st.dead_lettered.inc();
                s.attempts.observe(f64::from(tries));
                tracing::warn!(endpoint = %self.ep.id, event = %f.due.event_id, %reason, "delivery dead-lettered");
            }
        }
    }

    fn publish(&self) {
        if let Ok(mut s) = self.status.snapshot.lock() {
            *s = Snapshot {
                breaker: self.breaker.name(),
                paused_until_ms: Some(self.breaker.paused_until_ms())
                    .filter(|t| *t > self.clock.now_ms()),
                disabled: self.disabled.clone(),
                in_flight: self.in_flight.len(),
            };
        }
    }
}

/// The delivery an attempt record is about.
fn op_seq(op: &HttpOp) -> Option<u64> {
    match op {
        HttpOp::Attempted { seq, .. } => Some(*seq),
        _ => None,
    }
}

#[cfg(test)]
mod store_tests;

#[cfg(test)]
mod tests {
    use super::Snapshot;
    use crate::sink::breaker::Breaker;

    /// Scrapes before the worker's first report show the state a new breaker has.
    #[test]
    fn the_first_snapshot_shows_a_new_breakers_state() {
        let fresh = Breaker::new(5, std::time::Duration::from_secs(30));
        assert_eq!(Snapshot::default().breaker, fresh.name());
        assert!(crate::metrics::BREAKER_STATES.contains(&Snapshot::default().breaker));
    }
}
