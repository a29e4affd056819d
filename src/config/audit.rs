//! `[audit]`: the tamper-evident audit trail (in progress: entries for
//! accepted and duplicate webhooks so far).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Write the audit log: one hash-chained entry per fact, in the
    /// transaction of the fact. Off by default.
    pub enabled: bool,
}
