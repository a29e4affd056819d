//! The single writer thread: batching and group commit. What each request
//! writes is its module's business (`events`, `outbox`, `deliveries`); this
//! file only batches, commits once, and answers.
//!
//! It blocks for one command, then drains whatever else is queued (up to
//! `max_batch` events) into the same write transaction and commits once. A
//! batch of webhooks is logged: its record is appended to the write-ahead log
//! and synced ([`super::wal`]), then the transaction commits without a sync
//! and a checkpoint makes it durable later. Any other batch commits with
//! `Durability::Immediate` (synced before `commit` returns). Only then are the
//! callers answered, duplicates included, so no 2xx ever precedes a sync.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, WriteTransaction};
use tokio::sync::mpsc;

use super::deliveries::HttpOp;
use super::envelopes::{EnvelopeOutcome, StreamMsg, apply as envelopes, timers};
use super::quarantine::{self, QuarantineOp};
use super::tables::QUARANTINE;
use super::tables::{DISABLED, EVENTS, KAFKA_DONE, KAFKA_QUEUE, META, NEXT_SEQ};
use super::wal::{self, WAL_SEQ};
use super::{Claim, Command, Hooks, NewEvent, Settings, Stats, StoreError};
use super::{deliveries, events, outbox};

/// The tables one batch writes, open in its transaction.
struct Open<'txn> {
    txn: &'txn WriteTransaction,
    events: events::Tables<'txn>,
    /// The Kafka outbox and the HTTP queue, opened on first use: a batch of
    /// events without destinations (and without acks or attempt records)
    /// opens neither (six tables, ~3% of the durable path's CPU).
    queue: Option<redb::Table<'txn, (u64, &'static str), ()>>,
    http: Option<deliveries::Tables<'txn>>,
    envelopes: Option<envelopes::Tables<'txn>>,
    /// The audit log and its checkpoints, when it is written.
    audit: Option<(AuditTable<'txn>, AuditTable<'txn>)>,
    /// Quarantine rows, open when the batch holds or decides any.
    quarantine: Option<redb::Table<'txn, u64, (u8, i64, &'static str)>>,
}

type AuditTable<'txn> = redb::Table<'txn, u64, &'static [u8]>;

impl<'txn> Open<'txn> {
    fn queue(&mut self) -> Result<&mut redb::Table<'txn, (u64, &'static str), ()>, StoreError> {
        if self.queue.is_none() {
            self.queue = Some(self.txn.open_table(KAFKA_QUEUE)?);
        }
        Ok(self.queue.as_mut().expect("opened above"))
    }

    fn http(&mut self) -> Result<&mut deliveries::Tables<'txn>, StoreError> {
        if self.http.is_none() {
            self.http = Some(deliveries::Tables::open(self.txn)?);
        }
        Ok(self.http.as_mut().expect("opened above"))
    }

    /// Writes event `seq`'s outbox entries and queues its deliveries.
    fn fan_out(&mut self, seq: u64, e: &NewEvent, wake: &mut Wake) -> Result<(), StoreError> {
        if !e.topics.is_empty() {
            let queue = self.queue()?;
            for topic in &e.topics {
                queue.insert((seq, topic.as_str()), ())?;
            }
            wake.kafka = true;
        }
        if !e.endpoints.is_empty() {
            let http = self.http()?;
            for endpoint in &e.endpoints {
                wake.http |= http.enqueue(seq, endpoint, &e.envelope, e.received_ms)?;
            }
        }
        Ok(())
    }
}

/// Which sinks a commit gave new work.
#[derive(Default)]
struct Wake {
    kafka: bool,
    http: bool,
}

mod item;

use item::Item;

/// How a batch's transaction becomes durable.
#[derive(Clone, Copy)]
enum Mode {
    /// Synced by its own commit.
    Synced,
    /// Its record appended to the write-ahead log and synced; committed
    /// without a sync.
    Logged,
    /// Replayed from the log's record `seq` at open; committed without a sync.
    Replayed(u64),
}

pub(super) struct Writer {
    db: Arc<Database>,
    /// The write-ahead log (replayed at open even when logging is off).
    log: wal::Log,
    /// The last log record the database holds (META `wal_seq`).
    wal_seq: u64,
    settings: Settings,
    hooks: Arc<Hooks>,
    stats: Arc<Stats>,
    outbox: Arc<tokio::sync::Notify>,
    audit_appended: Arc<tokio::sync::Notify>,
    /// Bumped after a commit that scheduled HTTP deliveries (wakes their workers).
    http: tokio::sync::watch::Sender<u64>,
    /// Envelope changes, broadcast once their commit synced.
    stream: tokio::sync::broadcast::Sender<Arc<StreamMsg>>,
    /// What the batch being written will broadcast.
    changes: Vec<Arc<StreamMsg>>,
    /// Envelope changes the batch being written made.
    changed: u64,
    /// Timers the batch being written fired.
    fired: Vec<timers::Fired>,
    /// Timers pending after the batch being written.
    timers: u64,
    /// Envelopes in memory (write-back within a batch).
    cache: envelopes::Cache,
    /// The audit chain's head.
    audit: super::audit::Head,
    /// A webhook entry's data, built in place (one buffer, reused).
    audit_buf: Vec<u8>,
    next_seq: u64,
    /// Where the next sweep step goes on (0: from the oldest event).
    sweep_from: u64,
    /// Where the next envelope sweep step goes on.
    envelope_sweep_from: u64,
}

impl Writer {
    pub fn new(
        (db, log): (Arc<Database>, wal::Log),
        settings: Settings,
        hooks: Arc<Hooks>,
        stats: Arc<Stats>,
        (outbox, audit_appended): (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>),
        http: tokio::sync::watch::Sender<u64>,
        stream: tokio::sync::broadcast::Sender<Arc<StreamMsg>>,
    ) -> Result<Writer, StoreError> {
        // Events carry their sequence number, so the newest one names the next;
        // META keeps the floor for what events do not show (numbers taken by
        // replays, and every number once sweeping removed the newest events).
        let (next_seq, wal_seq) = {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            let floor = meta.get(NEXT_SEQ)?.map_or(1, |g| g.value());
            let after_newest = txn
                .open_table(EVENTS)?
                .last()?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(1);
            let wal_seq = meta.get(WAL_SEQ)?.map_or(0, |g| g.value());
            (floor.max(after_newest), wal_seq)
        };
        {
            use redb::ReadableTableMetadata;
            let txn = db.begin_read()?;
            let pending = txn.open_table(super::envelopes::TIMERS)?.len()?;
            stats.timers_pending.set(pending as i64);
        }
        let cache_envelopes = settings.tracking.as_ref().map_or(1, |t| t.cache_envelopes);
        let audit = super::audit::Head::read(&db)?;
        Ok(Writer {
            db,
            log,
            wal_seq,
            settings,
            hooks,
            stats,
            outbox,
            audit_appended,
            http,
            stream,
            changes: Vec::new(),
            changed: 0,
            fired: Vec::new(),
            timers: 0,
            cache: envelopes::Cache::new(cache_envelopes),
            audit,
            audit_buf: Vec::with_capacity(512),
            next_seq,
            sweep_from: 0,
            envelope_sweep_from: 0,
        })
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut pending: Option<Command> = None;
        // Its own handle: the hold is taken around `commit_batch(&mut self)`.
        #[cfg(test)]
        let hooks = self.hooks.clone();
        loop {
            let Some(cmd) = pending.take().or_else(|| rx.blocking_recv()) else {
                // Every handle dropped without close(): sign the tail all the same.
                self.stop();
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
                    by,
                    reply,
                }) => {
                    let _ = reply.send(self.disable(&endpoint, disabled, by.as_ref()));
                    continue;
                }
                Err(Command::Checkpoint { reply }) => {
                    let _ = reply.send(self.checkpoint());
                    continue;
                }
                Err(_) => {
                    self.stop();
                    return;
                }
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
            #[cfg(test)]
            let _held = hooks.hold.lock();
            self.commit_batch(batch);
            #[cfg(test)]
            drop(_held);
            // A checkpoint once the log is old or large enough, or sooner
            // when nothing waits (the writer would idle: the checkpoint is
            // short and costs nobody a wait). After the answers: the batch
            // is durable in the log already.
            if self.log.due(rx.is_empty())
                && let Err(e) = self.sync_log()
            {
                tracing::error!(error = %e, "store checkpoint failed");
                self.fail(&e);
            }
        }
    }

    /// At shutdown: signs what the audit log holds beyond its last
    /// checkpoint, and makes the database hold every logged commit, so a
    /// stopped gateway's audit log is covered and its write-ahead log empty.
    fn stop(&mut self) {
        if let Err(e) = self.checkpoint() {
            tracing::warn!(error = %e, "the audit checkpoint at shutdown failed");
        }
        if let Err(e) = self.sync_log() {
            tracing::warn!(error = %e, "the store's checkpoint at shutdown failed; the next start replays its write-ahead log");
        }
    }

    /// After a write the database refused (an I/O error): redb refuses
    /// every later transaction, so the store is failed until the process
    /// restarts (and the log's position after a failed append is unknown).
    fn fail(&self, e: &StoreError) {
        self.stats.errors.inc();
        self.stats
            .failed
            .send_if_modified(|f| f.replace(e.to_string()).is_none());
    }

    /// Commits `txn` synced (`Durability::Immediate`). Every synced commit
    /// is a checkpoint: the database then holds every logged commit before
    /// it (writing the pages they dirtied, once), and the log starts over.
    fn commit_synced(&mut self, txn: WriteTransaction) -> Result<(), StoreError> {
        txn.commit()?;
        self.log.checkpointed();
        Ok(())
    }

    /// A checkpoint of its own, when commits were logged since the last one.
    fn sync_log(&mut self) -> Result<(), StoreError> {
        if self.log.is_empty() {
            return Ok(());
        }
        let timer = self.stats.wal_checkpoint_seconds.start_timer();
        let txn = self.db.begin_write()?;
        self.commit_synced(txn)?;
        timer.observe_duration();
        self.stats.wal_checkpoints.inc();
        Ok(())
    }

    /// Replays the log's records after the last one the database holds (see
    /// [`super::wal`]), then checkpoints. Returns how many it replayed.
    pub fn recover(&mut self) -> Result<usize, StoreError> {
        let records = self.log.after(self.wal_seq)?;
        let replayed = records.len();
        for r in records {
            let mut batch: Vec<Item> = r.entries.into_iter().map(Item::replayed).collect();
            self.write(&mut batch, r.now_ms, Mode::Replayed(r.seq))?;
            self.changes.clear();
            self.fired.clear();
        }
        // The replayed commits are not synced, and the next logged commit
        // writes over their records from offset 0: checkpoint them first.
        if replayed > 0 {
            let txn = self.db.begin_write()?;
            self.commit_synced(txn)?;
        }
        self.stats.wal_replayed.inc_by(replayed as u64);
        Ok(replayed)
    }

    /// Whether a batch's commit can be logged: every request in it is one
    /// whose effect follows from its record (see [`Item::logged`]).
    fn loggable(&self, batch: &[Item]) -> bool {
        self.settings.wal.is_some() && batch.iter().all(|i| i.logged().is_some())
    }

    fn commit_batch(&mut self, mut batch: Vec<Item>) {
        let start_seq = self.next_seq;
        let start_audit = self.audit;
        let timer = self.stats.commit_seconds.start_timer();
        let mode = if self.loggable(&batch) {
            Mode::Logged
        } else {
            Mode::Synced
        };
        let now = self.settings.clock.now_ms();
        let written = self.write(&mut batch, now, mode);
        timer.observe_duration();
        match written {
            Ok(wake) => {
                let (mut stored, mut dups, mut events) = (0, 0, 0);
                for item in &batch {
                    if let Item::Commit { outcomes, .. } = item {
                        events += outcomes.len();
                        for o in outcomes {
                            match o {
                                Claim::Stored { .. } => stored += 1,
                                Claim::Duplicate { .. } => dups += 1,
                            }
                        }
                    }
                }
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
                (self.stats.audit_entries).inc_by(self.audit.next - start_audit.next);
                if self.audit.next > start_audit.next {
                    self.audit_appended.notify_one();
                }
                (self.stats.audit_checkpoints).inc_by(self.audit.signings - start_audit.signings);
                self.stats.commit_batch.observe(batch.len() as f64);
                (self.stats.largest_batch).fetch_max(events as u64, Ordering::Relaxed);
                (self.stats.events_stored).fetch_add(stored, Ordering::Relaxed);
                self.stats.duplicates.fetch_add(dups, Ordering::Relaxed);
                // The stream first: whoever subscribes after hearing of
                // this commit must not get its changes as live news.
                self.stats.changes.inc_by(self.changed);
                self.stats.timers_pending.set(self.timers as i64);
                for f in self.fired.drain(..) {
                    (self.stats.timers_fired)
                        .with_label_values(&[f.kind.as_str()])
                        .inc();
                    (self.stats.timer_lateness).observe(f.late_ms.max(0) as f64 / 1000.0);
                }
                for m in self.changes.drain(..) {
                    // No subscriber is not an error.
                    let _ = self.stream.send(m);
                }
                batch.into_iter().for_each(Item::succeed);
                if wake.kafka {
                    self.outbox.notify_one();
                }
                if wake.http {
                    self.http.send_modify(|v| *v = v.wrapping_add(1));
                }
            }
            Err(e) => {
                self.next_seq = start_seq;
                self.audit = start_audit;
                self.changes.clear();
                self.fired.clear();
                // It may hold what this batch changed and did not keep.
                self.cache.clear();
                tracing::error!(error = %e, requests = batch.len(), "store commit failed; nothing of this batch was kept");
                if !matches!(e, StoreError::Injected) {
                    self.fail(&e);
                }
                batch.into_iter().for_each(|i| i.fail(e.clone()));
            }
        }
    }

    /// One transaction for the whole batch; each request's result is kept with
    /// it. Returns which sinks have new work.
    fn write(&mut self, batch: &mut [Item], now: i64, mode: Mode) -> Result<Wake, StoreError> {
        let mut txn = self.db.begin_write()?;
        let wake = self.insert_all(&txn, batch, now)?;
        let failing = self
            .hooks
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            txn.abort()?;
            return Err(StoreError::Injected);
        }
        let seq = match mode {
            Mode::Synced => {
                self.commit_synced(txn)?;
                return Ok(wake);
            }
            Mode::Logged => self.wal_seq + 1,
            Mode::Replayed(seq) => seq,
        };
        txn.open_table(META)?.insert(WAL_SEQ, seq)?;
        if let Mode::Logged = mode {
            let entries = batch.iter().filter_map(Item::logged);
            // Nothing of the batch is visible before its record synced: on
            // failure the transaction is dropped (aborted).
            self.log.append(seq, now, entries)?;
        }
        // Before the commit: a restart replays a synced record even if the
        // commit fails, so the next one must not reuse its number.
        self.wal_seq = seq;
        txn.set_durability(Durability::None)?;
        txn.commit()?;
        Ok(wake)
    }

    fn insert_all(
        &mut self,
        txn: &WriteTransaction,
        batch: &mut [Item],
        now: i64,
    ) -> Result<Wake, StoreError> {
        let mut t = Open {
            txn,
            events: events::Tables::open(txn)?,
            queue: None,
            http: None,
            audit: match self.settings.audit {
                Some(_) => Some((
                    txn.open_table(super::audit::AUDIT)?,
                    txn.open_table(super::audit::CHECKPOINTS)?,
                )),
                None => None,
            },
            envelopes: match self.settings.tracking {
                Some(_) => Some(envelopes::Tables::open(
                    txn,
                    self.stream.receiver_count() > 0,
                )?),
                None => None,
            },
            quarantine: if batch.iter().any(Item::quarantines) {
                Some(txn.open_table(QUARANTINE)?)
            } else {
                None
            },
        };
        let mut wake = Wake::default();
        // Replays and admin actions take numbers no event shows: persist the
        // floor then. Events alone need no META write (one page less per
        // group commit).
        let mut took_order = false;
        for item in batch.iter_mut() {
            match item {
                Item::Ack { acks, .. } => {
                    let mut done = txn.open_table(KAFKA_DONE)?;
                    outbox::apply_acks(t.queue()?, &mut done, acks, now)?;
                    for a in acks.iter() {
                        let (kind, data) = super::audit::of_ack(a);
                        self.audit_entry(&mut t.audit, kind, now, data)?;
                    }
                }
                Item::Http {
                    ops, applied, by, ..
                } => {
                    for op in ops.iter() {
                        took_order |= matches!(op, HttpOp::Replay { .. });
                        let ok = t.http()?.apply(op, now, &mut self.next_seq)?;
                        if ok {
                            let (kind, data) = super::audit::of_http(op);
                            self.audit_entry(
                                &mut t.audit,
                                kind,
                                now,
                                super::audit::with_actor(data, by.as_ref()),
                            )?;
                        }
                        wake.http |= ok && !matches!(op, HttpOp::Discard { .. });
                        applied.push(ok);
                    }
                }
                Item::Commit {
                    events, outcomes, ..
                } => {
                    for e in events.iter() {
                        outcomes.push(self.store_event(&mut t, e, now, &mut wake)?);
                    }
                }
                Item::Envelope {
                    op, outcome, by, ..
                } => {
                    took_order = true;
                    let (Some(envs), Some(tracking)) =
                        (t.envelopes.as_mut(), self.settings.tracking.as_ref())
                    else {
                        return Err(StoreError::Db("envelope tracking is off".into()));
                    };
                    let (out, derived) = envs.on_op(
                        &mut self.cache,
                        op,
                        &mut self.next_seq,
                        now,
                        tracking,
                        &mut self.changes,
                    )?;
                    if matches!(out, EnvelopeOutcome::Done { .. }) {
                        let data =
                            super::audit::with_actor(super::audit::of_envelope_op(op), by.as_ref());
                        self.audit_entry(&mut t.audit, "admin.envelope", now, data)?;
                    }
                    self.store_derived(&mut t, derived, &mut wake)?;
                    *outcome = Some(out);
                }
                Item::AuditCopied { seq, .. } => {
                    let mut meta = txn.open_table(META)?;
                    let was = meta.get(super::audit::COPIED)?.map_or(0, |g| g.value());
                    meta.insert(super::audit::COPIED, (*seq).max(was))?;
                }
                Item::Quarantine {
                    op, by, applied, ..
                } => {
                    took_order = true;
                    *applied = self.decide(&mut t, op, by.as_ref(), now, &mut wake)?;
                }
                Item::Timers { limit, fired, .. } => {
                    let (Some(envs), Some(tracking)) =
                        (t.envelopes.as_mut(), self.settings.tracking.as_ref())
                    else {
                        continue;
                    };
                    let (derived, done) = envs.fire_due(&mut self.cache, now, *limit, tracking)?;
                    *fired = done.len();
                    self.store_derived(&mut t, derived, &mut wake)?;
                    self.fired.extend(done);
                }
            }
        }
        self.changed = 0;
        if let Some(envs) = t.envelopes.as_mut() {
            envs.flush(&mut self.cache)?;
            self.changed = envs.changes;
            self.timers = envs.timers_pending()?;
        }
        if took_order {
            txn.open_table(META)?.insert(NEXT_SEQ, self.next_seq)?;
        }
        Ok(wake)
    }

    /// Claims and stores one event with its outbox entries and deliveries;
    /// with envelope tracking, updates its envelope and stores the derived
    /// events after it.
    fn store_event(
        &mut self,
        t: &mut Open,
        e: &NewEvent,
        now: i64,
        wake: &mut Wake,
    ) -> Result<Claim, StoreError> {
        let claim = t
            .events
            .claim(e, &mut self.next_seq, self.settings.dedup_ttl_ms)?;
        if let (Some(facts), Some((table, checkpoints)), Some(signing)) =
            (&e.audit, t.audit.as_mut(), self.settings.audit.as_ref())
        {
            let mut data = std::mem::take(&mut self.audit_buf);
            let kind = audit_webhook(facts, claim, &mut data);
            let appended = (self.audit).append_canonical(
                table,
                checkpoints,
                signing,
                kind,
                e.received_ms,
                &data,
            );
            self.audit_buf = data;
            appended?;
        }
        let Claim::Stored { seq } = claim else {
            return Ok(claim);
        };
        if e.held
            && let Some(q) = t.quarantine.as_mut()
        {
            quarantine::hold(q, seq, e.received_ms)?;
            self.stats.quarantined.with_label_values(&[&e.source]).inc();
        }
        self.place(t, seq, e, now, wake)?;
        Ok(claim)
    }

    /// Releases or rejects a held event (see [`quarantine`]); a release
    /// routes it and applies it to its envelope now.
    fn decide(
        &mut self,
        t: &mut Open,
        op: &QuarantineOp,
        by: Option<&super::Actor>,
        now: i64,
        wake: &mut Wake,
    ) -> Result<bool, StoreError> {
        let label = by.map_or_else(|| "countersign".to_owned(), super::Actor::label);
        let Some(q) = t.quarantine.as_mut() else {
            return Ok(false);
        };
        if !quarantine::decide(q, op, &label, now)? {
            return Ok(false);
        }
        let released = matches!(op, QuarantineOp::Release { .. });
        if let QuarantineOp::Release { seq, event } = op {
            self.place(t, *seq, event, now, wake)?;
        }
        let (source, id, envelope) = t.events.head(op.seq())?;
        // The envelope's history shows the decision too (after the released
        // event's own entry).
        if let (Some(envs), Some(tracking), Some(envelope)) =
            (t.envelopes.as_mut(), &self.settings.tracking, &envelope)
        {
            envs.on_decision(
                &mut self.cache,
                (&source, envelope, &id),
                released,
                &mut self.next_seq,
                now,
                tracking,
                &mut self.changes,
            )?;
        }
        let kind = if released {
            "admin.release"
        } else {
            "admin.reject"
        };
        let data = serde_json::json!({
            "source": source,
            "event_id": id,
            "event_seq": op.seq(),
        });
        self.audit_entry(&mut t.audit, kind, now, super::audit::with_actor(data, by))?;
        Ok(true)
    }

    /// Writes stored event `seq` with its envelope's change, its outbox
    /// entries and deliveries, and the events its envelope derived.
    fn place(
        &mut self,
        t: &mut Open,
        seq: u64,
        e: &NewEvent,
        now: i64,
        wake: &mut Wake,
    ) -> Result<(), StoreError> {
        let tracked = match (t.envelopes.as_mut(), &self.settings.tracking, &e.facts) {
            (Some(envs), Some(tracking), Some(f)) => {
                Some(envs.on_event(&mut self.cache, seq, e, f, tracking, now, &mut self.changes)?)
            }
            _ => None,
        };
        let applied = tracked.unwrap_or_default();
        if let (Some((from, to)), Some(f)) = (applied.transition, &e.facts) {
            let data = serde_json::json!({
                "source": e.source,
                "envelope_id": f.envelope_id,
                "event_id": e.id,
                "event_seq": seq,
                "from": from.as_str(),
                "to": to.as_str(),
            });
            self.audit_entry(&mut t.audit, "envelope.transition", e.received_ms, data)?;
        }
        // Routes that waited for the envelope may add destinations.
        let merged;
        let e = match applied.late {
            Some((topics, endpoints)) if !topics.is_empty() || !endpoints.is_empty() => {
                let mut m = e.clone();
                for t in topics {
                    if !m.topics.contains(&t) {
                        m.topics.push(t);
                    }
                }
                for x in endpoints {
                    if !m.endpoints.contains(&x) {
                        m.endpoints.push(x);
                    }
                }
                merged = m;
                &merged
            }
            _ => e,
        };
        t.events
            .put(seq, e, applied.json.as_deref().unwrap_or(&e.json))?;
        t.fan_out(seq, e, wake)?;
        self.store_derived(t, applied.derived, wake)
    }

    /// Stores derived events (each under its deterministic id: one already
    /// claimed is not stored again) and records them on their envelope.
    fn store_derived(
        &mut self,
        t: &mut Open,
        derived: Vec<envelopes::Pending>,
        wake: &mut Wake,
    ) -> Result<(), StoreError> {
        let Some(tracking) = &self.settings.tracking else {
            return Ok(());
        };
        if t.envelopes.is_none() {
            return Ok(());
        }
        let mut entries = Vec::new();
        for p in derived {
            let claim = t
                .events
                .claim(&p.event, &mut self.next_seq, self.settings.dedup_ttl_ms)?;
            let Claim::Stored { seq } = claim else {
                continue;
            };
            t.events.put(seq, &p.event, &p.event.json)?;
            let envs = t.envelopes.as_mut().expect("checked above");
            envs.on_derived(&mut self.cache, seq, &p, tracking, &mut self.changes)?;
            self.stats
                .derived_events
                .with_label_values(&[p.kind.as_str()])
                .inc();
            if p.kind == crate::event::Kind::EnvelopeAnomaly {
                self.stats.anomalies.inc();
            }
            t.fan_out(seq, &p.event, wake)?;
            if self.settings.audit.is_none() {
                continue;
            }
            let data = serde_json::json!({
                "source": p.event.source,
                "envelope_id": p.event.envelope,
                "kind": p.kind.as_str(),
                "event_id": p.event.id,
                "event_seq": seq,
            });
            entries.push((p.event.received_ms, data));
        }
        for (at, data) in entries {
            self.audit_entry(&mut t.audit, "envelope.derived", at, data)?;
        }
        Ok(())
    }

    /// Marks an endpoint disabled (or enabled again).
    fn disable(
        &mut self,
        endpoint: &str,
        disabled: Option<(i64, String)>,
        by: Option<&super::Actor>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        let start = self.audit;
        let written = (|| {
            let mut t = txn.open_table(DISABLED)?;
            let (kind, data) = match &disabled {
                Some((at, reason)) => {
                    t.insert(endpoint, (*at, reason.as_str()))?;
                    (
                        "endpoint.disabled",
                        serde_json::json!({ "endpoint": endpoint, "reason": reason }),
                    )
                }
                None => {
                    t.remove(endpoint)?;
                    ("admin.enable", serde_json::json!({ "endpoint": endpoint }))
                }
            };
            if let Some(signing) = &self.settings.audit {
                let now = self.settings.clock.now_ms();
                self.audit.append(
                    &mut txn.open_table(super::audit::AUDIT)?,
                    &mut txn.open_table(super::audit::CHECKPOINTS)?,
                    signing,
                    kind,
                    now,
                    super::audit::with_actor(data, by),
                )?;
            }
            Ok::<_, StoreError>(())
        })();
        if let Err(e) = written.and_then(|()| self.commit_synced(txn)) {
            self.audit = start;
            return Err(e);
        }
        (self.stats.audit_entries).inc_by(self.audit.next - start.next);
        self.audit_appended.notify_one();
        (self.stats.audit_checkpoints).inc_by(self.audit.signings - start.signings);
        self.http.send_modify(|v| *v = v.wrapping_add(1));
        Ok(())
    }

    /// Appends an audit entry, when the audit log is on.
    fn audit_entry(
        &mut self,
        tables: &mut Option<(AuditTable, AuditTable)>,
        kind: &str,
        at_ms: i64,
        data: serde_json::Value,
    ) -> Result<(), StoreError> {
        if let (Some((table, checkpoints)), Some(signing)) =
            (tables.as_mut(), self.settings.audit.as_ref())
        {
            (self.audit).append(table, checkpoints, signing, kind, at_ms, data)?;
        }
        Ok(())
    }

    /// Signs a checkpoint of the audit chain's head in its own transaction,
    /// if entries follow the last one.
    fn checkpoint(&mut self) -> Result<Option<u64>, StoreError> {
        let Some(signing) = &self.settings.audit else {
            return Ok(None);
        };
        if self.audit.next - 1 <= self.audit.signed {
            return Ok((self.audit.signed > 0).then_some(self.audit.signed));
        }
        let start = self.audit;
        let now = self.settings.clock.now_ms();
        let txn = self.db.begin_write()?;
        let signed = txn
            .open_table(super::audit::CHECKPOINTS)
            .map_err(StoreError::from)
            .and_then(|mut t| self.audit.sign(&mut t, signing, now));
        match signed.and_then(|s| self.commit_synced(txn).map(|()| s)) {
            Ok(s) => {
                self.stats.audit_checkpoints.inc();
                Ok(s)
            }
            Err(e) => {
                self.audit = start;
                Err(e)
            }
        }
    }

    /// Deletes up to `sweep_batch` events past retention (see
    /// [`events::sweep`]) in one transaction.
    /// One sweep step; `Ok(n)` with `n > 0` (or a scan that has not reached
    /// the cut-off yet, counted as 1 so the caller goes on) asks for another.
    fn sweep(&mut self, now_ms: i64) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let cutoff = now_ms.saturating_sub(self.settings.retention_ms);
        let swept = events::sweep(&txn, cutoff, self.settings.sweep_batch, self.sweep_from)?;
        let envs = match &self.settings.tracking {
            Some(t) => Some(envelopes::sweep(
                &txn,
                &mut self.cache,
                now_ms.saturating_sub(t.retention_ms),
                self.settings.sweep_batch,
                self.envelope_sweep_from,
            )?),
            None => None,
        };
        let audit_gone = match &self.settings.audit {
            Some(a) => super::audit::prune(
                &txn,
                now_ms.saturating_sub(a.retention_ms),
                self.settings.sweep_batch as u64,
            )?,
            None => 0,
        };
        let gone = swept.gone;
        if gone > 0 {
            // The newest events may be among those gone: keep the floor.
            txn.open_table(META)?.insert(NEXT_SEQ, self.next_seq)?;
        }
        self.commit_synced(txn)?;
        (self.stats.events_swept).fetch_add(gone as u64, Ordering::Relaxed);
        self.sweep_from = swept.resume.unwrap_or(0);
        let envs_more = envs.is_some_and(|e| e.resume.is_some() || e.gone > 0);
        if let Some(e) = envs {
            self.envelope_sweep_from = e.resume.unwrap_or(0);
        }
        // More to look at: say so even when this step removed nothing (it
        // crossed blocked events), so the sweep loop goes on.
        self.stats.audit_pruned.inc_by(audit_gone);
        Ok(if swept.resume.is_some() || envs_more || audit_gone > 0 {
            gone.max(1)
        } else {
            gone
        })
    }
}

/// The audit entry of a claimed webhook event: `webhook.accepted`, or
/// `webhook.duplicate` naming the original's event sequence.
fn audit_webhook(facts: &super::AuditFacts, claim: Claim, data: &mut Vec<u8>) -> &'static str {
    match claim {
        Claim::Stored { seq } => {
            facts.data("event_seq", seq, data);
            "webhook.accepted"
        }
        Claim::Duplicate { seq } => {
            facts.data("original_event_seq", seq, data);
            "webhook.duplicate"
        }
    }
}
