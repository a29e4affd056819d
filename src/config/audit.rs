//! `[audit]`: the tamper-evident audit trail (in progress: entries for
//! accepted and duplicate webhooks, signed checkpoints).

use serde::{Deserialize, Serialize};

use super::SecretRef;

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
    /// A signed checkpoint every this many entries.
    pub checkpoint_every: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: false,
            signing_key: None,
            checkpoint_every: 1_000,
        }
    }
}
