//! Durable timers: the due-time index ([`super::TIMERS`]), written in the transaction of the change
//! that schedules or cancels them, and firing: in one transaction, each due
//! timer leaves the index and its envelope's `pending`, and its derived event
//! (`envelope.reminder_due`, `envelope.overdue`, `envelope.escalated`) is
//! stored and routed like any event. A timer due while the gateway was down
//! fires once after start, late (its payload keeps `due_at`).
//!
//! The timers live on disk; memory holds one batch of due keys at a time.

use redb::{ReadableTable, ReadableTableMetadata};

use super::Tracking;
use super::apply::{Cache, Pending, Tables, pending};
use crate::envelope::derive::Cause;
use crate::envelope::timers::{Timer, TimerKind};
use crate::envelope::{Derived, Envelope, Step};
use crate::store::StoreError;

/// A fired timer: its kind and how late it fired (ms).
pub(in crate::store) struct Fired {
    pub kind: TimerKind,
    pub late_ms: i64,
}

fn due_key(t: &Timer) -> u64 {
    t.due_ms.max(0) as u64
}

impl Tables<'_> {
    /// Reschedules `env`'s timers by its source's policy (and its
    /// registration's overrides), writing the index changes.
    pub(super) fn retime(&mut self, env: &mut Envelope, t: &Tracking) -> Result<(), StoreError> {
        let policy = t.policy(&env.source);
        if policy.is_empty() && env.registration.is_none() && env.timers.is_empty() {
            return Ok(());
        }
        let policy = policy.with(env.registration.as_ref());
        let r = env.retime(&policy);
        let (src, id) = (env.source.as_str(), env.envelope_id.as_str());
        for x in &r.removed {
            self.timers
                .remove((due_key(x), src, id, x.kind.code(), x.slot))?;
        }
        for x in &r.added {
            self.timers
                .insert((due_key(x), src, id, x.kind.code(), x.slot), ())?;
        }
        Ok(())
    }

    /// Takes `env`'s pending timers out of the index (it is being deleted).
    pub(super) fn drop_timers(&mut self, env: &Envelope) -> Result<(), StoreError> {
        let (src, id) = (env.source.as_str(), env.envelope_id.as_str());
        for x in &env.timers.pending {
            self.timers
                .remove((due_key(x), src, id, x.kind.code(), x.slot))?;
        }
        Ok(())
    }

    /// Timers in the index.
    pub fn timers_pending(&self) -> Result<u64, StoreError> {
        Ok(self.timers.len()?)
    }

    /// Fires up to `limit` timers due at `now_ms`, oldest first. Returns
    /// the derived events to store and what fired.
    pub fn fire_due(
        &mut self,
        cache: &mut Cache,
        now_ms: i64,
        limit: usize,
        t: &Tracking,
    ) -> Result<(Vec<Pending>, Vec<Fired>), StoreError> {
        let mut due = Vec::new();
        for entry in self.timers.iter()? {
            if due.len() >= limit {
                break;
            }
            let (k, _) = entry?;
            let (at, src, id, kind, slot) = k.value();
            if at > now_ms.max(0) as u64 {
                break;
            }
            due.push((at, src.to_owned(), id.to_owned(), kind, slot));
        }
        let now = crate::time::format_ms(now_ms);
        let mut out = Vec::new();
        let mut fired = Vec::new();
        for (at, src, id, kind, slot) in due {
            self.timers
                .remove((at, src.as_str(), id.as_str(), kind, slot))?;
            let Some(kind) = TimerKind::from_code(kind) else {
                continue;
            };
            let Some(env) = self.load_mut(cache, &src, &id)? else {
                continue;
            };
            // The index and the envelope agree; a timer the envelope no
            // longer has (cancelled in the same batch) does nothing.
            let Some(timer) = env
                .timers
                .pending
                .iter()
                .find(|x| x.kind == kind && x.slot == slot && due_key(x) == at)
                .copied()
            else {
                continue;
            };
            env.fire(&timer);
            let policy = t.policy(&src).with(env.registration.as_ref());
            let step = Step {
                from: env.state,
                to: env.state,
                signer: None,
                derived: vec![Derived::Due {
                    timer,
                    deadline_ms: env.deadline_ms(&policy),
                }],
            };
            let cause = Cause {
                event_id: None,
                kind: None,
                occurred_at: None,
                received_at: &now,
            };
            out.extend(pending(env, &step, &cause, now_ms, None, t));
            fired.push(Fired {
                kind,
                late_ms: now_ms.saturating_sub(timer.due_ms),
            });
        }
        Ok((out, fired))
    }
}
