//! The writer's queued requests: each with its reply and, once its part of
//! the transaction is written, its result; what the write-ahead log records
//! of each; and the answers after the commit.

use tokio::sync::oneshot;

use super::super::deliveries::HttpOp;
use super::super::envelopes::{EnvelopeOp, EnvelopeOutcome};
use super::super::quarantine::QuarantineOp;
use super::super::wal;
use super::super::{Ack, Actor, Claim, Command, NewEvent, StoreError};

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One queued write request, its reply, and (once its part of the transaction
/// is written) its result. The result lives beside its own reply, so a request
/// can only ever be answered with a result of its own type.
pub(super) enum Item {
    Commit {
        events: Vec<NewEvent>,
        reply: Reply<Vec<Claim>>,
        outcomes: Vec<Claim>,
    },
    Ack {
        acks: Vec<Ack>,
        reply: Reply<()>,
    },
    Http {
        ops: Vec<HttpOp>,
        by: Option<Actor>,
        reply: Reply<Vec<bool>>,
        applied: Vec<bool>,
    },
    Envelope {
        op: Box<EnvelopeOp>,
        by: Option<Actor>,
        reply: Reply<EnvelopeOutcome>,
        outcome: Option<EnvelopeOutcome>,
    },
    Timers {
        limit: usize,
        reply: Reply<usize>,
        fired: usize,
    },
    AuditCopied {
        seq: u64,
        reply: Reply<()>,
    },
    Quarantine {
        op: Box<QuarantineOp>,
        by: Option<Actor>,
        reply: Reply<bool>,
        applied: bool,
    },
}

impl Item {
    pub(super) fn from_command(c: Command) -> Result<Item, Command> {
        match c {
            Command::Commit { events, reply } => Ok(Item::Commit {
                outcomes: Vec::with_capacity(events.len()),
                events,
                reply,
            }),
            Command::Ack { acks, reply } => Ok(Item::Ack { acks, reply }),
            Command::Http { ops, by, reply } => Ok(Item::Http {
                applied: Vec::with_capacity(ops.len()),
                ops,
                by,
                reply,
            }),
            Command::Envelope { op, by, reply } => Ok(Item::Envelope {
                op,
                by,
                reply,
                outcome: None,
            }),
            Command::Timers { limit, reply } => Ok(Item::Timers {
                limit,
                reply,
                fired: 0,
            }),
            Command::AuditCopied { seq, reply } => Ok(Item::AuditCopied { seq, reply }),
            Command::Quarantine { op, by, reply } => Ok(Item::Quarantine {
                op,
                by,
                reply,
                applied: false,
            }),
            other => Err(other),
        }
    }

    /// What the write-ahead log records of the item, if it can be logged:
    /// webhooks (without routes evaluated against their envelope: code, not
    /// data), Kafka acknowledgements, and the gateway's own delivery
    /// records. Admin actions, timers and the rest are synced by their own
    /// commit.
    pub(super) fn logged(&self) -> Option<wal::EntryRef<'_>> {
        match self {
            Item::Commit { events, .. } => events
                .iter()
                .all(|e| e.facts.as_ref().is_none_or(|f| f.late_route.is_none()))
                .then_some(wal::EntryRef::Events(events)),
            Item::Ack { acks, .. } => Some(wal::EntryRef::Acks(acks)),
            Item::Http { ops, by: None, .. } => Some(wal::EntryRef::Http(ops)),
            _ => None,
        }
    }

    /// A logged request replayed at open (its answer goes nowhere).
    pub(super) fn replayed(entry: wal::Entry) -> Item {
        match entry {
            wal::Entry::Events(events) => Item::Commit {
                outcomes: Vec::with_capacity(events.len()),
                events,
                reply: oneshot::channel().0,
            },
            wal::Entry::Acks(acks) => Item::Ack {
                acks,
                reply: oneshot::channel().0,
            },
            wal::Entry::Http(ops) => Item::Http {
                applied: Vec::with_capacity(ops.len()),
                ops,
                by: None,
                reply: oneshot::channel().0,
            },
        }
    }

    /// Whether the item holds or decides a quarantined event.
    pub(super) fn quarantines(&self) -> bool {
        match self {
            Item::Commit { events, .. } => events.iter().any(|e| e.held),
            Item::Quarantine { .. } => true,
            _ => false,
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Item::Commit { events, .. } => events.len(),
            Item::Ack { acks, .. } => acks.len(),
            Item::Http { ops, .. } => ops.len(),
            Item::Envelope { .. } | Item::AuditCopied { .. } | Item::Quarantine { .. } => 1,
            Item::Timers { limit, .. } => *limit,
        }
    }

    /// Answers with the result written, after the commit synced.
    pub(super) fn succeed(self) {
        match self {
            Item::Commit {
                reply, outcomes, ..
            } => drop(reply.send(Ok(outcomes))),
            Item::Ack { reply, .. } => drop(reply.send(Ok(()))),
            Item::Http { reply, applied, .. } => drop(reply.send(Ok(applied))),
            Item::Envelope { reply, outcome, .. } => drop(
                reply.send(outcome.ok_or_else(|| StoreError::Db("envelope op not applied".into()))),
            ),
            Item::Timers { reply, fired, .. } => drop(reply.send(Ok(fired))),
            Item::AuditCopied { reply, .. } => drop(reply.send(Ok(()))),
            Item::Quarantine { reply, applied, .. } => drop(reply.send(Ok(applied))),
        }
    }

    /// Answers with the error that lost the whole batch.
    pub(super) fn fail(self, e: StoreError) {
        match self {
            Item::Commit { reply, .. } => drop(reply.send(Err(e))),
            Item::Ack { reply, .. } => drop(reply.send(Err(e))),
            Item::Http { reply, .. } => drop(reply.send(Err(e))),
            Item::Envelope { reply, .. } => drop(reply.send(Err(e))),
            Item::Timers { reply, .. } => drop(reply.send(Err(e))),
            Item::AuditCopied { reply, .. } => drop(reply.send(Err(e))),
            Item::Quarantine { reply, .. } => drop(reply.send(Err(e))),
        }
    }
}
