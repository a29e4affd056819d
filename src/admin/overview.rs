//! `/v1/overview` and `/v1/overview/stream`: what the status panel's
//! overview shows, as one snapshot or pushed every second over Server-Sent
//! Events (no polling): webhook counts by outcome (sampled every second, the
//! last five minutes kept), Kafka's connection and outbox, each endpoint's
//! breaker, backlog, dead letters and delivery lag, envelopes by state, and
//! the quarantined events waiting for a decision.
//!
//! The samples are cumulative counters: the page charts their differences
//! (webhooks per second), so a missed message loses no count. The store parts
//! are read once per second by the sampler while anyone streams, and shared
//! by every subscriber; a stream takes one of the
//! `envelopes.stream_max_subscribers` slots.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::watch;

use super::api::{Overview, OverviewEndpoint, OverviewKafka, OverviewSample};
use super::response::{self, AdminError};
use super::{Admin, Shared, blocking};
use crate::metrics::{Metrics, OUTCOMES};
use crate::shutdown::Shutdown;
use crate::time::format_ms;

/// How often a sample is taken and a stream message sent.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Samples kept: five minutes.
pub const KEPT: usize = 300;

/// The last [`KEPT`] samples of the webhook counters, and the latest
/// snapshot of the rest for the streams.
pub struct History {
    samples: Mutex<VecDeque<OverviewSample>>,
    /// The overview without samples, taken each second while a stream
    /// listens.
    latest: watch::Sender<Option<Arc<Overview>>>,
}

impl Default for History {
    fn default() -> History {
        History {
            samples: Mutex::default(),
            latest: watch::Sender::new(None),
        }
    }
}

impl History {
    fn push(&self, s: OverviewSample) {
        let mut q = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() == KEPT {
            q.pop_front();
        }
        q.push_back(s);
    }

    /// The samples taken after `t` (ms), oldest first.
    fn since(&self, t: i64) -> Vec<OverviewSample> {
        let q = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().filter(|s| s.t > t).cloned().collect()
    }
}

/// The webhook counters now.
fn sample(metrics: &Metrics, t: i64) -> OverviewSample {
    OverviewSample {
        t,
        counts: OUTCOMES
            .iter()
            .map(|o| Metrics::total(&metrics.webhooks, "outcome", o))
            .collect(),
    }
}

/// Samples the counters every [`INTERVAL`] until shutdown begins.
pub async fn sample_until(admin: Arc<Admin>, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.begun() => return,
        }
        let s = sample(&admin.metrics, admin.clock.now_ms());
        admin.history.push(s);
        if admin.history.latest.receiver_count() == 0 {
            continue;
        }
        let a = admin.clone();
        match blocking(move || snapshot(&a)).await {
            Ok(o) => {
                admin.history.latest.send_replace(Some(Arc::new(o)));
            }
            // Said on the streams by the next good one; the cause to the log.
            Err(e) => tracing::warn!(error = %e, "overview snapshot failed"),
        }
    }
}

/// The overview without samples (blocking: store reads).
fn snapshot(admin: &Admin) -> Result<Overview, AdminError> {
    let now = admin.clock.now_ms();
    let age = |oldest: Option<i64>| oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
    let kafka = match &admin.kafka {
        Some(k) => {
            let b = admin.store.kafka_backlog()?;
            Some(OverviewKafka {
                connected: k.connected.load(std::sync::atomic::Ordering::Relaxed),
                outbox: b.count,
                oldest_seconds: age(b.oldest_ms),
            })
        }
        None => None,
    };
    let mut endpoints = Vec::with_capacity(admin.endpoints.len());
    for (ep, status) in &admin.endpoints {
        let backlog = admin.store.http_backlog(&ep.id)?;
        endpoints.push(OverviewEndpoint {
            endpoint: super::endpoints::view(admin, ep, status, Some(&backlog)),
            lag_seconds: age(backlog.oldest_ms),
        });
    }
    let envelopes = match admin.store.tracking() {
        true => Some(
            admin
                .store
                .envelope_states()?
                .iter()
                .map(|(s, n)| (s.as_str().to_owned(), *n))
                .collect::<BTreeMap<_, _>>(),
        ),
        false => None,
    };
    Ok(Overview {
        at: format_ms(now),
        outcomes: OUTCOMES.iter().map(|o| o.to_string()).collect(),
        samples: Vec::new(),
        kafka,
        endpoints,
        envelopes,
        quarantined: admin.store.held_count()?,
    })
}

/// The overview with every sample kept (blocking: store reads).
fn full(admin: &Admin) -> Result<Overview, AdminError> {
    let mut o = snapshot(admin)?;
    o.samples = admin.history.since(i64::MIN);
    if o.samples.is_empty() {
        // Before the first sample: the counters now.
        o.samples.push(sample(&admin.metrics, admin.clock.now_ms()));
    }
    Ok(o)
}

/// `GET /v1/overview`.
pub async fn get(State(admin): Shared) -> Result<Response, AdminError> {
    blocking(move || Ok(response::ok(full(&admin)?))).await
}

/// `GET /v1/overview/stream`: a snapshot now (with the last five minutes of
/// samples), then the sampler's each second with the samples since the last;
/// ends when shutdown begins.
pub async fn stream(State(admin): Shared) -> Result<Response, AdminError> {
    let slot = super::stream::Slot::take(&admin)?;
    let a = admin.clone();
    let first = blocking(move || full(&a)).await?;
    let rx = admin.history.latest.subscribe();
    let shutdown = admin.streams.shutdown.clone();
    let after = first.samples.last().map_or(i64::MIN, |s| s.t);
    let state = (admin, slot, rx, shutdown, after, Some(first));
    let body = futures_util::stream::unfold(Some(state), |state| async move {
        let (admin, slot, mut rx, mut shutdown, after, first) = state?;
        let o = match first {
            Some(o) => o,
            None => {
                tokio::select! {
                    changed = rx.changed() => changed.ok()?,
                    _ = shutdown.begun() => return None,
                }
                let base = rx.borrow_and_update().clone()?;
                let mut o = Overview::clone(&base);
                o.samples = admin.history.since(after);
                o
            }
        };
        let after = o.samples.last().map_or(after, |s| s.t);
        let json = serde_json::to_string(&o).expect("overviews serialize");
        let chunk = Bytes::from(format!("event: overview\ndata: {json}\n\n"));
        let next = Some((admin, slot, rx, shutdown, after, None));
        Some((Ok::<_, Infallible>(chunk), next))
    });
    Ok(response::event_stream(axum::body::Body::from_stream(body)))
}
