//! `[audit]`: the tamper-evident audit trail: one hash-chained entry per
//! fact, signed checkpoints, retention, and an optional copy on Kafka.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SecretRef;
use super::dur;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Write the audit log: one hash-chained entry per fact, in the
    /// transaction of the fact. Off by default.
    pub enabled: bool,
    /// The Ed25519 key that signs checkpoints: 64 hex digits (the 32-byte
    /// seed), as a secret reference (`env:`, `file:`). Needed when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<SecretRef>,
    /// A signed checkpoint every this many entries…
    pub checkpoint_every: u64,
    /// …and at least this often while entries come in (and at shutdown).
    #[serde(with = "dur")]
    pub checkpoint_interval: Duration,
    /// How long entries are kept, independent of `store.retention` (10
    /// years by default). Pruning stops at a signed checkpoint, which stays
    /// as the verifiable start of what remains.
    #[serde(with = "dur")]
    pub retention: Duration,
    /// Also publish every entry to this Kafka topic (key = the entry's
    /// sequence), so a copy lives on the cluster's replicated log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_topic: Option<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: false,
            signing_key: None,
            checkpoint_every: 1_000,
            checkpoint_interval: Duration::from_secs(60),
            retention: Duration::from_secs(3_652 * 86_400),
            kafka_topic: None,
        }
    }
}
