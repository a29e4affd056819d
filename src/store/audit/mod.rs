//! The audit log in the store: `audit_v1` (seq → the entry as JSON), appended
//! by the writer inside the transaction of the fact each entry records, so
//! there is never a fact without its entry nor an entry without its fact.
//! The writer keeps the chain's head (sequence, hash) in memory, read back
//! from the last entry at open; a failed commit puts it back. Checkpoints
//! (`audit_checkpoints_v1`) sign the head every `audit.checkpoint_every`
//! entries, every `audit.checkpoint_interval` and at shutdown; pruning past
//! `audit.retention` keeps the checkpoint before the first entry left, so
//! the new start is signed.

pub mod export;
pub mod verify;

use redb::{ReadableDatabase, ReadableTable, Table, TableDefinition};
use serde_json::Value;

use super::{Store, StoreError};
use crate::audit::chain::{Entry, GENESIS, Hash};
use crate::audit::checkpoint::{Checkpoint, key_id, sign};

/// seq → [`Entry`] as JSON.
pub(crate) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_v1");
/// seq → the [`Checkpoint`] signing entry `seq`'s hash, as JSON.
pub(crate) const CHECKPOINTS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("audit_checkpoints_v1");

/// META key: the last entry the Kafka copy (`audit.kafka_topic`) holds.
pub(crate) const COPIED: &str = "audit_kafka_copied";

/// How the writer keeps the log: the key that signs checkpoints, every
/// how many entries, and how long entries are kept (`audit.retention`).
#[derive(Clone)]
pub struct Signing {
    pub key: ed25519_dalek::SigningKey,
    pub every: u64,
    pub retention_ms: i64,
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing")
            .field("key_id", &key_id(&self.key.verifying_key()))
            .field("every", &self.every)
            .field("retention_ms", &self.retention_ms)
            .finish()
    }
}

/// What the audit entry of a webhook records, prepared by the pipeline
/// (off the writer's thread) as the two pieces of canonical JSON around the
/// one field only the writer knows: `event_seq` (accepted) or
/// `original_event_seq` (a duplicate), which both sort between `event_id`
/// and `provider`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFacts {
    /// `"auth":…,"body_sha256":…,"client":…,"envelope_id":…,"event_id":…`
    head: Vec<u8>,
    /// `"provider":…,"received_at":…,"source":…`
    tail: Vec<u8>,
}

/// What the pipeline knows of a webhook that its audit entry records.
#[derive(Debug, Clone)]
pub struct WebhookFacts<'a> {
    pub source: &'a str,
    /// The source's provider (`docusign`, `standard_webhooks`, …).
    pub provider: &'a str,
    pub event_id: &'a str,
    /// The provider's envelope id, when the event has one.
    pub envelope_id: Option<&'a str>,
    /// SHA-256 of the raw body (hex).
    pub body_sha256: &'a str,
    /// The verification method and the index of the key that matched.
    pub method: &'a str,
    pub key_index: Option<usize>,
    /// The client's address (as `server.client_ip_header` says, else the peer).
    pub client: Option<std::net::IpAddr>,
    pub received_ms: i64,
}

impl AuditFacts {
    /// The two canonical pieces (for the write-ahead log).
    pub(in crate::store) fn parts(&self) -> (&[u8], &[u8]) {
        (&self.head, &self.tail)
    }

    /// The pieces [`AuditFacts::parts`] gave, read back.
    pub(in crate::store) fn from_parts(head: Vec<u8>, tail: Vec<u8>) -> AuditFacts {
        AuditFacts { head, tail }
    }

    /// The canonical pieces of `f`'s entry (fields in sorted order, so
    /// serde_json's output is canonical JSON).
    pub fn new(f: &WebhookFacts) -> AuditFacts {
        #[derive(serde::Serialize)]
        struct Auth<'a> {
            key_index: Option<usize>,
            method: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Head<'a> {
            auth: Auth<'a>,
            body_sha256: &'a str,
            client: Option<String>,
            envelope_id: Option<&'a str>,
            event_id: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Tail<'a> {
            provider: &'a str,
            received_at: String,
            source: &'a str,
        }
        let inner = |v: Vec<u8>| v[1..v.len() - 1].to_vec();
        AuditFacts {
            head: inner(
                serde_json::to_vec(&Head {
                    auth: Auth {
                        key_index: f.key_index,
                        method: f.method,
                    },
                    body_sha256: f.body_sha256,
                    client: f.client.map(|c| c.to_string()),
                    envelope_id: f.envelope_id,
                    event_id: f.event_id,
                })
                .expect("serializes"),
            ),
            tail: inner(
                serde_json::to_vec(&Tail {
                    provider: f.provider,
                    received_at: crate::time::format_ms(f.received_ms),
                    source: f.source,
                })
                .expect("serializes"),
            ),
        }
    }

    /// The entry's data: the pieces around `"event_seq":N` (or
    /// `"original_event_seq":N` for a duplicate).
    pub(super) fn data(&self, key: &str, seq: u64, out: &mut Vec<u8>) {
        use std::io::Write as _;
        out.clear();
        out.push(b'{');
        out.extend_from_slice(&self.head);
        let _ = write!(out, ",\"{key}\":{seq},");
        out.extend_from_slice(&self.tail);
        out.push(b'}');
    }
}

/// Who asked for an admin action: the client's address and how it
/// authenticated (`admin_token`, or `none` on a listener without a token).
/// The admin API has one token; named tokens would add their name here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub client: Option<std::net::IpAddr>,
    pub credential: &'static str,
}

impl Actor {
    /// `client (credential)`, as quarantine decisions record who took them.
    pub fn label(&self) -> String {
        match self.client {
            Some(c) => format!("{c} ({})", self.credential),
            None => self.credential.to_owned(),
        }
    }

    fn json(&self) -> Value {
        serde_json::json!({
            "client": self.client.map(|c| c.to_string()),
            "credential": self.credential,
        })
    }
}

/// Adds `by` to an admin action's entry.
pub(super) fn with_actor(mut data: Value, by: Option<&Actor>) -> Value {
    if let Some(a) = by {
        data["by"] = a.json();
    }
    data
}

/// The chain's head as the writer keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    /// The next entry's sequence.
    pub next: u64,
    pub prev: Hash,
    /// The last entry a checkpoint signs (0: none).
    pub signed: u64,
    /// Checkpoints signed since open (for the metric).
    pub signings: u64,
}

impl Head {
    /// The head after the last stored entry.
    pub fn read(db: &redb::Database) -> Result<Head, StoreError> {
        let txn = db.begin_read()?;
        let t = txn.open_table(AUDIT)?;
        let signed = txn
            .open_table(CHECKPOINTS)?
            .last()?
            .map_or(0, |(k, _)| k.value());
        Ok(match t.last()? {
            Some((k, v)) => Head {
                next: k.value() + 1,
                prev: decode(v.value())?.hash(),
                signed,
                signings: 0,
            },
            None => Head {
                next: 1,
                prev: GENESIS,
                signed,
                signings: 0,
            },
        })
    }

    /// Appends one entry to `table`, and a signed checkpoint to `checkpoints`
    /// when its sequence is a multiple of `signing.every`.
    pub fn append(
        &mut self,
        table: &mut Table<u64, &[u8]>,
        checkpoints: &mut Table<u64, &[u8]>,
        signing: &Signing,
        kind: &str,
        at_ms: i64,
        data: Value,
    ) -> Result<(), StoreError> {
        let mut canon = Vec::with_capacity(256);
        crate::audit::chain::canonical_json(&data, &mut canon);
        self.append_canonical(table, checkpoints, signing, kind, at_ms, &canon)
    }

    /// [`Head::append`] with the data already canonical JSON (serde_json's
    /// output of a struct with its fields in sorted order and no floats).
    pub fn append_canonical(
        &mut self,
        table: &mut Table<u64, &[u8]>,
        checkpoints: &mut Table<u64, &[u8]>,
        signing: &Signing,
        kind: &str,
        at_ms: i64,
        data: &[u8],
    ) -> Result<(), StoreError> {
        let seq = self.next;
        let (hash, json) = crate::audit::chain::seal(seq, at_ms, kind, &self.prev, data);
        table.insert(seq, json.as_slice())?;
        self.prev = hash;
        self.next += 1;
        if seq.is_multiple_of(signing.every.max(1)) {
            self.sign(checkpoints, signing, at_ms)?;
        }
        Ok(())
    }

    /// Signs the head if an entry follows the last checkpoint (time-based
    /// checkpoints, shutdown, exports); returns the sequence signed.
    pub fn sign(
        &mut self,
        checkpoints: &mut Table<u64, &[u8]>,
        signing: &Signing,
        at_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        let seq = self.next - 1;
        if seq == 0 || seq <= self.signed {
            return Ok(None);
        }
        let c = sign(&signing.key, seq, &self.prev, at_ms);
        let json = serde_json::to_vec(&c).expect("checkpoints serialize");
        checkpoints.insert(seq, json.as_slice())?;
        self.signed = seq;
        self.signings += 1;
        Ok(Some(seq))
    }
}

/// Prunes entries past `audit.retention` (older than `cutoff_ms`) in one
/// transaction: up to the newest checkpoint that signs an entry older than
/// the cut-off, at most `max` entries past the current start (more when
/// checkpoints are further apart). That checkpoint stays as the signed
/// start of what remains; older checkpoints go. Returns the entries removed.
pub(super) fn prune(
    txn: &redb::WriteTransaction,
    cutoff_ms: i64,
    max: u64,
) -> Result<u64, StoreError> {
    let mut entries = txn.open_table(AUDIT)?;
    let mut checkpoints = txn.open_table(CHECKPOINTS)?;
    let Some(first) = entries.first()?.map(|(k, _)| k.value()) else {
        return Ok(0);
    };
    // The newest checkpoint old enough, within reach of this step (or the
    // first one past it, so sparse checkpoints still make progress).
    let mut anchor = None;
    for row in checkpoints.range(first..)? {
        let (k, v) = row?;
        let c: Checkpoint = serde_json::from_slice(v.value())
            .map_err(|e| StoreError::Db(format!("audit checkpoint {}: {e}", k.value())))?;
        if c.at_ms >= cutoff_ms {
            break;
        }
        // The entry the checkpoint signs must be past retention too.
        let old = entries
            .get(c.seq)?
            .map(|v| decode(v.value()).map(|e| e.at_ms < cutoff_ms))
            .transpose()?
            .unwrap_or(false);
        if !old {
            break;
        }
        if anchor.is_some() && c.seq > first.saturating_add(max) {
            break;
        }
        anchor = Some(c.seq);
    }
    let Some(anchor) = anchor else {
        return Ok(0);
    };
    // Entries are consecutive: first..=anchor go.
    entries.retain_in(..=anchor, |_, _| false)?;
    checkpoints.retain_in(..anchor, |_, _| false)?;
    Ok(anchor + 1 - first)
}

/// The entry of a Kafka acknowledgement.
pub(super) fn of_ack(a: &super::Ack) -> (&'static str, Value) {
    match a {
        super::Ack::Published {
            seq,
            topic,
            partition,
            offset,
        } => (
            "kafka.published",
            serde_json::json!({ "event_seq": seq, "topic": topic, "partition": partition, "offset": offset }),
        ),
        super::Ack::DeadLettered { seq, topic, reason } => (
            "kafka.dead_lettered",
            serde_json::json!({ "event_seq": seq, "topic": topic, "reason": reason }),
        ),
    }
}

/// The entry of an applied HTTP delivery change.
pub(super) fn of_http(op: &super::HttpOp) -> (&'static str, Value) {
    use super::{HttpOp, Next};
    match op {
        HttpOp::Attempted {
            seq,
            endpoint,
            attempt,
            next,
        } => {
            let mut d = serde_json::json!({
                "event_seq": seq,
                "endpoint": endpoint,
                "status": attempt.status,
                "latency_ms": attempt.latency_ms,
                "class": error_class(attempt.status),
                "error": attempt.error,
            });
            let kind = match next {
                Next::Delivered => "http.delivered",
                Next::Retry { .. } => "http.attempt_failed",
                Next::DeadLetter { reason } => {
                    d["reason"] = reason.clone().into();
                    "http.dead_lettered"
                }
            };
            (kind, d)
        }
        HttpOp::Replay { seq, endpoint } => (
            "admin.replay",
            serde_json::json!({ "event_seq": seq, "endpoint": endpoint }),
        ),
        HttpOp::Discard { seq, endpoint } => (
            "admin.discard",
            serde_json::json!({ "event_seq": seq, "endpoint": endpoint }),
        ),
        HttpOp::Purge { seq, endpoint } => (
            "admin.purge",
            serde_json::json!({ "event_seq": seq, "endpoint": endpoint }),
        ),
    }
}

/// The class of an attempt's outcome: `ok` (2xx), `rate_limited` (429),
/// `client_error` (other 4xx), `server_error` (5xx), `unexpected` (any
/// other status), `network` (no answer: refused, reset, timed out).
fn error_class(status: Option<u16>) -> &'static str {
    match status {
        None => "network",
        Some(200..=299) => "ok",
        Some(429) => "rate_limited",
        Some(400..=499) => "client_error",
        Some(500..=599) => "server_error",
        Some(_) => "unexpected",
    }
}

/// The entry of an applied envelope action.
pub(super) fn of_envelope_op(op: &super::EnvelopeOp) -> Value {
    use super::EnvelopeOp;
    match op {
        EnvelopeOp::Register {
            source,
            envelope_id,
            registration,
            ..
        } => {
            serde_json::json!({ "op": "register", "source": source, "envelope_id": envelope_id, "reference": registration.reference })
        }
        EnvelopeOp::Archive {
            source,
            envelope_id,
            sha256,
        } => {
            serde_json::json!({ "op": "archive", "source": source, "envelope_id": envelope_id, "document_sha256": sha256 })
        }
        EnvelopeOp::Remind {
            source,
            envelope_id,
        } => serde_json::json!({ "op": "remind", "source": source, "envelope_id": envelope_id }),
        EnvelopeOp::Deadline {
            source,
            envelope_id,
            deadline_ms,
        } => {
            serde_json::json!({ "op": "deadline", "source": source, "envelope_id": envelope_id, "deadline": crate::time::format_ms(*deadline_ms) })
        }
    }
}

fn decode(b: &[u8]) -> Result<Entry, StoreError> {
    serde_json::from_slice(b).map_err(|e| StoreError::Db(format!("audit entry: {e}")))
}

impl Store {
    /// Whether the audit log is written.
    pub fn auditing(&self) -> bool {
        self.inner.audit
    }

    /// The last entry's sequence (0: none).
    pub fn audit_head(&self) -> Result<u64, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let t = txn.open_table(AUDIT)?;
        Ok(t.last()?.map_or(0, |(k, _)| k.value()))
    }

    /// The last entry the Kafka copy holds (0: none).
    pub fn audit_copied(&self) -> Result<u64, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let meta = txn.open_table(super::tables::META)?;
        Ok(meta.get(COPIED)?.map_or(0, |g| g.value()))
    }

    /// Records that the Kafka copy holds every entry up to `seq` (with
    /// whatever else the writer commits).
    pub async fn set_audit_copied(&self, seq: u64) -> Result<(), StoreError> {
        self.call(|reply| super::Command::AuditCopied { seq, reply })
            .await
    }

    /// Entries from `from` as stored (their JSON), at most `limit`.
    pub fn audit_raw(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let t = txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        for row in t.range(from..)?.take(limit) {
            let (k, v) = row?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Signalled after a commit that appended audit entries.
    pub fn audit_appended(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.inner.audit_appended.clone()
    }

    /// Audit entries from sequence `from`, at most `limit`, in order. An
    /// entry that does not decode is an error naming it.
    pub fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let t = txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        for row in t.range(from..)?.take(limit) {
            let (k, v) = row?;
            out.push(
                decode(v.value())
                    .map_err(|e| StoreError::Db(format!("audit entry {}: {e}", k.value())))?,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(super) mod tests;
