//! The Kafka outbox: one entry per (event, topic), written in the same
//! transaction as its event and removed only by an acknowledgement (published
//! with partition and offset, or dead-lettered with the reason), which the
//! writer applies in its group commits.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, Table};

use super::tables::{
    DoneRecord, DoneRow, DoneStatus, EVENTS, EventRow, KAFKA_DONE, KAFKA_QUEUE, TRACE,
};
use super::{Backlog, Command, Store, StoreError};

/// A Kafka message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub seq: u64,
    pub topic: String,
    pub received_ms: i64,
    /// The trace the webhook was taken in, continued by the message.
    pub traceparent: Option<String>,
    pub json: Vec<u8>,
}

/// What became of a Kafka message; removes it from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    Published {
        seq: u64,
        topic: String,
        partition: i32,
        offset: i64,
    },
    DeadLettered {
        seq: u64,
        topic: String,
        reason: String,
    },
}

impl Ack {
    fn key(&self) -> (u64, &str) {
        match self {
            Ack::Published { seq, topic, .. } | Ack::DeadLettered { seq, topic, .. } => {
                (*seq, topic)
            }
        }
    }
}

/// A Kafka delivery of an event, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaDelivery {
    Pending {
        topic: String,
    },
    Published {
        topic: String,
        partition: i32,
        offset: i64,
        at_ms: i64,
    },
    DeadLettered {
        topic: String,
        reason: String,
        at_ms: i64,
    },
}

impl Store {
    /// Records what became of Kafka messages and removes them from the outbox.
    /// Acks share group commits with incoming events.
    pub async fn ack(&self, acks: Vec<Ack>) -> Result<(), StoreError> {
        self.call(|reply| Command::Ack { acks, reply }).await
    }

    /// Outbox entries after `after` (exclusive), oldest first, at most `limit`.
    pub fn pending(
        &self,
        after: Option<(u64, &str)>,
        limit: usize,
    ) -> Result<Vec<Pending>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let queue = txn.open_table(KAFKA_QUEUE)?;
        let events = txn.open_table(EVENTS)?;
        let trace = txn.open_table(TRACE)?;
        let range = match after {
            Some(k) => queue.range(k..)?,
            None => queue.range::<(u64, &str)>(..)?,
        };
        let mut out = Vec::new();
        for entry in range {
            let (k, _) = entry?;
            let (seq, topic) = k.value();
            if after == Some((seq, topic)) {
                continue;
            }
            if out.len() == limit {
                break;
            }
            if let Some(v) = events.get(seq)? {
                let e = EventRow::from(v.value());
                out.push(Pending {
                    seq,
                    topic: topic.to_owned(),
                    received_ms: e.received_ms,
                    traceparent: trace.get(seq)?.map(|t| t.value().to_owned()),
                    json: e.json.to_vec(),
                });
            }
        }
        Ok(out)
    }

    /// Kafka messages waiting in the outbox and when the oldest was received.
    pub fn kafka_backlog(&self) -> Result<Backlog, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let queue = txn.open_table(KAFKA_QUEUE)?;
        let count = queue.len()?;
        let oldest_ms = match queue.first()? {
            Some((k, _)) => txn
                .open_table(EVENTS)?
                .get(k.value().0)?
                .map(|e| EventRow::from(e.value()).received_ms),
            None => None,
        };
        Ok(Backlog { count, oldest_ms })
    }

    /// How many Kafka messages wait in the outbox.
    pub fn pending_count(&self) -> Result<u64, StoreError> {
        let txn = self.inner.db.begin_read()?;
        Ok(txn.open_table(KAFKA_QUEUE)?.len()?)
    }

    /// The Kafka deliveries of event `seq`.
    pub fn kafka_deliveries(&self, seq: u64) -> Result<Vec<KafkaDelivery>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let mut out = Vec::new();
        for entry in txn
            .open_table(KAFKA_QUEUE)?
            .range((seq, "")..(seq + 1, ""))?
        {
            let (k, _) = entry?;
            out.push(KafkaDelivery::Pending {
                topic: k.value().1.to_owned(),
            });
        }
        for entry in txn
            .open_table(KAFKA_DONE)?
            .range((seq, "")..(seq + 1, ""))?
        {
            let (k, v) = entry?;
            let topic = k.value().1.to_owned();
            let row = DoneRow::from(v.value());
            out.push(match row.status()? {
                DoneStatus::Published => KafkaDelivery::Published {
                    topic,
                    partition: row.partition,
                    offset: row.offset,
                    at_ms: row.at_ms,
                },
                DoneStatus::DeadLettered => KafkaDelivery::DeadLettered {
                    topic,
                    reason: row.reason.to_owned(),
                    at_ms: row.at_ms,
                },
            });
        }
        Ok(out)
    }
}

/// Applies acknowledgements inside the writer's transaction: each removes its
/// outbox entry and records what became of the message.
pub(super) fn apply_acks(
    queue: &mut Table<(u64, &'static str), ()>,
    done: &mut Table<(u64, &'static str), DoneRecord<'static>>,
    acks: &[Ack],
    now_ms: i64,
) -> Result<(), StoreError> {
    for a in acks {
        queue.remove(a.key())?;
        let row = match a {
            Ack::Published {
                partition, offset, ..
            } => DoneRow {
                status: DoneStatus::Published.code(),
                partition: *partition,
                offset: *offset,
                at_ms: now_ms,
                reason: "",
            },
            Ack::DeadLettered { reason, .. } => DoneRow {
                status: DoneStatus::DeadLettered.code(),
                partition: -1,
                offset: -1,
                at_ms: now_ms,
                reason,
            },
        };
        done.insert(a.key(), row.tuple())?;
    }
    Ok(())
}
