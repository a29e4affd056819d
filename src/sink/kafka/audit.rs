//! The audit log's copy on Kafka (`audit.kafka_topic`): every entry, in
//! order, to partition 0 of the topic with the entry's sequence as key and
//! the entry's JSON (as stored) as value, so a copy lives on the cluster's
//! replicated log. The store keeps how far the copy got (a cursor committed
//! with the writer's next group commit), so after a restart it goes on
//! from there; an entry may be sent twice around a crash (the same key and
//! bytes: consumers keep one per sequence), never skipped.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::shutdown::Shutdown;
use crate::store::Store;

/// Entries read and sent per round at most.
const BATCH: usize = 500;
/// How long one entry may wait in the producer's queue.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct AuditCopy {
    producer: FutureProducer,
    topic: String,
    store: Store,
    backoff: Duration,
    backoff_max: Duration,
    /// Entries the copy is behind (`countersign_audit_kafka_lag`).
    lag: prometheus::IntGauge,
}

impl AuditCopy {
    pub fn new(
        client: &ClientConfig,
        topic: String,
        store: Store,
        backoff: (Duration, Duration),
        lag: prometheus::IntGauge,
    ) -> Result<AuditCopy, KafkaError> {
        // One request in flight per connection: a retried request cannot
        // overtake the next, so the partition holds the entries in order.
        let mut client = client.clone();
        client.set("max.in.flight.requests.per.connection", "1");
        Ok(AuditCopy {
            producer: client.create()?,
            topic,
            store,
            backoff: backoff.0,
            backoff_max: backoff.1,
            lag,
        })
    }

    /// Copies entries until shutdown; then what is already written, within
    /// the shutdown deadline.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let appended = self.store.audit_appended();
        let mut wait = self.backoff;
        loop {
            let stopping = shutdown.deadline().is_some();
            match self.round().await {
                Ok(0) if stopping => return,
                Ok(0) => {
                    wait = self.backoff;
                    tokio::select! {
                        _ = appended.notified() => {}
                        // An entry appended before we listened is not lost:
                        // look again now and then.
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = shutdown.begun() => {}
                    }
                }
                Ok(_) => wait = self.backoff,
                Err(e) => {
                    tracing::warn!(error = %e, topic = %self.topic, retry_in = ?wait, "copying the audit log to Kafka failed");
                    if stopping {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.begun() => return,
                    }
                    wait = (wait * 2).min(self.backoff_max);
                }
            }
        }
    }

    /// One batch: read after the cursor, send in order, move the cursor.
    async fn round(&self) -> Result<usize, String> {
        let from = self.store.audit_copied().map_err(|e| e.to_string())? + 1;
        let store = self.store.clone();
        let batch = tokio::task::spawn_blocking(move || store.audit_raw(from, BATCH))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let Some(last) = batch.last().map(|(s, _)| *s) else {
            self.lag.set(0);
            return Ok(0);
        };
        let keys: Vec<String> = batch.iter().map(|(s, _)| s.to_string()).collect();
        // Handed over in order; with one request in flight the partition
        // keeps it.
        let sends = batch.iter().zip(&keys).map(|((_, json), key)| {
            self.producer.send(
                FutureRecord::to(&self.topic)
                    .partition(0)
                    .key(key.as_str())
                    .payload(json.as_slice()),
                QUEUE_TIMEOUT,
            )
        });
        for r in futures_util::future::join_all(sends).await {
            r.map_err(|(e, _)| e.to_string())?;
        }
        self.store
            .set_audit_copied(last)
            .await
            .map_err(|e| e.to_string())?;
        let head = self.store.audit_head().map_err(|e| e.to_string())?;
        self.lag.set(head.saturating_sub(last) as i64);
        Ok(batch.len())
    }
}
