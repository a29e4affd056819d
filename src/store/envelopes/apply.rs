//! The write side, inside the writer's transaction: an accepted event (or an
//! admin action) updates its envelope, records a history entry, and hands back
//! the derived events to store after it; sweeping removes envelopes past
//! `envelopes.retention`.
//!
//! Envelopes are read through a write-back [`Cache`] the writer keeps across
//! batches: a batch changes an envelope in memory as often as its events say,
//! and [`Tables::flush`] writes each changed envelope once, before the commit.
//! A failed commit clears the cache (it may hold what was not kept).

use std::sync::Arc;

use hashlink::LruCache;
use redb::{ReadableTable, Table, WriteTransaction};

use super::row::{LogRow, Origin};
use super::{
    ENVELOPE_LOG, ENVELOPES, EnvelopeOp, EnvelopeOutcome, Facts, StreamMsg, Tracking, decode,
};
use crate::envelope::derive::{self, Cause};
use crate::envelope::timers::{MANUAL, Timer, TimerKind};
use crate::envelope::{Derived, Envelope, Step};
use crate::event::{EnvelopeBlock, EnvelopeState, Kind, SignatureEvent};
use crate::store::{NewEvent, StoreError};

struct Cached {
    env: Envelope,
    /// Changed since it was last written.
    dirty: bool,
}

/// The writer's envelopes in memory: (source, envelope id) → the envelope.
pub(in crate::store) struct Cache {
    map: LruCache<(String, String), Cached>,
    /// `envelopes.cache_envelopes`.
    capacity: usize,
    /// The keys changed in this batch (what [`Tables::flush`] writes).
    dirty: Vec<(String, String)>,
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache {
            map: LruCache::new_unbounded(),
            capacity: capacity.max(1),
            dirty: Vec::new(),
        }
    }

    /// Forgets everything (after a failed commit).
    pub fn clear(&mut self) {
        self.map.clear();
        self.dirty.clear();
    }

    /// The cached envelope under `k`, marked changed.
    fn touch(&mut self, k: &(String, String)) -> Option<&mut Envelope> {
        let c = self.map.get_mut(k)?;
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(k.clone());
        }
        Some(&mut c.env)
    }
}

/// A derived event to store after its cause, with the change it reports.
pub(in crate::store) struct Pending {
    pub event: NewEvent,
    pub kind: Kind,
    pub(super) from: EnvelopeState,
    pub(super) to: EnvelopeState,
}

/// What applying a provider event to its envelope gave.
#[derive(Default)]
pub(in crate::store) struct Applied {
    /// The event's JSON with the envelope block (registered envelopes only).
    pub json: Option<Vec<u8>>,
    /// Derived events to store after it.
    pub derived: Vec<Pending>,
    /// Further (topics, endpoints) from routes that waited for the envelope.
    pub late: Option<(Vec<String>, Vec<String>)>,
    /// The envelope's state change, if the event made one.
    pub transition: Option<(EnvelopeState, EnvelopeState)>,
}

/// The envelope tables, open in one write transaction.
pub(in crate::store) struct Tables<'txn> {
    envelopes: Table<'txn, (&'static str, &'static str), &'static [u8]>,
    log: Table<'txn, u64, &'static [u8]>,
    /// The due-time index ([`super::TIMERS`]).
    pub(super) timers: Table<'txn, (u64, &'static str, &'static str, u8, u32), ()>,
    /// Whether anyone listens to the stream (else no message is built).
    live: bool,
    /// Changing entries recorded in this transaction.
    pub changes: u64,
    /// Changes to the envelopes-by-state counts in this transaction
    /// (written by [`Tables::flush`]).
    states: [i64; 5],
    txn: &'txn WriteTransaction,
}

/// `json` (a serialized event object) with `"envelope": block` appended.
fn splice(json: &[u8], block: &EnvelopeBlock) -> Vec<u8> {
    let block = serde_json::to_vec(block).expect("blocks serialize");
    let end = json.iter().rposition(|b| *b == b'}').unwrap_or(json.len());
    let mut out = Vec::with_capacity(json.len() + block.len() + 16);
    out.extend_from_slice(&json[..end]);
    out.extend_from_slice(b",\"envelope\":");
    out.extend_from_slice(&block);
    out.extend_from_slice(&json[end..]);
    out
}

/// The history entry of `step` on `env` (as of after it).
pub(super) fn row(env: &Envelope, kind: &str, origin: Origin, at_ms: i64, step: &Step) -> LogRow {
    LogRow {
        changed: step.from != step.to || step.signer.as_ref().is_some_and(|c| c.from != Some(c.to)),
        first: env.history.is_empty(),
        origin,
        from: step.from,
        to: step.to,
        at_ms,
        progress: env.progress(),
        signer: step.signer.as_ref().map(|c| (c.index as u32, c.from, c.to)),
        kind: kind.to_owned(),
        event_id: None,
        source: env.source.clone(),
        envelope_id: env.envelope_id.clone(),
        reference: env.reference().map(str::to_owned),
    }
}

fn key(source: &str, id: &str) -> (String, String) {
    (source.to_owned(), id.to_owned())
}

impl<'txn> Tables<'txn> {
    pub fn open(txn: &'txn WriteTransaction, live: bool) -> Result<Tables<'txn>, StoreError> {
        Ok(Tables {
            envelopes: txn.open_table(ENVELOPES)?,
            log: txn.open_table(ENVELOPE_LOG)?,
            timers: txn.open_table(super::TIMERS)?,
            live,
            changes: 0,
            states: [0; 5],
            txn,
        })
    }

    /// Adds `by` to the count of envelopes in `state`.
    fn count(&mut self, state: EnvelopeState, by: i64) {
        self.states[super::state_code(state) as usize] += by;
    }

    /// Writes the envelopes-by-state changes (if any).
    fn write_counts(&mut self) -> Result<(), StoreError> {
        if self.states.iter().all(|d| *d == 0) {
            return Ok(());
        }
        let mut table = self.txn.open_table(super::STATES)?;
        for (code, d) in std::mem::take(&mut self.states).iter().enumerate() {
            let now = table.get(code as u8)?.map_or(0, |v| v.value());
            table.insert(code as u8, now.saturating_add_signed(*d))?;
        }
        Ok(())
    }

    /// The envelope, from the cache or the table; `None` if there is none.
    fn load<'c>(
        &mut self,
        cache: &'c mut Cache,
        source: &str,
        id: &str,
    ) -> Result<Option<&'c mut Envelope>, StoreError> {
        let k = key(source, id);
        if !cache.map.contains_key(&k) {
            let Some(env) = self.envelopes.get((source, id))?.map(|v| decode(v.value())) else {
                return Ok(None);
            };
            self.admit(cache, k.clone(), env?, false)?;
        }
        Ok(cache.map.get_mut(&k).map(|c| &mut c.env))
    }

    /// The envelope, marked changed; `None` if there is none.
    pub(super) fn load_mut<'c>(
        &mut self,
        cache: &'c mut Cache,
        source: &str,
        id: &str,
    ) -> Result<Option<&'c mut Envelope>, StoreError> {
        if self.load(cache, source, id)?.is_none() {
            return Ok(None);
        }
        Ok(cache.touch(&key(source, id)))
    }

    /// The envelope for a timer action, marked changed; or why not: there is
    /// none, or it is past having timers (completed, cancelled, archived).
    fn live<'c>(
        &mut self,
        cache: &'c mut Cache,
        source: &str,
        id: &str,
    ) -> Result<Result<&'c mut Envelope, EnvelopeOutcome>, StoreError> {
        Ok(match self.load_mut(cache, source, id)? {
            None => Err(EnvelopeOutcome::NotFound),
            Some(env) if !env.state.is_live() => Err(EnvelopeOutcome::Final(env.state)),
            Some(env) => Ok(env),
        })
    }

    /// Puts an envelope into the cache, writing out the least recently used
    /// one if the cache is full and it changed.
    fn admit(
        &mut self,
        cache: &mut Cache,
        k: (String, String),
        env: Envelope,
        dirty: bool,
    ) -> Result<(), StoreError> {
        while cache.map.len() >= cache.capacity {
            match cache.map.remove_lru() {
                Some((_, old)) if old.dirty => self.save(&old.env)?,
                Some(_) => {}
                None => break,
            }
        }
        if dirty {
            cache.dirty.push(k.clone());
        }
        cache.map.insert(k, Cached { env, dirty });
        Ok(())
    }

    /// The envelope, created under `seq` if new (its first history entry
    /// takes the same sequence: the listing's index).
    fn load_or_create<'c>(
        &mut self,
        cache: &'c mut Cache,
        source: &str,
        id: &str,
        provider: &str,
        seq: impl FnOnce() -> u64,
        now_ms: i64,
    ) -> Result<&'c mut Envelope, StoreError> {
        if self.load(cache, source, id)?.is_none() {
            let env = Envelope::new(source, id, provider, seq(), now_ms);
            self.admit(cache, key(source, id), env, true)?;
        }
        Ok(cache.touch(&key(source, id)).expect("just admitted"))
    }

    fn save(&mut self, env: &Envelope) -> Result<(), StoreError> {
        let json = serde_json::to_vec(env).expect("envelopes serialize");
        self.envelopes.insert(
            (env.source.as_str(), env.envelope_id.as_str()),
            json.as_slice(),
        )?;
        Ok(())
    }

    /// Writes every envelope this batch changed (once each).
    pub fn flush(&mut self, cache: &mut Cache) -> Result<(), StoreError> {
        for k in std::mem::take(&mut cache.dirty) {
            // Written out already if it was evicted.
            if let Some(c) = cache.map.peek_mut(&k)
                && c.dirty
            {
                self.save(&c.env)?;
                c.dirty = false;
            }
        }
        self.write_counts()
    }

    /// Records a history entry under `seq` (changes always; others while
    /// the envelope has fewer than `max_history`), and a changing one for
    /// the stream.
    pub(super) fn record(
        &mut self,
        env: &mut Envelope,
        seq: u64,
        row: &LogRow,
        max_history: usize,
        stream: &mut Vec<Arc<StreamMsg>>,
    ) -> Result<(), StoreError> {
        if !row.changed && env.history.len() >= max_history {
            return Ok(());
        }
        if row.first {
            self.count(EnvelopeState::Open, 1);
        }
        // A derived event's entry repeats its cause's step: counted once.
        if row.from != row.to && row.origin != Origin::Countersign {
            self.count(row.from, -1);
            self.count(row.to, 1);
        }
        env.history.push(seq);
        self.log.insert(seq, row.encode().as_slice())?;
        if row.changed {
            self.changes += 1;
            if self.live {
                stream.push(Arc::new(StreamMsg::of(&row.render(seq, Some(env)))));
            }
        }
        Ok(())
    }

    /// Applies a provider event just stored under `seq`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_event(
        &mut self,
        cache: &mut Cache,
        seq: u64,
        e: &NewEvent,
        f: &Facts,
        t: &Tracking,
        now_ms: i64,
        stream: &mut Vec<Arc<StreamMsg>>,
    ) -> Result<Applied, StoreError> {
        let env = self.load_or_create(
            cache,
            &e.source,
            &f.envelope_id,
            &f.provider,
            || seq,
            now_ms,
        )?;
        let step = env.apply(f.kind, f.signer.as_ref(), t.max_signers);
        env.events += 1;
        env.updated_ms = now_ms;
        env.mark_sent(e.received_ms);
        self.retime(env, t)?;
        let mut log = row(env, f.kind.as_str(), Origin::Provider, e.received_ms, &step);
        log.event_id = Some(e.id.clone());
        self.record(env, seq, &log, t.max_history, stream)?;
        let cause = Cause {
            event_id: Some(&e.id),
            kind: Some(f.kind),
            occurred_at: f.occurred_at.as_deref(),
            received_at: &f.received_at,
        };
        let derived = pending(env, &step, &cause, e.received_ms, e.traceparent.as_ref(), t);
        let block = (env.registration.is_some() || f.late_route.is_some()).then(|| env.block());
        Ok(Applied {
            json: block
                .as_ref()
                .filter(|_| env.registration.is_some())
                .map(|b| splice(&e.json, b)),
            late: f
                .late_route
                .as_ref()
                .zip(block.as_ref())
                .map(|(r, b)| (r.0)(b)),
            transition: (step.from != step.to).then_some((step.from, step.to)),
            derived,
        })
    }

    /// Records a derived event stored under `seq` on its envelope.
    pub fn on_derived(
        &mut self,
        cache: &mut Cache,
        seq: u64,
        p: &Pending,
        t: &Tracking,
        stream: &mut Vec<Arc<StreamMsg>>,
    ) -> Result<(), StoreError> {
        let Some(env) = self.load(cache, &p.event.source, &p.event.envelope)? else {
            return Ok(());
        };
        let step = Step {
            from: p.from,
            to: p.to,
            signer: None,
            derived: Vec::new(),
        };
        let mut log = row(
            env,
            p.kind.as_str(),
            Origin::Countersign,
            p.event.received_ms,
            &step,
        );
        log.event_id = Some(p.event.id.clone());
        log.changed = true;
        self.record(env, seq, &log, t.max_history, stream)?;
        cache.touch(&key(&p.event.source, &p.event.envelope));
        Ok(())
    }

    /// Applies an admin action; `next_seq` hands out its history entry's
    /// sequence number.
    pub fn on_op(
        &mut self,
        cache: &mut Cache,
        op: &EnvelopeOp,
        next_seq: &mut u64,
        now_ms: i64,
        t: &Tracking,
        stream: &mut Vec<Arc<StreamMsg>>,
    ) -> Result<(EnvelopeOutcome, Vec<Pending>), StoreError> {
        let now = crate::time::format_ms(now_ms);
        // The entry's sequence (and the envelope's, when this creates it).
        let seq = *next_seq;
        let (env, step, kind) = match op {
            EnvelopeOp::Register {
                source,
                provider,
                envelope_id,
                registration,
            } => {
                let old = match self.load(cache, source, envelope_id)? {
                    Some(env) if env.registration.as_ref() == Some(registration) => {
                        return Ok((done(env, &[]), Vec::new()));
                    }
                    Some(env) => env.reference().map(str::to_owned),
                    None => None,
                };
                let env =
                    self.load_or_create(cache, source, envelope_id, provider, || seq, now_ms)?;
                if old.as_deref() != Some(registration.reference.as_str()) {
                    let mut refs = self.txn.open_table(super::REFERENCES)?;
                    if let Some(old) = old.as_deref() {
                        refs.remove((old, source.as_str(), envelope_id.as_str()))?;
                    }
                    let k = (
                        registration.reference.as_str(),
                        source.as_str(),
                        envelope_id.as_str(),
                    );
                    refs.insert(k, env.created_seq)?;
                }
                let step = env.register(registration.clone(), t.max_signers);
                self.retime(env, t)?;
                (env, step, "registered")
            }
            EnvelopeOp::Remind {
                source,
                envelope_id,
            } => {
                let env = match self.live(cache, source, envelope_id)? {
                    Ok(env) => env,
                    Err(refused) => return Ok((refused, Vec::new())),
                };
                let policy = t.policy(source).with(env.registration.as_ref());
                let mut step = Step::at(env.state);
                step.derived.push(Derived::Due {
                    timer: Timer {
                        kind: TimerKind::Reminder,
                        slot: MANUAL,
                        due_ms: now_ms,
                    },
                    deadline_ms: env.deadline_ms(&policy),
                });
                (env, step, "remind")
            }
            EnvelopeOp::Deadline {
                source,
                envelope_id,
                deadline_ms,
            } => {
                let env = match self.live(cache, source, envelope_id)? {
                    Ok(env) => env,
                    Err(refused) => return Ok((refused, Vec::new())),
                };
                env.timers.deadline_ms = Some(*deadline_ms);
                self.retime(env, t)?;
                let step = Step::at(env.state);
                (env, step, "deadline")
            }
            EnvelopeOp::Archive {
                source,
                envelope_id,
                sha256,
            } => {
                let Some(env) = self.load(cache, source, envelope_id)? else {
                    return Ok((EnvelopeOutcome::NotFound, Vec::new()));
                };
                // `archive` changes nothing when it refuses or has nothing to do.
                let step = match env.archive(sha256) {
                    Ok(step) => step,
                    Err(refused) => return Ok((EnvelopeOutcome::Refused(refused), Vec::new())),
                };
                if !step.changed() {
                    return Ok((done(env, &[]), Vec::new()));
                }
                let env = cache.touch(&key(source, envelope_id)).expect("loaded");
                (env, step, "archive")
            }
        };
        *next_seq += 1;
        env.updated_ms = now_ms;
        let mut log = row(env, kind, Origin::Admin, now_ms, &step);
        log.changed = true;
        self.record(env, seq, &log, t.max_history, stream)?;
        let cause = Cause {
            event_id: None,
            kind: None,
            occurred_at: None,
            received_at: &now,
        };
        let derived = pending(env, &step, &cause, now_ms, None, t);
        let ids: Vec<_> = derived
            .iter()
            .map(|p| (p.kind, p.event.id.clone()))
            .collect();
        Ok((done(env, &ids), derived))
    }
}

fn done(env: &Envelope, derived: &[(Kind, String)]) -> EnvelopeOutcome {
    EnvelopeOutcome::Done {
        envelope: Box::new(env.clone()),
        derived: derived.to_vec(),
    }
}

/// The derived events of `step`, routed and serialized, to store after
/// `cause` (received at `received_ms`, continuing its `traceparent`).
pub(super) fn pending(
    env: &Envelope,
    step: &Step,
    cause: &Cause,
    received_ms: i64,
    traceparent: Option<&String>,
    t: &Tracking,
) -> Vec<Pending> {
    step.derived
        .iter()
        .map(|d| {
            let ev: SignatureEvent = derive::event(env, d, cause);
            let (topics, endpoints) = (t.route)(&ev);
            Pending {
                kind: ev.kind,
                from: step.from,
                to: step.to,
                event: NewEvent {
                    source: ev.source.clone(),
                    id: ev.id.as_str().to_owned(),
                    received_ms,
                    json: serde_json::to_vec(&ev).expect("events serialize"),
                    topics,
                    endpoints,
                    envelope: env.envelope_id.clone(),
                    traceparent: traceparent.cloned(),
                    facts: None,
                    audit: None,
                    held: false,
                },
            }
        })
        .collect()
}

/// One sweep step over envelopes: deletes up to `batch` whose last change is
/// before `cutoff_ms` (with their history), oldest created first from `from`
/// (their first history entries are the index), looking at `64 × batch`
/// entries at most. Returns how many went and where to go on.
pub(in crate::store) fn sweep(
    txn: &WriteTransaction,
    cache: &mut Cache,
    cutoff_ms: i64,
    batch: usize,
    from: u64,
) -> Result<crate::store::events::Swept, StoreError> {
    let mut t = Tables::open(txn, false)?;
    let budget = batch.saturating_mul(64).max(1);
    let mut victims = Vec::new();
    let mut resume = None;
    for (scanned, entry) in t.log.range(from..)?.enumerate() {
        let (k, v) = entry?;
        let seq = k.value();
        if victims.len() >= batch || scanned >= budget {
            resume = Some(seq);
            break;
        }
        let r = LogRow::decode(v.value())?;
        if !r.first {
            continue;
        }
        let (src, id) = (r.source.as_str(), r.envelope_id.as_str());
        let env = match cache.map.get(&key(src, id)) {
            Some(c) => Some(c.env.clone()),
            None => t
                .envelopes
                .get((src, id))?
                .map(|e| decode(e.value()))
                .transpose()?,
        };
        match env {
            Some(env) if env.updated_ms < cutoff_ms => victims.push((seq, Some(env))),
            Some(_) => {}
            None => victims.push((seq, None)),
        }
    }
    // Opened once, when a swept envelope has a reference.
    let txn = t.txn;
    let mut refs = None;
    for (seq, env) in &victims {
        t.log.remove(*seq)?;
        if let Some(env) = env {
            for s in &env.history {
                t.log.remove(*s)?;
            }
            t.drop_timers(env)?;
            t.count(env.state, -1);
            if let Some(r) = env.reference() {
                let k = (r, env.source.as_str(), env.envelope_id.as_str());
                match &mut refs {
                    Some(refs) => refs,
                    None => refs.insert(txn.open_table(super::REFERENCES)?),
                }
                .remove(k)?;
            }
            let (src, id) = (env.source.as_str(), env.envelope_id.as_str());
            t.envelopes.remove((src, id))?;
            cache.map.remove(&key(src, id));
        }
    }
    t.write_counts()?;
    Ok(crate::store::events::Swept {
        gone: victims.len(),
        resume,
    })
}
