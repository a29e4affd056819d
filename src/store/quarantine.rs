//! Quarantined events: held when stored (one row per event in
//! `quarantine_v1`, written in the accepting transaction), then released —
//! the event is routed and applied to its envelope as if it had just
//! arrived — or rejected (it never routes). Each decision is taken once, in
//! the writer, with its audit entry.

use redb::{ReadableDatabase, ReadableTable, Table};

use super::tables::{EVENTS, EventRow, QUARANTINE};
use super::{Actor, Command, NewEvent, Record, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for a person; routed only to `quarantined = true` routes.
    Held = 0,
    /// Released: routed normally since.
    Released = 1,
    /// Rejected: never routed beyond the quarantine routes.
    Rejected = 2,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Held => "held",
            Status::Released => "released",
            Status::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [Status::Held, Status::Released, Status::Rejected]
            .into_iter()
            .find(|x| x.as_str() == s)
    }

    fn code(self) -> u8 {
        self as u8
    }

    /// An unknown code is an error, never a guess.
    fn from_code(c: u8) -> Result<Status, StoreError> {
        match c {
            0 => Ok(Status::Held),
            1 => Ok(Status::Released),
            2 => Ok(Status::Rejected),
            other => Err(StoreError::Db(format!(
                "unknown quarantine status code {other}"
            ))),
        }
    }
}

/// A quarantine decision.
#[derive(Debug)]
pub enum QuarantineOp {
    /// Routes the event (`event` is it as the pipeline routes it now, its
    /// `quarantined` block naming who released it) and applies it to its
    /// envelope.
    Release {
        seq: u64,
        event: Box<NewEvent>,
    },
    Reject {
        seq: u64,
    },
}

impl QuarantineOp {
    pub fn seq(&self) -> u64 {
        match self {
            QuarantineOp::Release { seq, .. } | QuarantineOp::Reject { seq } => *seq,
        }
    }
}

/// An event's quarantine row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub status: Status,
    /// When it was held, or when it was decided.
    pub at_ms: i64,
    /// Who decided (the admin caller), empty while held.
    pub by: String,
}

/// A quarantined event with its row, as listings show it.
#[derive(Debug, Clone)]
pub struct HeldEvent {
    pub held: Held,
    pub record: Record,
}

impl Store {
    /// Releases or rejects a held event; false when it is not held (never
    /// was, or already decided).
    pub async fn decide(&self, op: QuarantineOp, by: Option<Actor>) -> Result<bool, StoreError> {
        self.call(|reply| Command::Quarantine {
            op: Box::new(op),
            by,
            reply,
        })
        .await
    }

    /// Event `seq`'s quarantine row, if it was ever quarantined.
    pub fn held(&self, seq: u64) -> Result<Option<Held>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let t = txn.open_table(QUARANTINE)?;
        t.get(seq)?.map(|g| row(g.value())).transpose()
    }

    /// How many quarantined events wait for a decision (a walk of the
    /// table: quarantined events are the exceptions).
    pub fn held_count(&self) -> Result<u64, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let mut n = 0;
        for entry in txn.open_table(QUARANTINE)?.iter()? {
            let (_, v) = entry?;
            n += u64::from(row(v.value())?.status == Status::Held);
        }
        Ok(n)
    }

    /// Quarantined events, newest first, before sequence `before`, with
    /// `status` and from `source` when given; at most `limit`, and where the
    /// next page starts. Filters walk the table (quarantined events are few:
    /// they are the exceptions).
    pub fn quarantined(
        &self,
        status: Option<Status>,
        source: Option<&str>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<HeldEvent>, Option<u64>), StoreError> {
        let txn = self.inner.db.begin_read()?;
        let t = txn.open_table(QUARANTINE)?;
        let events = txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        let mut next = None;
        for entry in t.range(..before.unwrap_or(u64::MAX))?.rev() {
            let (k, v) = entry?;
            let seq = k.value();
            let held = row(v.value())?;
            if status.is_some_and(|s| s != held.status) {
                continue;
            }
            let Some(e) = events.get(seq)? else { continue };
            let e = EventRow::from(e.value());
            if source.is_some_and(|s| s != e.source) {
                continue;
            }
            if out.len() == limit {
                next = out.last().map(|h: &HeldEvent| h.record.seq);
                break;
            }
            out.push(HeldEvent {
                held,
                record: e.record(seq),
            });
        }
        Ok((out, next))
    }
}

fn row((code, at_ms, by): (u8, i64, &str)) -> Result<Held, StoreError> {
    Ok(Held {
        status: Status::from_code(code)?,
        at_ms,
        by: by.to_owned(),
    })
}

/// Holds a just-stored event (in the accepting transaction).
pub(super) fn hold(
    t: &mut Table<u64, (u8, i64, &'static str)>,
    seq: u64,
    at_ms: i64,
) -> Result<(), StoreError> {
    t.insert(seq, (Status::Held.code(), at_ms, ""))?;
    Ok(())
}

/// Records the decision when the event is held; false otherwise.
pub(super) fn decide(
    t: &mut Table<u64, (u8, i64, &'static str)>,
    op: &QuarantineOp,
    by: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let seq = op.seq();
    let held = t
        .get(seq)?
        .is_some_and(|g| g.value().0 == Status::Held.code());
    if !held {
        return Ok(false);
    }
    let status = match op {
        QuarantineOp::Release { .. } => Status::Released,
        QuarantineOp::Reject { .. } => Status::Rejected,
    };
    t.insert(seq, (status.code(), now_ms, by))?;
    Ok(true)
}
