//! The single writer thread: group commit (events, Kafka acks, HTTP delivery
//! updates) and sweeping.
//!
//! It blocks for one command, then drains whatever else is queued (up to
//! `max_batch` events) into the same write transaction and commits once
//! (`Durability::Immediate`: synced before `commit` returns). Only then are the
//! callers answered, duplicates included, so no 2xx ever precedes the sync.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::http::{self, HttpOp};
use super::tables::{DISABLED, EVENTS, IDS, KAFKA_DONE, KAFKA_QUEUE, META, NEXT_SEQ, TRACE};
use super::{Ack, Command, NewEvent, Outcome, Settings, Stats, StoreError};

/// Which sinks a commit gave new work.
#[derive(Default)]
struct Wake {
    kafka: bool,
    http: bool,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One queued write request with its reply; a batch of them shares a transaction.
enum Item {
    Commit(Vec<NewEvent>, Reply<Vec<Outcome>>),
    Ack(Vec<Ack>, Reply<()>),
    Http(Vec<HttpOp>, Reply<Vec<bool>>),
}

/// What a request's part of the transaction produced.
enum Done {
    Outcomes(Vec<Outcome>),
    Unit,
    Applied(Vec<bool>),
}

impl Item {
    fn from_command(c: Command) -> Result<Item, Command> {
        match c {
            Command::Commit { events, reply } => Ok(Item::Commit(events, reply)),
            Command::Ack { acks, reply } => Ok(Item::Ack(acks, reply)),
            Command::Http { ops, reply } => Ok(Item::Http(ops, reply)),
            other => Err(other),
        }
    }

    fn len(&self) -> usize {
        match self {
            Item::Commit(e, _) => e.len(),
            Item::Ack(a, _) => a.len(),
            Item::Http(o, _) => o.len(),
        }
    }

    fn answer(self, done: Result<Done, StoreError>) {
        match (self, done) {
            (Item::Commit(_, r), Ok(Done::Outcomes(o))) => drop(r.send(Ok(o))),
            (Item::Ack(_, r), Ok(_)) => drop(r.send(Ok(()))),
            (Item::Http(_, r), Ok(Done::Applied(a))) => drop(r.send(Ok(a))),
            (Item::Commit(_, r), Err(e)) => drop(r.send(Err(e))),
            (Item::Ack(_, r), Err(e)) => drop(r.send(Err(e))),
            (Item::Http(_, r), Err(e)) => drop(r.send(Err(e))),
            (item, Ok(_)) => item.answer(Err(StoreError::Db("mismatched reply".into()))),
        }
    }
}

pub(super) struct Writer {
    db: Arc<Database>,
    settings: Settings,
    fail_next: Arc<AtomicBool>,
    stats: Arc<Stats>,
    outbox: Arc<tokio::sync::Notify>,
    /// Bumped after a commit that scheduled HTTP deliveries (wakes their workers).
    http: tokio::sync::watch::Sender<u64>,
    next_seq: u64,
}

impl Writer {
    pub fn new(
        db: Arc<Database>,
        settings: Settings,
        fail_next: Arc<AtomicBool>,
        stats: Arc<Stats>,
        outbox: Arc<tokio::sync::Notify>,
        http: tokio::sync::watch::Sender<u64>,
    ) -> Result<Writer, StoreError> {
        // Events carry their sequence number, so the newest one names the next;
        // META keeps the floor for what events do not show (numbers taken by
        // replays, and every number once sweeping removed the newest events).
        let next_seq = {
            let txn = db.begin_read()?;
            let floor = txn
                .open_table(META)?
                .get(NEXT_SEQ)?
                .map(|g| g.value())
                .unwrap_or(1);
            let after_newest = txn
                .open_table(EVENTS)?
                .last()?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(1);
            floor.max(after_newest)
        };
        Ok(Writer {
            db,
            settings,
            fail_next,
            stats,
            outbox,
            http,
            next_seq,
        })
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut pending: Option<Command> = None;
        loop {
            let Some(cmd) = pending.take().or_else(|| rx.blocking_recv()) else {
                return;
            };
            let first = match Item::from_command(cmd) {
                Ok(item) => item,
                Err(Command::Sweep { now_ms, reply }) => {
                    let _ = reply.send(self.sweep(now_ms));
                    continue;
                }
                Err(Command::Disable {
                    endpoint,
                    disabled,
                    reply,
                }) => {
                    let _ = reply.send(self.disable(&endpoint, disabled));
                    continue;
                }
                Err(_) => return,
            };
            let mut count = first.len();
            let mut batch = vec![first];
            while count < self.settings.max_batch {
                let Ok(cmd) = rx.try_recv() else { break };
                match Item::from_command(cmd) {
                    Ok(item) => {
                        count += item.len();
                        batch.push(item);
                    }
                    Err(other) => {
                        pending = Some(other);
                        break;
                    }
                }
            }
            self.commit_batch(batch);
        }
    }

    fn commit_batch(&mut self, batch: Vec<Item>) {
        let start_seq = self.next_seq;
        let timer = self.stats.commit_seconds.start_timer();
        let written = self.write(&batch);
        timer.observe_duration();
        match written {
            Ok((done, wake)) => {
                let n: usize = batch
                    .iter()
                    .filter(|i| matches!(i, Item::Commit(..)))
                    .map(Item::len)
                    .sum();
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
                self.stats.commit_batch.observe(batch.len() as f64);
                self.stats
                    .largest_batch
                    .fetch_max(n as u64, Ordering::Relaxed);
                for (item, d) in batch.into_iter().zip(done) {
                    item.answer(Ok(d));
                }
                if wake.kafka {
                    self.outbox.notify_one();
                }
                if wake.http {
                    self.http.send_modify(|v| *v = v.wrapping_add(1));
                }
            }
            Err(e) => {
                self.next_seq = start_seq;
                tracing::error!(error = %e, requests = batch.len(), "store commit failed; nothing of this batch was kept");
                for item in batch {
                    item.answer(Err(e.clone()));
                }
            }
        }
    }

    /// One transaction for the whole batch; returns what each request produced
    /// and which sinks have new work.
    fn write(&mut self, batch: &[Item]) -> Result<(Vec<Done>, Wake), StoreError> {
        let txn = self.db.begin_write()?;
        let out = self.insert_all(&txn, batch)?;
        if self.fail_next.swap(false, Ordering::SeqCst) {
            txn.abort()?;
            return Err(StoreError::Injected);
        }
        txn.commit()?;
        let (mut stored, mut dups) = (0, 0);
        for o in out.0.iter().filter_map(|d| match d {
            Done::Outcomes(o) => Some(o),
            _ => None,
        }) {
            for outcome in o {
                match outcome {
                    Outcome::Stored { .. } => stored += 1,
                    Outcome::Duplicate { .. } => dups += 1,
                }
            }
        }
        self.stats
            .events_stored
            .fetch_add(stored, Ordering::Relaxed);
        self.stats.duplicates.fetch_add(dups, Ordering::Relaxed);
        Ok(out)
    }

    fn insert_all(
        &mut self,
        txn: &WriteTransaction,
        batch: &[Item],
    ) -> Result<(Vec<Done>, Wake), StoreError> {
        let mut events = txn.open_table(EVENTS)?;
        let mut ids = txn.open_table(IDS)?;
        let mut queue = txn.open_table(KAFKA_QUEUE)?;
        let mut done = txn.open_table(KAFKA_DONE)?;
        let mut http = http::Tables::open(txn)?;
        let mut trace = txn.open_table(TRACE)?;
        let now = crate::time::now_ms();
        let mut wake = Wake::default();
        let mut out = Vec::with_capacity(batch.len());
        // Replays take numbers no event shows: persist the floor then. Events
        // alone need no META write (one page less per group commit).
        let mut took_order = false;
        for item in batch {
            let request = match item {
                Item::Ack(acks, _) => {
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
                    out.push(Done::Unit);
                    continue;
                }
                Item::Http(ops, _) => {
                    let mut applied = Vec::with_capacity(ops.len());
                    for op in ops {
                        took_order |= matches!(op, HttpOp::Replay { .. });
                        let ok = http.apply(op, now, &mut self.next_seq)?;
                        wake.http |= ok && !matches!(op, HttpOp::Discard { .. });
                        applied.push(ok);
                    }
                    out.push(Done::Applied(applied));
                    continue;
                }
                Item::Commit(request, _) => request,
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
                    wake.kafka = true;
                }
                if let (Some(tp), true) = (
                    &e.traceparent,
                    !e.topics.is_empty() || !e.endpoints.is_empty(),
                ) {
                    trace.insert(seq, tp.as_str())?;
                }
                for endpoint in &e.endpoints {
                    wake.http |= http.enqueue(seq, endpoint, &e.envelope, e.received_ms)?;
                }
                outcomes.push(Outcome::Stored { seq });
            }
            out.push(Done::Outcomes(outcomes));
        }
        if took_order {
            txn.open_table(META)?.insert(NEXT_SEQ, self.next_seq)?;
        }
        Ok((out, wake))
    }

    /// Marks an endpoint disabled (or enabled again).
    fn disable(
        &mut self,
        endpoint: &str,
        disabled: Option<(i64, String)>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(DISABLED)?;
            match &disabled {
                Some((at, reason)) => {
                    t.insert(endpoint, (*at, reason.as_str()))?;
                }
                None => {
                    t.remove(endpoint)?;
                }
            }
        }
        txn.commit()?;
        self.http.send_modify(|v| *v = v.wrapping_add(1));
        Ok(())
    }

    /// Deletes up to `sweep_batch` events past retention, with their id entries
    /// and delivery records, in one transaction. Events still in the outbox stay.
    fn sweep(&mut self, now_ms: i64) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let gone = {
            let mut events = txn.open_table(EVENTS)?;
            let mut ids = txn.open_table(IDS)?;
            let mut done = txn.open_table(KAFKA_DONE)?;
            let mut http = http::Tables::open(&txn)?;
            let mut trace = txn.open_table(TRACE)?;
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
                if http.unfinished(seq)? {
                    break;
                }
                http.remove_event(seq)?;
                trace.remove(seq)?;
                done.retain_in((seq, "")..(seq + 1, ""), |_, _| false)?;
                events.remove(seq)?;
                // A later event with the same id may own the entry by now.
                let key = (id.as_str(), source.as_str());
                if ids.get(key)?.is_some_and(|g| g.value().0 == seq) {
                    ids.remove(key)?;
                }
                gone += 1;
            }
            if gone > 0 {
                // The newest events may be among those gone: keep the floor.
                txn.open_table(META)?.insert(NEXT_SEQ, self.next_seq)?;
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
