//! Envelopes in the store: each accepted event of an envelope updates its
//! [`Envelope`] in the transaction that stores the event ([`apply`]), with a
//! history entry and the derived events it emits, so a crash can never leave
//! an event without its state change or a derived event without its cause.
//! Registrations and archive confirmations go through the writer the same way.
//!
//! Tables: `envelopes_v1` ((source, envelope id) → the envelope as JSON),
//! `envelope_entries_v1` (seq → one history entry, compact ([`row`]): the
//! stream's messages, resumable by sequence; each envelope lists its entries'
//! sequences, and its first entry, flagged, is the listing's and the sweep's
//! index), `envelope_states_v1` (how many envelopes are in each state),
//! `envelope_references_v1` (registered references → envelopes).
//!
//! Reads here: one envelope with its history, the listing, and the log after
//! a sequence (a stream subscriber's resume).

pub(super) mod apply;
mod decision;
mod row;
pub(super) mod timers;

use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::envelope::timers::Policy;
use crate::envelope::{Envelope, Registration};
use crate::event::{
    EnvelopeBlock, EnvelopeState, Kind, Progress, SignatureEvent, Signer, SignerState,
};

use super::{Store, StoreError};

/// (source, envelope id) → [`Envelope`] as JSON.
pub(super) const ENVELOPES: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("envelopes_v1");
/// seq → one history entry ([`row::LogRow`]).
pub(super) const ENVELOPE_LOG: TableDefinition<u64, &[u8]> =
    TableDefinition::new("envelope_entries_v1");

/// How many envelopes are in each state: state code (its place in
/// [`EnvelopeState::ALL`]) → count. Kept by the writer with every change
/// (the overview's "envelopes by state" without a scan); counted once from
/// `envelopes_v1` when a store from before it is opened.
pub(super) const STATES: TableDefinition<u8, u64> = TableDefinition::new("envelope_states_v1");

/// The code of `s` in [`STATES`].
pub(super) fn state_code(s: EnvelopeState) -> u8 {
    EnvelopeState::ALL
        .iter()
        .position(|x| *x == s)
        .expect("every state is listed") as u8
}

/// Registered references: (reference, source, envelope id) → the
/// envelope's sequence. The listing's `reference` filter reads it instead of
/// scanning (a CRM id is looked up at any depth in one answer).
pub(super) const REFERENCES: TableDefinition<(&str, &str, &str), u64> =
    TableDefinition::new("envelope_references_v1");

/// META key: the version of [`STATES`] and [`REFERENCES`] the store keeps.
const INDEXES: &str = "envelope_indexes";
const INDEXES_VERSION: u64 = 1;

/// Builds [`STATES`] and [`REFERENCES`] from `envelopes_v1` once, for a store
/// written before they were kept (one pass over the envelopes at start-up).
pub(super) fn build_indexes(db: &redb::Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(super::tables::META)?;
        if meta.get(INDEXES)?.map(|v| v.value()) == Some(INDEXES_VERSION) {
            return Ok(());
        }
        let envelopes = txn.open_table(ENVELOPES)?;
        let mut states = txn.open_table(STATES)?;
        let mut refs = txn.open_table(REFERENCES)?;
        states.retain(|_, _| false)?;
        refs.retain(|_, _| false)?;
        let mut counts = [0u64; 5];
        for row in envelopes.iter()? {
            let (_, v) = row?;
            let env = decode(v.value())?;
            counts[state_code(env.state) as usize] += 1;
            if let Some(r) = env.reference() {
                refs.insert(
                    (r, env.source.as_str(), env.envelope_id.as_str()),
                    env.created_seq,
                )?;
            }
        }
        for (code, n) in counts.iter().enumerate() {
            states.insert(code as u8, *n)?;
        }
        meta.insert(INDEXES, INDEXES_VERSION)?;
    }
    txn.commit()?;
    Ok(())
}

/// The timers' due-time index: (due ms, source, envelope id, kind code,
/// slot) → () (see `timers`).
pub(super) const TIMERS: TableDefinition<(u64, &str, &str, u8, u32), ()> =
    TableDefinition::new("envelope_timers_v1");

/// Routes a derived event: (Kafka topics, HTTP endpoints).
pub type RouteFn = Arc<dyn Fn(&SignatureEvent) -> (Vec<String>, Vec<String>) + Send + Sync>;

/// The routes of a provider event that wait for its envelope (conditions
/// reading `envelope`): given the envelope as of after the event, the further
/// (Kafka topics, HTTP endpoints). Evaluated by the writer, in the accepting
/// transaction.
#[derive(Clone)]
pub struct LateRoute(pub Arc<LateRouteFn>);

/// See [`LateRoute`].
pub type LateRouteFn = dyn Fn(&EnvelopeBlock) -> (Vec<String>, Vec<String>) + Send + Sync;

impl std::fmt::Debug for LateRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LateRoute")
    }
}

impl PartialEq for LateRoute {
    fn eq(&self, other: &LateRoute) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Envelope tracking's settings (from `[envelopes]`) and the routing derived
/// events take.
#[derive(Clone)]
pub struct Tracking {
    pub max_signers: usize,
    pub max_history: usize,
    /// Envelopes the writer keeps in memory.
    pub cache_envelopes: usize,
    pub retention_ms: i64,
    /// Messages a stream subscriber may fall behind.
    pub stream_buffer: usize,
    pub route: RouteFn,
    /// Timer policies (`[[sources]] expire_after`, `reminders`,
    /// `escalate_after`) by source id; a source not here has none.
    pub policies: Arc<std::collections::HashMap<String, Policy>>,
}

impl Tracking {
    /// `source`'s timer policy (empty if it has none).
    pub fn policy(&self, source: &str) -> &Policy {
        static NONE: std::sync::LazyLock<Policy> = std::sync::LazyLock::new(Policy::default);
        self.policies.get(source).unwrap_or(&NONE)
    }
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
    /// Routes that wait for the envelope, if any.
    pub late_route: Option<LateRoute>,
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
    /// The envelope's own sequence: that of its first entry, when it was
    /// created (its place in the newest-first listing). 0 when unknown.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub envelope_seq: u64,
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

fn is_zero(n: &u64) -> bool {
    *n == 0
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
    /// The stream message of a history entry.
    pub(super) fn of(e: &LogEntry) -> StreamMsg {
        let json = serde_json::to_vec(e).expect("log entries serialize");
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
    /// `POST …/remind`: `envelope.reminder_due` now, `manual: true`.
    Remind { source: String, envelope_id: String },
    /// `POST …/deadline`: moves the deadline and reschedules the timers.
    Deadline {
        source: String,
        envelope_id: String,
        deadline_ms: i64,
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
    /// Refused: the envelope is completed, cancelled or archived (no timers).
    Final(EnvelopeState),
}

pub(super) fn decode(json: &[u8]) -> Result<Envelope, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Db(format!("envelope record: {e}")))
}

/// Which envelopes a listing shows.
#[derive(Debug, Clone, Default)]
pub struct EnvelopeFilter {
    pub state: Option<EnvelopeState>,
    pub source: Option<String>,
    /// The registration's `reference`, exactly.
    pub reference: Option<String>,
    /// Text search: a case-insensitive part of the envelope id, the
    /// reference, or a signer's e-mail address or name.
    pub text: Option<String>,
}

impl EnvelopeFilter {
    /// Whether `env` is shown (the source is checked before reading it).
    pub fn matches(&self, env: &Envelope) -> bool {
        self.matches_text(env, self.needle().as_deref())
    }

    /// The text search lowercased (once per listing, not per envelope).
    fn needle(&self) -> Option<String> {
        self.text.as_deref().map(str::to_lowercase)
    }

    /// [`EnvelopeFilter::matches`] with the text search already lowercased.
    fn matches_text(&self, env: &Envelope, text: Option<&str>) -> bool {
        if self.state.is_some_and(|s| s != env.state)
            || self.source.as_deref().is_some_and(|s| s != env.source)
            || self
                .reference
                .as_deref()
                .is_some_and(|r| env.reference() != Some(r))
        {
            return false;
        }
        let Some(text) = text else {
            return true;
        };
        let has = |v: &str| v.to_lowercase().contains(text);
        has(&env.envelope_id)
            || env.reference().is_some_and(has)
            || env
                .signers
                .iter()
                .any(|s| s.email.as_deref().is_some_and(has) || s.name.as_deref().is_some_and(has))
    }
}

/// A page of the envelope listing.
#[derive(Debug, Clone)]
pub struct EnvelopePage {
    pub envelopes: Vec<Envelope>,
    /// The envelope log's newest sequence as of this read.
    pub log_head: u64,
    /// Pass as `before` for the next page; `None` at the end.
    pub next_before: Option<u64>,
}

impl Store {
    /// Applies an admin action (registration, archive confirmation) through
    /// the writer; `by` names who asked, for the audit log.
    pub async fn envelope_op(
        &self,
        op: EnvelopeOp,
        by: Option<super::Actor>,
    ) -> Result<EnvelopeOutcome, StoreError> {
        let op = Box::new(op);
        self.call(|reply| super::Command::Envelope { op, by, reply })
            .await
    }

    /// Fires up to `limit` envelope timers due now (the store's clock), in
    /// one transaction with the derived events they emit; how many fired.
    pub async fn fire_timers(&self, limit: usize) -> Result<usize, StoreError> {
        self.call(|reply| super::Command::Timers { limit, reply })
            .await
    }

    /// When the soonest timer is due (ms), if any.
    pub fn next_timer_due(&self) -> Result<Option<i64>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(TIMERS)?;
        let first = table.first()?.map(|(k, _)| k.value().0 as i64);
        Ok(first)
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
        for &seq in &env.history {
            if let Some(v) = log.get(seq)? {
                history.push(row::LogRow::decode(v.value())?.render(seq, Some(&env)));
            }
        }
        Ok(Some((env, history)))
    }

    /// Envelopes newest first (by creation), optionally only those created
    /// before `before` and matching `filter`. At most `limit`; a scan stops
    /// after `limit × 200 + 10 000` history entries and says where to go on
    /// (so every call answers quickly, however rare the matches). With a
    /// `reference`, the references index answers instead of a scan.
    pub fn envelopes(
        &self,
        filter: &EnvelopeFilter,
        limit: usize,
        before: Option<u64>,
    ) -> Result<EnvelopePage, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let log = txn.open_table(ENVELOPE_LOG)?;
        let envelopes = txn.open_table(ENVELOPES)?;
        let log_head = log.last()?.map_or(0, |(k, _)| k.value());
        let needle = filter.needle();
        let matches = |env: &Envelope| filter.matches_text(env, needle.as_deref());
        if let Some(reference) = filter.reference.as_deref() {
            // From the index: every envelope of the reference, in one answer.
            let refs = txn.open_table(REFERENCES)?;
            let mut found = Vec::new();
            for row in refs.range((reference, "", "")..)? {
                let (k, seq) = row?;
                let (r, src, id) = k.value();
                if r != reference {
                    break;
                }
                if before.is_some_and(|b| seq.value() >= b) {
                    continue;
                }
                if let Some(e) = envelopes.get((src, id))? {
                    let env = decode(e.value())?;
                    if matches(&env) {
                        found.push(env);
                    }
                }
            }
            found.sort_by_key(|e| std::cmp::Reverse(e.created_seq));
            let next_before = (found.len() > limit).then(|| found[limit - 1].created_seq);
            found.truncate(limit);
            return Ok(EnvelopePage {
                envelopes: found,
                log_head,
                next_before,
            });
        }
        let budget = limit.saturating_mul(200).saturating_add(10_000);
        let mut out = Vec::new();
        let mut next_before = None;
        for (scanned, entry) in log.range(..before.unwrap_or(u64::MAX))?.rev().enumerate() {
            let (k, v) = entry?;
            let seq = k.value();
            if out.len() >= limit || scanned >= budget {
                next_before = Some(seq + 1);
                break;
            }
            let r = row::LogRow::decode(v.value())?;
            if !r.first || filter.source.as_deref().is_some_and(|s| s != r.source) {
                continue;
            }
            let Some(e) = envelopes.get((r.source.as_str(), r.envelope_id.as_str()))? else {
                continue;
            };
            let env = decode(e.value())?;
            if matches(&env) {
                out.push(env);
            }
        }
        Ok(EnvelopePage {
            envelopes: out,
            log_head,
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
        let envelopes = txn.open_table(ENVELOPES)?;
        let mut seen: std::collections::HashMap<(String, String), Option<Envelope>> =
            std::collections::HashMap::new();
        let mut out = Vec::new();
        let mut last = after;
        for entry in log.range(after.saturating_add(1)..)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry?;
            let seq = k.value();
            last = seq;
            let r = row::LogRow::decode(v.value())?;
            if !r.changed {
                continue;
            }
            let key = (r.source.clone(), r.envelope_id.clone());
            if !seen.contains_key(&key) {
                let env = envelopes
                    .get((key.0.as_str(), key.1.as_str()))?
                    .map(|e| decode(e.value()))
                    .transpose()?;
                seen.insert(key.clone(), env);
            }
            out.push(StreamMsg::of(&r.render(seq, seen[&key].as_ref())));
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

    /// How many envelopes are in each state, in [`EnvelopeState::ALL`]'s order.
    pub fn envelope_states(&self) -> Result<[(EnvelopeState, u64); 5], StoreError> {
        let txn = self.inner.db.begin_read()?;
        let states = txn.open_table(STATES)?;
        let mut out = EnvelopeState::ALL.map(|s| (s, 0));
        for row in states.iter()? {
            let (k, v) = row?;
            if let Some(slot) = out.get_mut(k.value() as usize) {
                slot.1 = v.value();
            }
        }
        Ok(out)
    }

    /// Whether envelope tracking is on.
    pub fn tracking(&self) -> bool {
        self.inner.tracking
    }
}

#[cfg(test)]
pub(super) mod tests;
#[cfg(test)]
mod timer_tests;
