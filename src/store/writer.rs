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

use super::tables::{BY_ID, DEDUP, DEDUP_EXPIRY, EVENTS, META, NEXT_SEQ};
use super::{Command, NewEvent, Outcome, Settings, Stats, StoreError};

type Reply = oneshot::Sender<Result<Vec<Outcome>, StoreError>>;

pub(super) struct Writer {
    db: Arc<Database>,
    settings: Settings,
    fail_next: Arc<AtomicBool>,
    stats: Arc<Stats>,
    next_seq: u64,
}

impl Writer {
    pub fn new(
        db: Arc<Database>,
        settings: Settings,
        fail_next: Arc<AtomicBool>,
        stats: Arc<Stats>,
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
            next_seq,
        })
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut pending: Option<Command> = None;
        loop {
            let Some(cmd) = pending.take().or_else(|| rx.blocking_recv()) else {
                return;
            };
            match cmd {
                Command::Commit { events, reply } => {
                    let mut batch = vec![(events, reply)];
                    let mut count = batch[0].0.len();
                    while count < self.settings.max_batch {
                        match rx.try_recv() {
                            Ok(Command::Commit { events, reply }) => {
                                count += events.len();
                                batch.push((events, reply));
                            }
                            Ok(other) => {
                                pending = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_batch(batch);
                }
                Command::Sweep { now_ms, reply } => {
                    let _ = reply.send(self.sweep(now_ms));
                }
                Command::Shutdown => return,
            }
        }
    }

    fn commit_batch(&mut self, batch: Vec<(Vec<NewEvent>, Reply)>) {
        let start_seq = self.next_seq;
        let (events, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match self.write(&events) {
            Ok(outcomes) => {
                let n: usize = events.iter().map(Vec::len).sum();
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .largest_batch
                    .fetch_max(n as u64, Ordering::Relaxed);
                for (reply, out) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(out));
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

    /// One transaction for the whole batch; returns outcomes per request.
    fn write(&mut self, batch: &[Vec<NewEvent>]) -> Result<Vec<Vec<Outcome>>, StoreError> {
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
        batch: &[Vec<NewEvent>],
    ) -> Result<Vec<Vec<Outcome>>, StoreError> {
        let mut events = txn.open_table(EVENTS)?;
        let mut by_id = txn.open_table(BY_ID)?;
        let mut dedup = txn.open_table(DEDUP)?;
        let mut expiry = txn.open_table(DEDUP_EXPIRY)?;
        let mut out = Vec::with_capacity(batch.len());
        for request in batch {
            let mut outcomes = Vec::with_capacity(request.len());
            for e in request {
                let key = (e.source.as_str(), e.id.as_str());
                let existing = dedup.get(key)?.map(|g| g.value());
                if let Some((seq, expires)) = existing {
                    if expires > e.received_ms {
                        outcomes.push(Outcome::Duplicate { seq });
                        continue;
                    }
                    expiry.remove((expires, key.0, key.1))?;
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                let expires = e.received_ms.saturating_add(self.settings.dedup_ttl_ms);
                events.insert(seq, (e.received_ms, key.0, key.1, e.json.as_slice()))?;
                by_id.insert((key.1, key.0), seq)?;
                dedup.insert(key, (seq, expires))?;
                expiry.insert((expires, key.0, key.1), ())?;
                outcomes.push(Outcome::Stored { seq });
            }
            out.push(outcomes);
        }
        txn.open_table(META)?.insert(NEXT_SEQ, self.next_seq)?;
        Ok(out)
    }

    /// Deletes up to `sweep_batch` expired dedup claims and as many events past
    /// retention, in one transaction.
    fn sweep(&mut self, now_ms: i64) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let limit = self.settings.sweep_batch;
        let dedup_gone = {
            let mut dedup = txn.open_table(DEDUP)?;
            let mut expiry = txn.open_table(DEDUP_EXPIRY)?;
            let mut gone = 0;
            while gone < limit {
                let Some(first) = expiry.first()?.map(|(k, _)| {
                    let (exp, s, id) = k.value();
                    (exp, s.to_owned(), id.to_owned())
                }) else {
                    break;
                };
                if first.0 > now_ms {
                    break;
                }
                expiry.remove((first.0, first.1.as_str(), first.2.as_str()))?;
                dedup.remove((first.1.as_str(), first.2.as_str()))?;
                gone += 1;
            }
            gone
        };
        let events_gone = {
            let mut events = txn.open_table(EVENTS)?;
            let mut by_id = txn.open_table(BY_ID)?;
            let cutoff = now_ms.saturating_sub(self.settings.retention_ms);
            let mut gone = 0;
            while gone < limit {
                let Some((seq, source, id)) = events.first()?.and_then(|(k, v)| {
                    let (received, source, id, _) = v.value();
                    (received < cutoff).then(|| (k.value(), source.to_owned(), id.to_owned()))
                }) else {
                    break;
                };
                events.remove(seq)?;
                by_id.remove((id.as_str(), source.as_str()))?;
                gone += 1;
            }
            gone
        };
        txn.commit()?;
        self.stats
            .dedup_swept
            .fetch_add(dedup_gone as u64, Ordering::Relaxed);
        self.stats
            .events_swept
            .fetch_add(events_gone as u64, Ordering::Relaxed);
        Ok(dedup_gone + events_gone)
    }
}
