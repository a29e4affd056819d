//! The write side, inside the writer's transaction: an accepted event (or an
//! admin action) updates its envelope, records a history entry, and hands back
//! the derived events to store after it; sweeping removes envelopes past
//! `envelopes.retention`.

use std::sync::Arc;

use redb::{ReadableTable, Table, WriteTransaction};

use super::{
    ENVELOPE_HISTORY, ENVELOPE_LOG, ENVELOPES, ENVELOPES_CREATED, EnvelopeOp, EnvelopeOutcome,
    Facts, LogEntry, SignerEntry, StreamMsg, Tracking, decode,
};
use crate::envelope::derive::{self, Cause};
use crate::envelope::{Envelope, Step};
use crate::event::{EnvelopeBlock, SignatureEvent};
use crate::store::{NewEvent, StoreError};

/// A derived event to store after its cause, with the change it reports.
pub(in crate::store) struct Pending {
    pub event: NewEvent,
    pub kind: crate::event::Kind,
    pub env: Envelope,
    pub from: crate::event::EnvelopeState,
    pub to: crate::event::EnvelopeState,
}

/// The envelope tables, open in one write transaction.
pub(in crate::store) struct Tables<'txn> {
    envelopes: Table<'txn, (&'static str, &'static str), &'static [u8]>,
    log: Table<'txn, u64, (&'static str, &'static str, bool, &'static [u8])>,
    history: Table<'txn, (&'static str, &'static str, u64), ()>,
    created: Table<'txn, u64, (&'static str, &'static str)>,
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

fn entry(env: &Envelope, seq: u64, kind: &str, origin: &str, at: &str, step: &Step) -> LogEntry {
    LogEntry {
        seq,
        source: env.source.clone(),
        envelope_id: env.envelope_id.clone(),
        reference: env.reference().map(str::to_owned),
        kind: kind.to_owned(),
        event_id: None,
        origin: origin.to_owned(),
        at: at.to_owned(),
        from: step.from,
        to: step.to,
        signer: step.signer.as_ref().map(|c| {
            let s = &env.signers[c.index];
            SignerEntry {
                id: s.id.clone(),
                email: s.email.clone(),
                name: s.name.clone(),
                from: c.from,
                to: c.to,
            }
        }),
        changed: step.from != step.to || step.signer.as_ref().is_some_and(|c| c.from != Some(c.to)),
        progress: env.progress(),
    }
}

impl<'txn> Tables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Tables<'txn>, StoreError> {
        Ok(Tables {
            envelopes: txn.open_table(ENVELOPES)?,
            log: txn.open_table(ENVELOPE_LOG)?,
            history: txn.open_table(ENVELOPE_HISTORY)?,
            created: txn.open_table(ENVELOPES_CREATED)?,
        })
    }

    fn load(&self, source: &str, id: &str) -> Result<Option<Envelope>, StoreError> {
        self.envelopes
            .get((source, id))?
            .map(|v| decode(v.value()))
            .transpose()
    }

    fn save(&mut self, env: &Envelope) -> Result<(), StoreError> {
        let json = serde_json::to_vec(env).expect("envelopes serialize");
        self.envelopes.insert(
            (env.source.as_str(), env.envelope_id.as_str()),
            json.as_slice(),
        )?;
        Ok(())
    }

    fn create(
        &mut self,
        source: &str,
        id: &str,
        provider: &str,
        seq: u64,
        now_ms: i64,
    ) -> Result<Envelope, StoreError> {
        self.created.insert(seq, (source, id))?;
        Ok(Envelope::new(source, id, provider, seq, now_ms))
    }

    /// Records a history entry (changes always; others while the envelope has
    /// fewer than `max_history`), and queues a changing one for the stream.
    fn record(
        &mut self,
        env: &mut Envelope,
        e: &LogEntry,
        max_history: usize,
        stream: &mut Vec<Arc<StreamMsg>>,
    ) -> Result<(), StoreError> {
        if !e.changed && env.history as usize >= max_history {
            return Ok(());
        }
        env.history = env.history.saturating_add(1);
        let json = serde_json::to_vec(e).expect("log entries serialize");
        let (src, id) = (env.source.as_str(), env.envelope_id.as_str());
        self.log
            .insert(e.seq, (src, id, e.changed, json.as_slice()))?;
        self.history.insert((src, id, e.seq), ())?;
        if e.changed {
            stream.push(Arc::new(StreamMsg::new(e, json)));
        }
        Ok(())
    }

    /// Applies a provider event just stored under `seq`. Returns its JSON with
    /// the envelope block (for registered envelopes) and the derived events.
    pub fn on_event(
        &mut self,
        seq: u64,
        e: &NewEvent,
        f: &Facts,
        t: &Tracking,
        now_ms: i64,
        stream: &mut Vec<Arc<StreamMsg>>,
    ) -> Result<(Option<Vec<u8>>, Vec<Pending>), StoreError> {
        let mut env = match self.load(&e.source, &f.envelope_id)? {
            Some(env) => env,
            None => self.create(&e.source, &f.envelope_id, &f.provider, seq, now_ms)?,
        };
        let step = env.apply(f.kind, f.signer.as_ref(), t.max_signers);
        env.events += 1;
        env.updated_ms = now_ms;
        let mut log = entry(
            &env,
            seq,
            f.kind.as_str(),
            "provider",
            &f.received_at,
            &step,
        );
        log.event_id = Some(e.id.clone());
        self.record(&mut env, &log, t.max_history, stream)?;
        let cause = Cause {
            event_id: Some(&e.id),
            kind: Some(f.kind),
            occurred_at: f.occurred_at.as_deref(),
            received_at: &f.received_at,
        };
        let derived = pending(&env, &step, &cause, e, t);
        let json = env
            .registration
            .is_some()
            .then(|| splice(&e.json, &env.block()));
        self.save(&env)?;
        Ok((json, derived))
    }

    /// Records a derived event stored under `seq`.
    pub fn on_derived(
        &mut self,
        seq: u64,
        p: &Pending,
        at: &str,
        t: &Tracking,
        stream: &mut Vec<Arc<StreamMsg>>,
    ) -> Result<(), StoreError> {
        // The envelope as saved (history count included), not the snapshot.
        let mut env = self
            .load(&p.env.source, &p.env.envelope_id)?
            .unwrap_or_else(|| p.env.clone());
        let step = Step {
            from: p.from,
            to: p.to,
            signer: None,
            derived: Vec::new(),
        };
        let mut log = entry(&p.env, seq, p.kind.as_str(), "countersign", at, &step);
        log.event_id = Some(p.event.id.clone());
        log.changed = true;
        self.record(&mut env, &log, t.max_history, stream)?;
        self.save(&env)
    }

    /// Applies an admin action; `next_seq` hands out its history entry's
    /// sequence number.
    pub fn on_op(
        &mut self,
        op: &EnvelopeOp,
        next_seq: &mut u64,
        now_ms: i64,
        t: &Tracking,
        stream: &mut Vec<Arc<StreamMsg>>,
    ) -> Result<(EnvelopeOutcome, Vec<Pending>), StoreError> {
        let now = crate::time::format_ms(now_ms);
        let (mut env, step, kind) = match op {
            EnvelopeOp::Register {
                source,
                provider,
                envelope_id,
                registration,
            } => {
                let mut env = match self.load(source, envelope_id)? {
                    Some(env) => env,
                    None => {
                        let seq = *next_seq;
                        *next_seq += 1;
                        self.create(source, envelope_id, provider, seq, now_ms)?
                    }
                };
                if env.registration.as_ref() == Some(registration) {
                    return Ok((done(env, &[]), Vec::new()));
                }
                let step = env.register(registration.clone(), t.max_signers);
                (env, step, "registered")
            }
            EnvelopeOp::Archive {
                source,
                envelope_id,
                sha256,
            } => {
                let Some(mut env) = self.load(source, envelope_id)? else {
                    return Ok((EnvelopeOutcome::NotFound, Vec::new()));
                };
                let step = match env.archive(sha256) {
                    Ok(step) => step,
                    Err(refused) => return Ok((EnvelopeOutcome::Refused(refused), Vec::new())),
                };
                if !step.changed() {
                    return Ok((done(env, &[]), Vec::new()));
                }
                (env, step, "archive")
            }
        };
        let seq = *next_seq;
        *next_seq += 1;
        env.updated_ms = now_ms;
        let mut log = entry(&env, seq, kind, "admin", &now, &step);
        log.changed = true;
        self.record(&mut env, &log, t.max_history, stream)?;
        self.save(&env)?;
        let cause = Cause {
            event_id: None,
            kind: None,
            occurred_at: None,
            received_at: &now,
        };
        let carrier = NewEvent {
            source: env.source.clone(),
            id: String::new(),
            received_ms: now_ms,
            json: Vec::new(),
            topics: Vec::new(),
            endpoints: Vec::new(),
            envelope: env.envelope_id.clone(),
            traceparent: None,
            facts: None,
        };
        let derived = pending(&env, &step, &cause, &carrier, t);
        let ids: Vec<_> = derived
            .iter()
            .map(|p| (p.kind, p.event.id.clone()))
            .collect();
        Ok((done(env, &ids), derived))
    }
}

fn done(env: Envelope, derived: &[(crate::event::Kind, String)]) -> EnvelopeOutcome {
    EnvelopeOutcome::Done {
        envelope: Box::new(env),
        derived: derived.to_vec(),
    }
}

/// The derived events of `step`, routed and serialized, to store after `cause`.
fn pending(env: &Envelope, step: &Step, cause: &Cause, e: &NewEvent, t: &Tracking) -> Vec<Pending> {
    step.derived
        .iter()
        .map(|d| {
            let ev: SignatureEvent = derive::event(env, d, cause);
            let (topics, endpoints) = (t.route)(&ev);
            Pending {
                kind: ev.kind,
                env: env.clone(),
                from: step.from,
                to: step.to,
                event: NewEvent {
                    source: ev.source.clone(),
                    id: ev.id.as_str().to_owned(),
                    received_ms: e.received_ms,
                    json: serde_json::to_vec(&ev).expect("events serialize"),
                    topics,
                    endpoints,
                    envelope: env.envelope_id.clone(),
                    traceparent: e.traceparent.clone(),
                    facts: None,
                },
            }
        })
        .collect()
}

/// One sweep step over envelopes: deletes up to `batch` whose last change is
/// before `cutoff_ms` (with their history), oldest created first from `from`,
/// looking at `8 × batch` at most. Returns how many went and where to go on.
pub(in crate::store) fn sweep(
    txn: &WriteTransaction,
    cutoff_ms: i64,
    batch: usize,
    from: u64,
) -> Result<crate::store::events::Swept, StoreError> {
    let mut t = Tables::open(txn)?;
    let budget = batch.saturating_mul(8).max(1);
    let mut victims = Vec::new();
    let mut resume = None;
    for (scanned, entry) in t.created.range(from..)?.enumerate() {
        let (k, v) = entry?;
        let seq = k.value();
        if victims.len() >= batch || scanned >= budget {
            resume = Some(seq);
            break;
        }
        let (src, id) = v.value();
        let stale = match t.envelopes.get((src, id))? {
            Some(row) => decode(row.value())?.updated_ms < cutoff_ms,
            None => true,
        };
        if stale {
            victims.push((seq, src.to_owned(), id.to_owned()));
        }
    }
    for (seq, src, id) in &victims {
        let (src, id) = (src.as_str(), id.as_str());
        let mut entries = Vec::new();
        for e in t.history.range((src, id, 0)..=(src, id, u64::MAX))? {
            entries.push(e?.0.value().2);
        }
        for s in entries {
            t.log.remove(s)?;
            t.history.remove((src, id, s))?;
        }
        t.envelopes.remove((src, id))?;
        t.created.remove(*seq)?;
    }
    Ok(crate::store::events::Swept {
        gone: victims.len(),
        resume,
    })
}
