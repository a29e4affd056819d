//! The single writer thread: group commit and sweeping.
//!
//! It blocks for one command, then drains whatever else is queued (up to
//! `max_batch` events) into the same write transaction and commits once
//! (`Durability::Immediate`: synced before `commit` returns). Only then are the
//! callers answered, duplicates included, so no 2xx ever precedes the sync.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::tables::{EVENTS, IDS, KAFKA_DONE, KAFKA_QUEUE, META, NEXT_SEQ};
use super::{Ack, Command, NewEvent, Outcome, Settings, Stats, StoreError};

type Reply = oneshot::Sender<Result<Vec<Outcome>, StoreError>>;

/// One queued write request; a batch of them shares a transaction.
enum Item {
    Commit(Vec<NewEvent>),
    Ack(Vec<Ack>),
}

impl Item {
    fn len(&self) -> usize {
        match self {
            Item::Commit(e) => e.len(),
            Item::Ack(a) => a.len(),
        }
    }
}

pub(super) struct Writer {
    db: Arc<Database>,
    settings: Settings,
    fail_next: Arc<AtomicBool>,
    stats: Arc<Stats>,
    outbox: Arc<tokio::sync::Notify>,
    next_seq: u64,
}

impl Writer {
    pub fn new(
        db: Arc<Database>,
        settings: Settings,
        fail_next: Arc<AtomicBool>,
        stats: Arc<Stats>,
        outbox: Arc<tokio::sync::Notify>,
    ) -> Result<Writer, StoreError> {
        let next_seq = {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            meta.get(NEXT_SEQ)?.map(|g| g.value()).unwrap_or(1)
        };
        Ok(Writer {
            db,
            settings,
            fail_next,
            stats,
            outbox,
            next_seq,
        })
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut pending: Option<Command> = None;
        loop {
            let Some(cmd) = pending.take().or_else(|| rx.blocking_recv()) else {
                return;
            };
            let first = match cmd {
                Command::Commit { events, reply } => (Item::Commit(events), reply),
                Command::Ack { acks, reply } => (Item::Ack(acks), reply),
                Command::Sweep { now_ms, reply } => {
                    let _ = reply.send(self.sweep(now_ms));
                    continue;
                }
                Command::Shutdown => return,
            };
            let mut count = first.0.len();
            let mut batch = vec![first];
            while count < self.settings.max_batch {
                let next = match rx.try_recv() {
                    Ok(Command::Commit { events, reply }) => (Item::Commit(events), reply),
                    Ok(Command::Ack { acks, reply }) => (Item::Ack(acks), reply),
                    Ok(other) => {
                        pending = Some(other);
                        break;
                    }
                    Err(_) => break,
                };
                count += next.0.len();
                batch.push(next);
            }
            self.commit_batch(batch);
        }
    }

    fn commit_batch(&mut self, batch: Vec<(Item, Reply)>) {
        let start_seq = self.next_seq;
        let (items, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match self.write(&items) {
            Ok(outcomes) => {
                let n: usize = items
                    .iter()
                    .filter(|i| matches!(i, Item::Commit(_)))
                    .map(Item::len)
                    .sum();
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .largest_batch
                    .fetch_max(n as u64, Ordering::Relaxed);
                let queued = items.iter().any(
                    |i| matches!(i, Item::Commit(e) if e.iter().any(|e| !e.topics.is_empty())),
                );
                for (reply, out) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(out));
                }
                if queued {
                    self.outbox.notify_one();
                }
            }
            Err(e) => {
                self.next_seq = start_seq;
                tracing::error!(error = %e, requests = replies.len(), "store commit failed; nothing of this batch was kept");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// One transaction for the whole batch; returns outcomes per request (acks
    /// have none).
    fn write(&mut self, batch: &[Item]) -> Result<Vec<Vec<Outcome>>, StoreError> {
        let txn = self.db.begin_write()?;
        let outcomes = self.insert_all(&txn, batch)?;
        if self.fail_next.swap(false, Ordering::SeqCst) {
            txn.abort()?;
            return Err(StoreError::Injected);
        }
        txn.commit()?;
        let stored = outcomes
            .iter()
            .flatten()
            .filter(|o| matches!(o, Outcome::Stored { .. }))
            .count();
        self.stats
            .events_stored
            .fetch_add(stored as u64, Ordering::Relaxed);
        let dups = outcomes.iter().flatten().count() - stored;
        self.stats
            .duplicates
            .fetch_add(dups as u64, Ordering::Relaxed);
        Ok(outcomes)
    }

    fn insert_all(
        &mut self,
        txn: &WriteTransaction,
        batch: &[Item],
    ) -> Result<Vec<Vec<Outcome>>, StoreError> {
        let mut events = txn.open_table(EVENTS)?;
        let mut ids = txn.open_table(IDS)?;
        let mut queue = txn.open_table(KAFKA_QUEUE)?;
        let mut done = txn.open_table(KAFKA_DONE)?;
        let now = crate::time::now_ms();
        let mut out = Vec::with_capacity(batch.len());
        for item in batch {
            let request = match item {
                Item::Ack(acks) => {
                    for a in acks {
                        queue.remove(a.key())?;
                        let v = match a {
                            Ack::Published {
                                partition, offset, ..
                            } => (0u8, *partition, *offset, now, ""),
                            Ack::DeadLettered { reason, .. } => (1u8, -1, -1, now, reason.as_str()),
                        };
                        done.insert(a.key(), v)?;
                    }
                    out.push(Vec::new());
                    continue;
                }
                Item::Commit(request) => request,
            };
            let mut outcomes = Vec::with_capacity(request.len());
            for e in request {
                let key = (e.id.as_str(), e.source.as_str());
                let claim = ids.get(key)?.map(|g| g.value());
                if let Some((seq, expires)) = claim
                    && expires > e.received_ms
                {
                    outcomes.push(Outcome::Duplicate { seq });
                    continue;
                }
                // New, or seen before the dedup window: the id now names this event.
                let seq = self.next_seq;
                self.next_seq += 1;
                let expires = e.received_ms.saturating_add(self.settings.dedup_ttl_ms);
                events.insert(seq, (e.received_ms, key.1, key.0, e.json.as_slice()))?;
                ids.insert(key, (seq, expires))?;
                for topic in &e.topics {
                    queue.insert((seq, topic.as_str()), ())?;
                }
                outcomes.push(Outcome::Stored { seq });
            }
            out.push(outcomes);
        }
        txn.open_table(META)?.insert(NEXT_SEQ, self.next_seq)?;
        Ok(out)
    }

    /// Deletes up to `sweep_batch` events past retention, with their id entries
    /// and delivery records, in one transaction. Events still in the outbox stay.
    fn sweep(&mut self, now_ms: i64) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let gone = {
            let mut events = txn.open_table(EVENTS)?;
            let mut ids = txn.open_table(IDS)?;
            let mut done = txn.open_table(KAFKA_DONE)?;
            let oldest_queued = txn
                .open_table(KAFKA_QUEUE)?
                .first()?
                .map(|(k, _)| k.value().0)
                .unwrap_or(u64::MAX);
            let cutoff = now_ms.saturating_sub(self.settings.retention_ms);
            let mut gone = 0;
            while gone < self.settings.sweep_batch {
                let Some((seq, source, id)) = events.first()?.and_then(|(k, v)| {
                    let (received, source, id, _) = v.value();
                    (received < cutoff && k.value() < oldest_queued)
                        .then(|| (k.value(), source.to_owned(), id.to_owned()))
                }) else {
                    break;
                };
                done.retain_in((seq, "")..(seq + 1, ""), |_, _| false)?;
                events.remove(seq)?;
                // A later event with the same id may own the entry by now.
                let key = (id.as_str(), source.as_str());
                if ids.get(key)?.is_some_and(|g| g.value().0 == seq) {
                    ids.remove(key)?;
                }
                gone += 1;
            }
            gone
        };
        txn.commit()?;
        self.stats
            .events_swept
            .fetch_add(gone as u64, Ordering::Relaxed);
        Ok(gone)
    }
}
