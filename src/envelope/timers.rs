//! Deadlines, reminders and escalation: which timers an envelope should have
//! pending, given its state, its registration and its source's policy.
//!
//! An envelope's deadline is, first found: one set by `POST …/deadline`, its
//! registration's `deadline`, or the source's `expire_after` after it was
//! first seen going out for signing. Reminders are offsets after that moment
//! (`"3d"`) or before the deadline (`"-1d"`); `envelope.overdue` is due at
//! the deadline and `envelope.escalated` `escalate_after` past it.
//!
//! Reminders wait until the envelope went out; the deadline's timers do not
//! (a registered envelope never sent is overdue too).
//!
//! A timer is (kind, slot, due time). It fires at most once: firing moves it
//! from `pending` to `fired`, and a timer in `fired` is never scheduled
//! again. Moving the deadline makes new timers (new due times), which fire
//! in their turn. Only an envelope still open or in signing has timers:
//! completion or cancellation leaves none pending.

use serde::{Deserialize, Serialize};

use crate::event::{EnvelopeState, SignerState};

use super::{Envelope, Registration};

/// Fired timers an envelope remembers (the oldest are forgotten first; they
/// are in the past and never scheduled again anyway unless the deadline moves
/// back to exactly their time).
const MAX_FIRED: usize = 64;

/// The slot of a manual reminder (`POST …/remind`).
pub const MANUAL: u32 = u32::MAX;

/// A reminder's offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offset {
    /// After the envelope was first seen going out for signing.
    AfterSent(i64),
    /// Before the deadline.
    BeforeDeadline(i64),
}

impl Offset {
    /// `"3d"` (after sending) or `"-1d"` (before the deadline), in
    /// humantime's units (`s`, `m`, `h`, `d`, `w`…).
    pub fn parse(s: &str) -> Result<Offset, String> {
        let (before, d) = match s.trim().strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.trim()),
        };
        let ms = humantime::parse_duration(d)
            .map_err(|e| format!("`{s}` is not an offset ({e}); use e.g. \"3d\" or \"-1d\""))?
            .as_millis()
            .min(i64::MAX as u128) as i64;
        Ok(if before {
            Offset::BeforeDeadline(ms)
        } else {
            Offset::AfterSent(ms)
        })
    }
}

/// A source's defaults (`[[sources]] expire_after`, `reminders`,
/// `escalate_after`), overridable by a registration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub expire_after_ms: Option<i64>,
    pub reminders: Vec<Offset>,
    pub escalate_after_ms: Option<i64>,
}

impl Policy {
    /// A source's policy from its `expire_after`, `reminders` and
    /// `escalate_after`; reports reminders that do not parse under `key`.
    pub fn from_source(
        key: &str,
        s: &crate::config::SourceConfig,
        r: &mut crate::config::Report,
    ) -> Policy {
        let ms = |d: &std::time::Duration| d.as_millis().min(i64::MAX as u128) as i64;
        let mut reminders = Vec::new();
        for (j, rem) in s.reminders.iter().enumerate() {
            match Offset::parse(rem) {
                Ok(o) => reminders.push(o),
                Err(e) => r.add(
                    format!("{key}.reminders[{j}]"),
                    e,
                    "write \"3d\" (after sending) or \"-1d\" (before the deadline)",
                ),
            }
        }
        Policy {
            expire_after_ms: s.expire_after.as_ref().map(ms),
            reminders,
            escalate_after_ms: s.escalate_after.as_ref().map(ms),
        }
    }

    /// Whether it schedules nothing by itself.
    pub fn is_empty(&self) -> bool {
        self.expire_after_ms.is_none() && self.reminders.is_empty()
    }

    /// This policy with `reg`'s overrides (validated when registered).
    pub fn with(&self, reg: Option<&Registration>) -> Policy {
        let mut p = self.clone();
        if let Some(reg) = reg {
            if let Some(r) = &reg.reminders {
                p.reminders = r.iter().filter_map(|s| Offset::parse(s).ok()).collect();
            }
            if let Some(e) = reg
                .escalate_after
                .as_deref()
                .and_then(|e| humantime::parse_duration(e).ok())
            {
                p.escalate_after_ms = Some(e.as_millis().min(i64::MAX as u128) as i64);
            }
        }
        p
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    Reminder,
    Overdue,
    Escalated,
}

impl TimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::Reminder => "reminder",
            TimerKind::Overdue => "overdue",
            TimerKind::Escalated => "escalated",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> Option<TimerKind> {
        [
            TimerKind::Reminder,
            TimerKind::Overdue,
            TimerKind::Escalated,
        ]
        .into_iter()
        .find(|k| k.code() == c)
    }
}

/// One timer: what fires, which of its kind (the reminder's index), when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timer {
    pub kind: TimerKind,
    pub slot: u32,
    pub due_ms: i64,
}

/// An envelope's timers (stored with it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timers {
    /// When it was first seen going out for signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_ms: Option<i64>,
    /// A deadline set by `POST …/deadline` (before the registration's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Timer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fired: Vec<Timer>,
}

impl Timers {
    pub fn is_empty(&self) -> bool {
        *self == Timers::default()
    }
}

/// What rescheduling changed: timers to add to the due-time index, and to
/// take out of it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Retimed {
    pub added: Vec<Timer>,
    pub removed: Vec<Timer>,
}

impl Envelope {
    /// The deadline (see the module doc), if any.
    pub fn deadline_ms(&self, policy: &Policy) -> Option<i64> {
        self.timers
            .deadline_ms
            .or_else(|| {
                let reg = self.registration.as_ref()?.deadline.as_deref()?;
                crate::time::parse_rfc3339_ms(reg)
            })
            .or_else(|| Some(self.timers.sent_ms? + policy.expire_after_ms?))
    }

    /// The timers it should have pending now.
    fn due_timers(&self, policy: &Policy) -> Vec<Timer> {
        if !self.state.is_live() {
            return Vec::new();
        }
        let deadline = self.deadline_ms(policy);
        let sent = self.timers.sent_ms;
        let mut out = Vec::new();
        // Reminders only once it went out: nobody can sign before.
        for (i, off) in policy
            .reminders
            .iter()
            .enumerate()
            .filter(|_| sent.is_some())
        {
            let due = match *off {
                Offset::AfterSent(d) => sent.map(|s| s.saturating_add(d)),
                Offset::BeforeDeadline(d) => deadline.map(|dl| dl.saturating_sub(d)),
            };
            if let Some(due_ms) = due {
                out.push(Timer {
                    kind: TimerKind::Reminder,
                    slot: i as u32,
                    due_ms,
                });
            }
        }
        if let Some(dl) = deadline {
            out.push(Timer {
                kind: TimerKind::Overdue,
                slot: 0,
                due_ms: dl,
            });
            if let Some(e) = policy.escalate_after_ms {
                out.push(Timer {
                    kind: TimerKind::Escalated,
                    slot: 0,
                    due_ms: dl.saturating_add(e),
                });
            }
        }
        out.retain(|t| !self.timers.fired.contains(t));
        out.sort();
        out
    }

    /// Notes that it went out for signing at `at_ms` (the first time counts).
    pub fn mark_sent(&mut self, at_ms: i64) {
        if self.timers.sent_ms.is_none() && self.state != EnvelopeState::Open {
            self.timers.sent_ms = Some(at_ms);
        }
    }

    /// Brings `pending` in line with its state and `policy`; what changed.
    pub fn retime(&mut self, policy: &Policy) -> Retimed {
        let want = self.due_timers(policy);
        if want == self.timers.pending {
            return Retimed::default();
        }
        let r = Retimed {
            added: want
                .iter()
                .filter(|t| !self.timers.pending.contains(t))
                .copied()
                .collect(),
            removed: (self.timers.pending.iter())
                .filter(|t| !want.contains(t))
                .copied()
                .collect(),
        };
        self.timers.pending = want;
        r
    }

    /// Fires `t` if it is pending: moves it to `fired`. `false`: not pending
    /// (fired before, or cancelled), nothing to do.
    pub fn fire(&mut self, t: &Timer) -> bool {
        let Some(i) = self.timers.pending.iter().position(|p| p == t) else {
            return false;
        };
        self.timers.pending.remove(i);
        self.timers.fired.push(*t);
        if self.timers.fired.len() > MAX_FIRED {
            self.timers.fired.remove(0);
        }
        true
    }

    /// The signers who have not signed (nor declined) yet.
    pub fn pending_signers(&self) -> Vec<&crate::event::SignerStatus> {
        self.signers
            .iter()
            .filter(|s| matches!(s.state, SignerState::Pending | SignerState::Viewed))
            .collect()
    }
}
