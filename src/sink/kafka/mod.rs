//! The Kafka sink: drains the store's outbox to Kafka topics.
//!
//! Messages are handed to an idempotent librdkafka producer (`acks=all`) in the
//! order events were accepted, at most `kafka.max_in_flight` at a time; the rest
//! waits on disk. An outbox entry is removed only after the broker acknowledged
//! it (or it was dead-lettered). Retryable failures are retried inside librdkafka
//! (`message.timeout.ms = 0`: no local timeout) and, if one still surfaces, the
//! sink drains what is in flight, backs off and re-reads the outbox from its
//! start. Fatal failures (the codes in [`FATAL`]) go to the dead-letter record in
//! the store and to `kafka.dlq_topic`.
//!
//! Each message: key = envelope id (so one envelope stays in one partition, in
//! order), value = the event JSON, headers = the CloudEvents Kafka binding in
//! binary mode.
//!
//! [`audit`] copies the audit log to `audit.kafka_topic` with its own producer.

pub mod audit;
mod classify;
mod flow;
mod message;
mod producer;

pub use classify::{Class, classify};
pub use producer::check;

use flow::{Flow, Settled};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Header;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backoff::Backoff;
use crate::config::KafkaConfig;
use crate::event::EventHead;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::{Ack, Pending, Store};
use crate::time::Clock;

/// The producer's context: librdkafka's statistics go to the metrics.
pub struct Context {
    metrics: Arc<Metrics>,
}

impl ClientContext for Context {
    fn stats(&self, s: Statistics) {
        let m = &self.metrics;
        m.kafka_queue_messages.set(s.msg_cnt as i64);
        m.kafka_queue_bytes.set(s.msg_size as i64);
        for b in s.brokers.values() {
            // Bootstrap and internal entries have no round trips.
            if b.nodeid >= 0
                && let Some(rtt) = &b.rtt
            {
                m.kafka_broker_rtt
                    .with_label_values(&[b.name.as_str()])
                    .set(rtt.avg as f64 / 1e6);
            }
        }
    }
}

type KafkaProducer = FutureProducer<Context>;

/// Connectivity and rewinds, for `/readyz` and the admin API (message counts
/// are in the metrics).
#[derive(Debug, Default)]
pub struct KafkaStatus {
    pub connected: AtomicBool,
    /// Signalled when the brokers become reachable again: ends a retry pause, so
    /// a backlog starts draining as soon as the broker is back.
    pub reconnected: tokio::sync::Notify,
    pub rewinds: AtomicU64,
}

/// A message handed to the producer, and what became of it (librdkafka's
/// delivery report: partition and offset, or the error).
struct DeliveryReport {
    pending: Pending,
    result: Result<(i32, i64), KafkaError>,
}

#[derive(Clone)]
pub struct KafkaSink {
    cfg: KafkaConfig,
    /// The producer settings, resolved and checked at start-up ([`check`]).
    client: ClientConfig,
    producer: KafkaProducer,
    store: Store,
    /// Per topic, what its messages hide (`routes[].redact`).
    views: Arc<std::collections::HashMap<String, crate::privacy::Redactor>>,
    status: Arc<KafkaStatus>,
    metrics: Arc<Metrics>,
    clock: Clock,
}

/// Why handing a message to the producer failed.
enum Handoff {
    Handed,
    Failed(Pending, KafkaError),
}

impl KafkaSink {
    pub fn new(
        cfg: KafkaConfig,
        client: ClientConfig,
        store: Store,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> Result<KafkaSink, KafkaError> {
        let producer = client.create_with_context(Context {
            metrics: metrics.clone(),
        })?;
        Ok(KafkaSink {
            cfg,
            client,
            producer,
            store,
            views: Arc::default(),
            status: Arc::new(KafkaStatus::default()),
            metrics,
            clock,
        })
    }

    /// The sink with per-topic redactions (a topic's messages, and their
    /// dead-letter copies, carry the redacted event).
    pub fn with_views(
        mut self,
        views: std::collections::HashMap<String, crate::privacy::Redactor>,
    ) -> KafkaSink {
        self.views = Arc::new(views);
        self
    }

    pub fn status(&self) -> Arc<KafkaStatus> {
        self.status.clone()
    }

    /// Checks broker connectivity every `every` until the shutdown.
    pub fn health(
        &self,
        every: Duration,
        mut shutdown: Shutdown,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (producer, status) = (self.producer.clone(), self.status.clone());
        async move {
            loop {
                let p = producer.clone();
                let ok = tokio::task::spawn_blocking(move || {
                    p.client()
                        .fetch_metadata(None, Duration::from_secs(3))
                        .is_ok()
                })
                .await
                .unwrap_or(false);
                if status.connected.swap(ok, Ordering::SeqCst) != ok {
                    tracing::info!(connected = ok, "kafka connectivity changed");
                    if ok {
                        status.reconnected.notify_one();
                    }
                }
                // Look more often while the brokers are away.
                let pause = if ok {
                    every
                } else {
                    every.min(Duration::from_secs(1))
                };
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.begun() => return,
                }
            }
        }
    }

    /// Runs until the shutdown; then waits until its deadline for the
    /// messages in flight (those still unacknowledged stay in the outbox).
    /// The decisions are [`Flow`]'s; this loop does the I/O.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        let notify = self.store.outbox_notify();
        let backoff = Backoff {
            base: self.cfg.retry_backoff,
            max: self.cfg.retry_backoff_max,
        };
        let mut flow = Flow::new(self.cfg.max_in_flight, backoff);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<DeliveryReport>();
        let mut deadline: Option<Instant> = None;
        loop {
            let room = flow.room(self.clock.now_ms());
            if room > 0 {
                let after = flow.cursor().map(|(s, t)| (s, t.to_owned()));
                match self.fetch(after, room).await {
                    Ok(batch) => {
                        for p in batch {
                            flow.read(p.seq, &p.topic);
                            let Handoff::Failed(pending, e) = self.handoff(p, &done_tx).await
                            else {
                                flow.handed();
                                continue;
                            };
                            // Never reached librdkafka: settle it here.
                            let report = DeliveryReport {
                                pending,
                                result: Err(e),
                            };
                            let (ack, settled) = self.settle(report).await;
                            flow.settled(settled);
                            self.flush_acks(ack.into_iter().collect()).await;
                            if flow.rewinding() {
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the kafka outbox");
                        flow.read_failed(self.clock.now_ms());
                    }
                }
            }
            if let Some(r) = flow.rewind(self.clock.now_ms(), fastrand::f64()) {
                tracing::warn!(
                    pause = ?r.pause,
                    failures = r.failures,
                    "kafka delivery failed; re-reading the outbox after a pause"
                );
                self.status.rewinds.fetch_add(1, Ordering::Relaxed);
                if r.replace_producer {
                    self.replace_producer();
                }
            }
            if flow.finished() {
                break;
            }
            let pause = flow.paused_until().filter(|_| !flow.stopping());
            let clock = self.clock.clone();
            tokio::select! {
                Some(d) = done_rx.recv() => {
                    let mut batch = vec![d];
                    while let Ok(d) = done_rx.try_recv() {
                        batch.push(d);
                    }
                    let mut acks = Vec::with_capacity(batch.len());
                    for d in batch {
                        let (ack, settled) = self.settle(d).await;
                        flow.returned(settled);
                        acks.extend(ack);
                    }
                    self.flush_acks(acks).await;
                }
                _ = notify.notified(), if flow.wants_news() => {}
                _ = clock.sleep_until(pause.unwrap_or(i64::MAX)), if pause.is_some() => {}
                _ = self.status.reconnected.notified(), if pause.is_some() => flow.reconnected(),
                d = shutdown.begun(), if !flow.stopping() => {
                    flow.stop();
                    deadline = Some(d);
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    tracing::warn!(in_flight = flow.in_flight(), "kafka sink stopped with deliveries still in flight; they stay in the outbox");
                    break;
                }
            }
        }
        let p = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(1))).await;
    }

    async fn fetch(
        &self,
        after: Option<(u64, String)>,
        limit: usize,
    ) -> Result<Vec<Pending>, crate::store::StoreError> {
        self.store
            .read(move |s| s.pending(after.as_ref().map(|(s, t)| (*s, t.as_str())), limit))
            .await
    }

    /// Hands one message to librdkafka; waits while its queue is full.
    async fn handoff(
        &self,
        mut p: Pending,
        done: &mpsc::UnboundedSender<DeliveryReport>,
    ) -> Handoff {
        if let Some(r) = self.views.get(&p.topic) {
            // Unreadable JSON cannot be redacted: it is not sent either.
            p.json = r.apply_bytes(&p.json).unwrap_or_default();
        }
        let (key, ce_headers) = match EventHead::read(&p.json) {
            Ok(m) => (m.key().to_owned(), message::headers(&m)),
            Err(e) => {
                tracing::error!(seq = p.seq, error = %e, "stored event is unreadable");
                return Handoff::Failed(
                    p,
                    KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord),
                );
            }
        };
        let span = tracing::info_span!(
            "kafka.publish",
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.destination.name = %p.topic,
            messaging.kafka.partition = tracing::field::Empty,
            messaging.kafka.offset = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let traceparent = crate::telemetry::outbound(&span, p.traceparent.as_deref());
        let fut = loop {
            let mut headers = ce_headers.clone();
            if let Some(tp) = &traceparent {
                headers = headers.insert(Header {
                    key: "traceparent",
                    value: Some(tp.as_str()),
                });
            }
            let record = FutureRecord::to(&p.topic)
                .key(&key)
                .payload(&p.json)
                .headers(headers);
            match self.producer.send_result(record) {
                Ok(f) => break f,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Handoff::Failed(p, e),
            }
        };
        spawn_delivery(p, fut, done.clone(), span);
        Handoff::Handed
    }

    /// What a delivery report means: the ack to record (none for a failure
    /// that is retried) and what the flow makes of it.
    async fn settle(&self, d: DeliveryReport) -> (Option<Ack>, Settled) {
        let DeliveryReport { pending: p, result } = d;
        match result {
            Ok((partition, offset)) => {
                self.count(&p.topic, "published");
                let lag_ms = self.clock.now_ms() - p.received_ms;
                self.metrics
                    .kafka_publish_lag
                    .observe(lag_ms.max(0) as f64 / 1000.0);
                let ack = Ack::Published {
                    seq: p.seq,
                    topic: p.topic,
                    partition,
                    offset,
                };
                (Some(ack), Settled::Published)
            }
            Err(e) => match classify(&e) {
                Class::Fatal(reason) => {
                    self.count(&p.topic, "dead_lettered");
                    self.dead_letter(&p, reason, &e).await;
                    let ack = Ack::DeadLettered {
                        seq: p.seq,
                        topic: p.topic,
                        reason: format!("{reason}: {e}"),
                    };
                    (Some(ack), Settled::DeadLettered)
                }
                Class::Retryable => {
                    self.count(&p.topic, "failed");
                    tracing::debug!(seq = p.seq, topic = %p.topic, error = %e, "retryable kafka failure");
                    (None, Settled::Retryable)
                }
                Class::ProducerFatal => {
                    self.count(&p.topic, "failed");
                    tracing::error!(error = %e, "kafka producer hit a fatal error; replacing it");
                    (None, Settled::ProducerFatal)
                }
            },
        }
    }

    /// Publishes a copy to the DLQ topic (best effort: the store keeps the record).
    async fn dead_letter(&self, p: &Pending, reason: &str, e: &KafkaError) {
        tracing::error!(seq = p.seq, topic = %p.topic, reason, error = %e, "kafka message dead-lettered");
        let Some(dlq) = &self.cfg.dlq_topic else {
            return;
        };
        let Ok(meta) = EventHead::read(&p.json) else {
            return;
        };
        let error = e.to_string();
        let headers = message::headers(&meta)
            .insert(Header {
                key: "countersign_dlq_reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "countersign_dlq_error",
                value: Some(error.as_str()),
            })
            .insert(Header {
                key: "countersign_dlq_topic",
                value: Some(p.topic.as_str()),
            });
        let record = FutureRecord::to(dlq)
            .key(meta.key())
            .payload(&p.json)
            .headers(headers);
        let sent = match self.producer.send_result(record) {
            Ok(fut) => matches!(
                tokio::time::timeout(Duration::from_secs(30), fut).await,
                Ok(Ok(Ok(_)))
            ),
            Err(_) => false,
        };
        if !sent {
            tracing::error!(
                seq = p.seq,
                dlq,
                "could not publish to the DLQ topic; the dead letter stays in the store"
            );
        }
    }

    async fn flush_acks(&self, acks: Vec<Ack>) {
        if acks.is_empty() {
            return;
        }
        if let Err(e) = self.store.ack(acks).await {
            // The entries stay in the outbox and are published again after a restart.
            tracing::error!(error = %e, "cannot record kafka acknowledgements");
        }
    }

    fn count(&self, topic: &str, outcome: &str) {
        self.metrics
            .kafka_messages
            .with_label_values(&[topic, outcome])
            .inc();
    }

    fn replace_producer(&mut self) {
        let ctx = Context {
            metrics: self.metrics.clone(),
        };
        match self.client.create_with_context::<_, KafkaProducer>(ctx) {
            Ok(p) => self.producer = p,
            Err(e) => tracing::error!(error = %e, "cannot create a new kafka producer"),
        }
    }
}

fn spawn_delivery(
    pending: Pending,
    fut: DeliveryFuture,
    done: mpsc::UnboundedSender<DeliveryReport>,
    span: tracing::Span,
) {
    tokio::spawn(async move {
        let result = match fut.await {
            Ok(Ok(d)) => Ok((d.partition, d.offset)),
            Ok(Err((e, _))) => Err(e),
            Err(_) => Err(KafkaError::Canceled),
        };
        match &result {
            Ok((partition, offset)) => {
                span.record("messaging.kafka.partition", partition);
                span.record("messaging.kafka.offset", offset);
            }
            Err(e) => {
                span.record("error", tracing::field::display(e));
            }
        }
        // The span ends here: it covers hand-off to acknowledgement.
        drop(span);
        let _ = done.send(DeliveryReport { pending, result });
    });
}
