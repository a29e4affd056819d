//! Envelopes in the store: each accepted event of an envelope updates its
//! [`Envelope`] in the transaction that stores the event ([`apply`]), with a
//! history entry and the derived events it emits, so a crash can never leave
//! an event without its state change or a derived event without its cause.
//! Registrations and archive confirmations go through the writer the same way.
//!
//! Tables: `envelopes_v1` ((source, envelope id) → the envelope as JSON),
//! `envelope_log_v1` (seq → one history entry: the stream's messages, resumable
//! by sequence), `envelope_history_v1` ((source, envelope id, seq): each
//! envelope's entries), `envelopes_created_v1` (created seq → (source,
//! envelope id): the listing's order and the sweep's).
//!
//! Reads here: one envelope with its history, the listing, and the log after
//! a sequence (a stream subscriber's resume).

pub(super) mod apply;

use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::envelope::{Envelope, Registration};
use crate::event::{EnvelopeState, Kind, Progress, SignatureEvent, Signer, SignerState};

use super::{Store, StoreError};

/// (source, envelope id) → [`Envelope`] as JSON.
pub(super) const ENVELOPES: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("envelopes_v1");
/// seq → (source, envelope id, changed, [`LogEntry`] as JSON).
pub(super) const ENVELOPE_LOG: TableDefinition<u64, (&str, &str, bool, &[u8])> =
    TableDefinition::new("envelope_log_v1");
/// (source, envelope id, seq) → (): each envelope's history entries.
pub(super) const ENVELOPE_HISTORY: TableDefinition<(&str, &str, u64), ()> =
    TableDefinition::new("envelope_history_v1");
/// created seq → (source, envelope id).
pub(super) const ENVELOPES_CREATED: TableDefinition<u64, (&str, &str)> =
    TableDefinition::new("envelopes_created_v1");

/// Routes a derived event: (Kafka topics, HTTP endpoints).
pub type RouteFn = Arc<dyn Fn(&SignatureEvent) -> (Vec<String>, Vec<String>) + Send + Sync>;

/// Envelope tracking's settings (from `[envelopes]`) and the routing derived
/// events take.
#[derive(Clone)]
pub struct Tracking {
    pub max_signers: usize,
    pub max_history: usize,
    pub retention_ms: i64,
    /// Messages a stream subscriber may fall behind.
    pub stream_buffer: usize,
    pub route: RouteFn,
}

impl std::fmt::Debug for Tracking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracking")
            .field("max_signers", &self.max_signers)
            .field("max_history", &self.max_history)
            .field("retention_ms", &self.retention_ms)
            .finish_non_exhaustive()
    }
}

/// What the envelope state machine needs of an event (the store never parses
/// the event's JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub envelope_id: String,
    pub provider: String,
    pub kind: Kind,
    pub signer: Option<Signer>,
    pub occurred_at: Option<String>,
    pub received_at: String,
}

/// A signer's change in a history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignerEntry {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// Absent when the signer was first seen with this event.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub from: Option<SignerState>,
    pub to: SignerState,
}

/// One entry of an envelope's history, and one message of the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The store sequence: the event's, or a number of its own for an admin
    /// action. Increases in commit order; the stream's resume point.
    pub seq: u64,
    pub source: String,
    pub envelope_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reference: Option<String>,
    /// The event's kind (`signer_completed`, `envelope.all_signed`…), or
    /// `registered` / `archive_refused` for admin actions.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub event_id: Option<String>,
    /// `provider`, `countersign` (derived) or `admin`.
    pub origin: String,
    /// When it was received (RFC 3339).
    pub at: String,
    pub from: EnvelopeState,
    pub to: EnvelopeState,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub signer: Option<SignerEntry>,
    /// Whether it changed anything (stream messages always do).
    pub changed: bool,
    pub progress: Progress,
}

/// A stream message: a changing history entry, with what subscribers filter on.
#[derive(Debug, Clone)]
pub struct StreamMsg {
    pub seq: u64,
    pub source: String,
    pub reference: Option<String>,
    pub state: EnvelopeState,
    /// The [`LogEntry`] as JSON.
    pub json: bytes::Bytes,
    /// The same as one Server-Sent Event (`id: <seq>`, `data: <json>`),
    /// rendered once for every subscriber.
    pub sse: bytes::Bytes,
}

impl StreamMsg {
    pub(super) fn new(e: &LogEntry, json: Vec<u8>) -> StreamMsg {
        // JSON from serde_json has no raw newline: one `data:` line.
        let mut sse = Vec::with_capacity(json.len() + 32);
        sse.extend_from_slice(format!("id: {}\ndata: ", e.seq).as_bytes());
        sse.extend_from_slice(&json);
        sse.extend_from_slice(b"\n\n");
        StreamMsg {
            seq: e.seq,
            source: e.source.clone(),
            reference: e.reference.clone(),
            state: e.to,
            json: json.into(),
            sse: sse.into(),
        }
    }

    fn from_log(seq: u64, json: &[u8]) -> Result<StreamMsg, StoreError> {
        let e: LogEntry = serde_json::from_slice(json)
            .map_err(|e| StoreError::Db(format!("envelope log entry {seq}: {e}")))?;
        Ok(StreamMsg::new(&e, json.to_vec()))
    }
}

/// An admin action on an envelope, applied by the writer.
#[derive(Debug, Clone)]
pub enum EnvelopeOp {
    Register {
        source: String,
        provider: String,
        envelope_id: String,
        registration: Registration,
    },
    Archive {
        source: String,
        envelope_id: String,
        sha256: String,
    },
}

/// What an admin action did.
#[derive(Debug, Clone)]
pub enum EnvelopeOutcome {
    /// Applied (or nothing to change); the derived events it emitted.
    Done {
        envelope: Box<Envelope>,
        derived: Vec<(Kind, String)>,
    },
    NotFound,
    /// Refused; nothing changed.
    Refused(crate::envelope::ArchiveError),
}

pub(super) fn decode(json: &[u8]) -> Result<Envelope, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Db(format!("envelope record: {e}")))
}

/// A page of the envelope listing.
#[derive(Debug, Clone)]
pub struct EnvelopePage {
    pub envelopes: Vec<Envelope>,
    /// Pass as `before` for the next page; `None` at the end.
    pub next_before: Option<u64>,
}

impl Store {
    /// Applies an admin action (registration, archive confirmation) through
    /// the writer.
    pub async fn envelope_op(&self, op: EnvelopeOp) -> Result<EnvelopeOutcome, StoreError> {
        let op = Box::new(op);
        self.call(|reply| super::Command::Envelope { op, reply })
            .await
    }

    /// One envelope with its history (oldest first, at most `max_history`).
    pub fn envelope(
        &self,
        source: &str,
        envelope_id: &str,
    ) -> Result<Option<(Envelope, Vec<LogEntry>)>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let Some(row) = txn.open_table(ENVELOPES)?.get((source, envelope_id))? else {
            return Ok(None);
        };
        let env = decode(row.value())?;
        let log = txn.open_table(ENVELOPE_LOG)?;
        let mut history = Vec::new();
        let hist = txn.open_table(ENVELOPE_HISTORY)?;
        for entry in hist.range((source, envelope_id, 0)..=(source, envelope_id, u64::MAX))? {
            let seq = entry?.0.value().2;
            if let Some(v) = log.get(seq)? {
                let e = serde_json::from_slice(v.value().3)
                    .map_err(|e| StoreError::Db(format!("envelope log entry {seq}: {e}")))?;
                history.push(e);
            }
        }
        Ok(Some((env, history)))
    }

    /// Envelopes newest first (by creation), optionally only those created
    /// before `before`, in `state` and from `source`. At most `limit`; a scan
    /// stops after `limit × 20 + 1000` envelopes and says where to go on.
    pub fn envelopes(
        &self,
        state: Option<EnvelopeState>,
        source: Option<&str>,
        limit: usize,
        before: Option<u64>,
    ) -> Result<EnvelopePage, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let created = txn.open_table(ENVELOPES_CREATED)?;
        let envelopes = txn.open_table(ENVELOPES)?;
        let budget = limit.saturating_mul(20).saturating_add(1000);
        let mut out = Vec::new();
        let mut next_before = None;
        for (scanned, entry) in created
            .range(..before.unwrap_or(u64::MAX))?
            .rev()
            .enumerate()
        {
            let (k, v) = entry?;
            let seq = k.value();
            if out.len() >= limit || scanned >= budget {
                next_before = Some(seq + 1);
                break;
            }
            let (src, id) = v.value();
            if source.is_some_and(|s| s != src) {
                continue;
            }
            let Some(row) = envelopes.get((src, id))? else {
                continue;
            };
            let env = decode(row.value())?;
            if state.is_none_or(|s| s == env.state) {
                out.push(env);
            }
        }
        Ok(EnvelopePage {
            envelopes: out,
            next_before,
        })
    }

    /// Stream messages (changing history entries) after sequence `after`, at
    /// most `limit`, oldest first; also how far the scan got.
    pub fn envelope_log(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<StreamMsg>, u64), StoreError> {
        let txn = self.inner.db.begin_read()?;
        let log = txn.open_table(ENVELOPE_LOG)?;
        let mut out = Vec::new();
        let mut last = after;
        for entry in log.range(after.saturating_add(1)..)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry?;
            let seq = k.value();
            last = seq;
            let (_, _, changed, json) = v.value();
            if changed {
                out.push(StreamMsg::from_log(seq, json)?);
            }
        }
        Ok((out, last))
    }

    /// The newest sequence in the envelope log (0 when empty).
    pub fn envelope_log_head(&self) -> Result<u64, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let last = txn
            .open_table(ENVELOPE_LOG)?
            .last()?
            .map(|(k, _)| k.value());
        Ok(last.unwrap_or(0))
    }

    /// Live stream messages, as they commit. A receiver that falls more than
    /// `envelopes.stream_buffer` behind gets `Lagged`.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<StreamMsg>> {
        self.inner.stream.subscribe()
    }

    /// Whether envelope tracking is on.
    pub fn tracking(&self) -> bool {
        self.inner.tracking
    }
}

#[cfg(test)]
mod tests;
