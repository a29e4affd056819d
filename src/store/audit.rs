//! The audit log in the store: `audit_v1` (seq → the entry as JSON), appended
//! by the writer inside the transaction of the fact each entry records, so
//! there is never a fact without its entry nor an entry without its fact.
//! The writer keeps the chain's head (sequence, hash) in memory, read back
//! from the last entry at open; a failed commit puts it back.

use redb::{ReadableDatabase, ReadableTable, Table, TableDefinition};
use serde_json::Value;

use super::{Store, StoreError};
use crate::audit::chain::{Entry, GENESIS, Hash};
use crate::audit::checkpoint::{Checkpoint, key_id, sign};
use ed25519_dalek::VerifyingKey;

/// seq → [`Entry`] as JSON.
pub(crate) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_v1");
/// seq → the [`Checkpoint`] signing entry `seq`'s hash, as JSON.
pub(crate) const CHECKPOINTS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("audit_checkpoints_v1");

/// How the writer signs: the key and every how many entries.
#[derive(Clone)]
pub struct Signing {
    pub key: ed25519_dalek::SigningKey,
    pub every: u64,
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing")
            .field("key_id", &key_id(&self.key.verifying_key()))
            .field("every", &self.every)
            .finish()
    }
}

/// What the pipeline knows of a webhook that the audit entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFacts {
    /// SHA-256 of the raw body (hex).
    pub body_sha256: String,
    /// The verification method and the index of the key that matched.
    pub method: String,
    pub key_index: Option<usize>,
    /// The client's address (as `server.client_ip_header` says, else the peer).
    pub client: Option<std::net::IpAddr>,
}

/// The chain's head as the writer keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    /// The next entry's sequence.
    pub next: u64,
    pub prev: Hash,
}

impl Head {
    /// The head after the last stored entry.
    pub fn read(db: &redb::Database) -> Result<Head, StoreError> {
        let txn = db.begin_read()?;
        let t = txn.open_table(AUDIT)?;
        Ok(match t.last()? {
            Some((k, v)) => Head {
                next: k.value() + 1,
                prev: decode(v.value())?.hash(),
            },
            None => Head {
                next: 1,
                prev: GENESIS,
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
        let e = Entry {
            seq: self.next,
            at_ms,
            kind: kind.to_owned(),
            data,
            prev: self.prev,
        };
        let json = serde_json::to_vec(&e).expect("entries serialize");
        table.insert(e.seq, json.as_slice())?;
        self.prev = e.hash();
        self.next += 1;
        if e.seq.is_multiple_of(signing.every.max(1)) {
            let c = sign(&signing.key, e.seq, &self.prev, at_ms);
            let json = serde_json::to_vec(&c).expect("checkpoints serialize");
            checkpoints.insert(e.seq, json.as_slice())?;
        }
        Ok(())
    }
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

/// What `audit verify` found in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    /// The last entry's (sequence, hash); `None` for an empty log.
    pub head: Option<(u64, Hash)>,
    /// Signed checkpoints checked.
    pub checkpoints: usize,
    /// Entries after the last checkpoint (their chain holds, no signature
    /// covers them yet).
    pub unsigned_tail: u64,
}

/// Why `audit verify` failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "cannot open the store at {path}: {reason} (is the gateway still running? verify a stopped gateway's store, or an export)"
    )]
    Open { path: String, reason: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the chain is broken at {0}")]
    Broken(crate::audit::chain::Broken),
    #[error("checkpoint {seq}: {problem}")]
    Checkpoint { seq: u64, problem: String },
}

/// Re-computes the chain of the store in the directory `dir` (a stopped
/// gateway's; read only), entry by entry, and checks every checkpoint's
/// signature with one of `keys` and its head against the chain.
pub fn verify_dir(dir: &std::path::Path, keys: &[VerifyingKey]) -> Result<Verified, VerifyError> {
    let path = dir.join(super::DB_FILE);
    let open_err = |e: &dyn std::fmt::Display| VerifyError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    if !path.exists() {
        return Err(open_err(&"no such file"));
    }
    let db = redb::Database::open(&path).map_err(|e| open_err(&e))?;
    let txn = db.begin_read().map_err(|e| open_err(&e))?;
    let t = txn.open_table(AUDIT).map_err(StoreError::from)?;
    let mut signed = std::collections::BTreeMap::new();
    for row in txn
        .open_table(CHECKPOINTS)
        .map_err(StoreError::from)?
        .iter()
        .map_err(StoreError::from)?
    {
        let (k, v) = row.map_err(StoreError::from)?;
        let c: Checkpoint =
            serde_json::from_slice(v.value()).map_err(|e| VerifyError::Checkpoint {
                seq: k.value(),
                problem: format!("does not decode: {e}"),
            })?;
        signed.insert(k.value(), c);
    }
    // The hashes at the checkpoints' sequences, seen on the way.
    let mut at = std::collections::HashMap::new();
    let mut failed = None;
    let rows = t.iter().map_err(StoreError::from)?.map_while(|row| {
        let decoded = row.map_err(StoreError::from).and_then(|(k, v)| {
            decode(v.value()).map_err(|e| StoreError::Db(format!("entry {}: {e}", k.value())))
        });
        match decoded {
            Ok(e) => {
                if signed.contains_key(&e.seq) {
                    at.insert(e.seq, e.hash());
                }
                Some(e)
            }
            Err(e) => {
                failed = Some(e);
                None
            }
        }
    });
    let checked = crate::audit::chain::check(rows, (1, GENESIS));
    if let Some(e) = failed {
        return Err(e.into());
    }
    let ((last, hash), n) = checked.map_err(VerifyError::Broken)?;
    for (seq, c) in &signed {
        let Some(actual) = at.get(seq) else {
            return Err(VerifyError::Checkpoint {
                seq: *seq,
                problem: format!(
                    "signs an entry the chain does not have (it ends at {last}): entries were removed"
                ),
            });
        };
        if !keys.is_empty() {
            c.verify(keys, actual)
                .map_err(|b| VerifyError::Checkpoint {
                    seq: *seq,
                    problem: b.to_string(),
                })?;
        }
    }
    let covered = signed.keys().next_back().copied().unwrap_or(0);
    Ok(Verified {
        entries: n,
        head: (n > 0).then_some((last, hash)),
        checkpoints: signed.len(),
        unsigned_tail: if n > 0 { last - covered } else { 0 },
    })
}

impl Store {
    /// Whether the audit log is written.
    pub fn auditing(&self) -> bool {
        self.inner.audit
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
mod tests {
    use std::path::Path;

    use super::*;
    use crate::audit::chain::check;
    use crate::config::StoreConfig;
    use crate::store::NewEvent;
    use crate::time::Clock;

    fn open(dir: &Path) -> Store {
        let cfg = StoreConfig {
            path: dir.to_path_buf(),
            ..StoreConfig::default()
        };
        Store::open_full(&cfg, Clock::System, None, Some(signing())).unwrap()
    }

    fn signing() -> Signing {
        Signing {
            key: ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
            every: 2,
        }
    }

    fn keys() -> Vec<VerifyingKey> {
        vec![signing().key.verifying_key()]
    }

    fn event(id: &str) -> NewEvent {
        NewEvent {
            source: "ds".into(),
            id: id.into(),
            received_ms: 1_000,
            json: b"{}".to_vec(),
            topics: Vec::new(),
            endpoints: Vec::new(),
            envelope: id.into(),
            traceparent: None,
            facts: None,
            audit: Some(AuditFacts {
                body_sha256: "ab".repeat(32),
                method: "hmac_sha256".into(),
                key_index: Some(1),
                client: Some([127, 0, 0, 1].into()),
            }),
        }
    }

    #[tokio::test]
    async fn every_claim_has_one_entry_the_chain_holds_and_an_edit_shows() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        s.commit(vec![event("a"), event("b"), event("a")])
            .await
            .unwrap();
        // A failed commit writes no entry and leaves the head where it was.
        s.fail_next_commit();
        assert!(s.commit(vec![event("lost")]).await.is_err());
        s.close().await;
        drop(s);

        // Reopened: the chain goes on from the stored head.
        let s = open(dir.path());
        s.commit(vec![event("c")]).await.unwrap();
        let entries = s.audit_entries(1, 100).unwrap();
        let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "webhook.accepted",
                "webhook.accepted",
                "webhook.duplicate",
                "webhook.accepted"
            ]
        );
        assert_eq!(
            entries[2].data["original_event_seq"],
            entries[0].data["event_seq"]
        );
        assert_eq!(entries[1].data["body_sha256"], "ab".repeat(32));
        assert_eq!(entries[3].data["event_id"], "c");
        let ((last, _), n) = check(entries.clone(), (1, GENESIS)).unwrap();
        assert_eq!((last, n), (4, 4));
        s.close().await;
        drop(s);

        // One edited byte in entry 2, on disk: the chain breaks at entry 3.
        {
            let db = redb::Database::create(dir.path().join(super::super::DB_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(AUDIT).unwrap();
                let mut e = entries[1].clone();
                e.data["event_id"] = "B".into();
                t.insert(2, serde_json::to_vec(&e).unwrap().as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let s = open(dir.path());
        let broken = check(s.audit_entries(1, 100).unwrap(), (1, GENESIS)).unwrap_err();
        assert_eq!(broken.seq, 3);
        // The same from the files of the stopped gateway.
        s.close().await;
        drop(s);
        match verify_dir(dir.path(), &keys()) {
            Err(VerifyError::Broken(b)) => assert_eq!(b.seq, 3),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn verify_reads_a_stopped_gateways_store() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        s.commit(vec![event("a"), event("b")]).await.unwrap();
        s.close().await;
        drop(s);
        let v = verify_dir(dir.path(), &keys()).unwrap();
        assert_eq!(v.entries, 2);
        assert_eq!(v.head.unwrap().0, 2);
        assert_eq!((v.checkpoints, v.unsigned_tail), (1, 0));
        // Another key did not sign it.
        let other = [ed25519_dalek::SigningKey::from_bytes(&[6; 32]).verifying_key()];
        assert!(matches!(
            verify_dir(dir.path(), &other),
            Err(VerifyError::Checkpoint { seq: 2, .. })
        ));
        assert!(matches!(
            verify_dir(&dir.path().join("nope"), &keys()),
            Err(VerifyError::Open { .. })
        ));
    }
}
