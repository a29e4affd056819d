//! Accepted events and their dedup claims: commit (the claim is checked and
//! taken in the writer's transaction, with the event), lookup by id, listing,
//! and sweeping past retention.

use redb::{ReadableDatabase, ReadableTable, Table, WriteTransaction};

use super::deliveries;
use super::tables::{EVENTS, EventRow, IDS, IdEntry, KAFKA_DONE, KAFKA_QUEUE, TRACE};
use tokio::sync::{mpsc, oneshot};

use super::{Command, Store, StoreError};

/// An event ready to be stored: its dedup key and its serialized JSON.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub source: String,
    pub id: String,
    pub received_ms: i64,
    pub json: Vec<u8>,
    /// Kafka topics to publish to (the outbox entries written with the event).
    pub topics: Vec<String>,
    /// HTTP endpoints to deliver to (queued with the event).
    pub endpoints: Vec<String>,
    /// Deliveries with the same envelope go to an endpoint in order.
    pub envelope: String,
    /// The webhook's W3C `traceparent`, continued by its deliveries.
    pub traceparent: Option<String>,
    /// What envelope tracking needs, for events with an envelope id.
    pub facts: Option<super::envelopes::Facts>,
    /// What the audit log records of the webhook (with the audit log on).
    pub audit: Option<super::AuditFacts>,
    /// Failed its source's plausibility checks: held in quarantine (its
    /// destinations are the `quarantined = true` routes' only).
    pub held: bool,
}

/// What one event of a commit claimed: a fresh (source, id), stored; or one
/// already seen within the dedup window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Durably stored under this sequence number.
    Stored { seq: u64 },
    /// Its (source, id) was seen within the dedup window; the original's sequence.
    Duplicate { seq: u64 },
}

/// A stored event as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub received_ms: i64,
    pub source: String,
    pub id: String,
    pub json: Vec<u8>,
}

impl Store {
    /// Stores `events` durably (fsync) unless their keys were seen; returns one
    /// outcome per event. Fails fast with `Overloaded` when the queue is full.
    pub async fn commit(&self, events: Vec<NewEvent>) -> Result<Vec<Claim>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .try_send(Command::Commit { events, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Deletes events past retention (with their id entries and delivery
    /// records), at most `store.sweep_batch`; returns how many went.
    pub async fn sweep(&self, now_ms: i64) -> Result<usize, StoreError> {
        self.call(|reply| Command::Sweep { now_ms, reply }).await
    }

    /// Events with this id (one per source that used it), oldest first.
    pub fn get(&self, id: &str) -> Result<Vec<Record>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let ids = txn.open_table(IDS)?;
        let events = txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        for entry in ids.range((id, "")..)? {
            let (k, v) = entry?;
            if k.value().0 != id {
                break;
            }
            let seq = IdEntry::from(v.value()).seq;
            if let Some(e) = events.get(seq)? {
                out.push(EventRow::from(e.value()).record(seq));
            }
        }
        Ok(out)
    }

    /// The newest `limit` events, optionally only those older than `before`.
    pub fn list(&self, limit: usize, before: Option<u64>) -> Result<Vec<Record>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let range = events.range(..before.unwrap_or(u64::MAX))?;
        let mut out = Vec::with_capacity(limit.min(1024));
        for entry in range.rev().take(limit) {
            let (seq, v) = entry?;
            out.push(EventRow::from(v.value()).record(seq.value()));
        }
        Ok(out)
    }
}

/// The event tables, open in the writer's transaction.
pub(super) struct Tables<'txn> {
    events: Table<'txn, u64, (i64, &'static str, &'static str, &'static [u8])>,
    ids: Table<'txn, (&'static str, &'static str), (u64, i64)>,
    trace: Table<'txn, u64, &'static str>,
}

impl<'txn> Tables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Tables<'txn>, StoreError> {
        Ok(Tables {
            events: txn.open_table(EVENTS)?,
            ids: txn.open_table(IDS)?,
            trace: txn.open_table(TRACE)?,
        })
    }

    /// The dedup claim: a duplicate when its (id, source) was claimed within
    /// the window; otherwise the event takes the next sequence number and the
    /// id names it from now on (with a fresh claim). The caller then writes
    /// the event with [`Tables::put`] in the same transaction.
    pub fn claim(
        &mut self,
        e: &NewEvent,
        next_seq: &mut u64,
        dedup_ttl_ms: i64,
    ) -> Result<Claim, StoreError> {
        let key = (e.id.as_str(), e.source.as_str());
        let claim = self.ids.get(key)?.map(|g| IdEntry::from(g.value()));
        if let Some(c) = claim
            && c.dedup_expires_ms > e.received_ms
        {
            return Ok(Claim::Duplicate { seq: c.seq });
        }
        let seq = *next_seq;
        *next_seq += 1;
        let entry = IdEntry {
            seq,
            dedup_expires_ms: e.received_ms.saturating_add(dedup_ttl_ms),
        };
        self.ids.insert(key, entry.tuple())?;
        Ok(Claim::Stored { seq })
    }

    /// Event `seq`'s source, id and envelope id.
    pub fn head(&self, seq: u64) -> Result<(String, String, Option<String>), StoreError> {
        let g = (self.events.get(seq)?)
            .ok_or_else(|| StoreError::Db(format!("event {seq} is gone")))?;
        let e = EventRow::from(g.value());
        let envelope = crate::event::EventHead::read(e.json)
            .ok()
            .and_then(|h| h.envelope_id.map(|x| x.into_owned()));
        Ok((e.source.to_owned(), e.id.to_owned(), envelope))
    }

    /// Writes a claimed event under its sequence number, as `json`.
    pub fn put(&mut self, seq: u64, e: &NewEvent, json: &[u8]) -> Result<(), StoreError> {
        let row = EventRow {
            received_ms: e.received_ms,
            source: &e.source,
            id: &e.id,
            json,
        };
        self.events.insert(seq, row.tuple())?;
        if let Some(tp) = &e.traceparent
            && (!e.topics.is_empty() || !e.endpoints.is_empty())
        {
            self.trace.insert(seq, tp.as_str())?;
        }
        Ok(())
    }
}

/// One sweep's result: how many events went, and where the next one goes on
/// (`None`: the scan reached the retention cut-off; start from the oldest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) struct Swept {
    pub gone: usize,
    pub resume: Option<u64>,
}

/// Deletes up to `batch` events received before `cutoff_ms`, oldest first
/// from sequence `from`, with their id entries and delivery records. Events
/// still in the outbox or with an unfinished delivery are skipped, not
/// waited for: one endpoint down for days must not stop retention for
/// everything newer. At most `8 × batch` events are looked at per call (a
/// long run of blocked events is crossed over several calls).
pub(super) fn sweep(
    txn: &WriteTransaction,
    cutoff_ms: i64,
    batch: usize,
    from: u64,
) -> Result<Swept, StoreError> {
    let mut t = Tables::open(txn)?;
    let mut done = txn.open_table(KAFKA_DONE)?;
    let mut http = deliveries::Tables::open(txn)?;
    let queue = txn.open_table(KAFKA_QUEUE)?;
    let mut quarantine = txn.open_table(super::tables::QUARANTINE)?;
    let budget = batch.saturating_mul(8).max(1);
    let mut victims = Vec::new();
    let mut resume = None;
    for (scanned, entry) in t.events.range(from..)?.enumerate() {
        let (k, v) = entry?;
        let seq = k.value();
        let e = EventRow::from(v.value());
        if e.received_ms >= cutoff_ms {
            break;
        }
        if victims.len() >= batch || scanned >= budget {
            resume = Some(seq);
            break;
        }
        let queued = queue.range((seq, "")..(seq + 1, ""))?.next().is_some();
        if !queued && !http.unfinished(seq)? {
            victims.push((seq, e.source.to_owned(), e.id.to_owned()));
        }
    }
    for (seq, source, id) in &victims {
        let seq = *seq;
        http.remove_event(seq)?;
        t.trace.remove(seq)?;
        quarantine.remove(seq)?;
        done.retain_in((seq, "")..(seq + 1, ""), |_, _| false)?;
        t.events.remove(seq)?;
        // A later event with the same id may own the entry by now.
        let key = (id.as_str(), source.as_str());
        if (t.ids.get(key)?).is_some_and(|g| IdEntry::from(g.value()).seq == seq) {
            t.ids.remove(key)?;
        }
    }
    Ok(Swept {
        gone: victims.len(),
        resume,
    })
}
