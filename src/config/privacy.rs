//! `[privacy]` and the data-minimisation and plausibility shapes that
//! sources, endpoints and routes share: `redact` rules, a source's
//! `require` rules.

use serde::{Deserialize, Serialize};

use super::SecretRef;
use crate::event::Kind;

/// `[privacy]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// The HMAC-SHA-256 key of `mode = "hash"` redactions, as a secret
    /// reference (`env:`, `file:`). The same pepper gives the same hashes
    /// across restarts, so consumers can join on them. Needed when any rule
    /// hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pepper: Option<SecretRef>,
}

/// What a redaction does to the value at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactMode {
    /// The member (or array item) is removed.
    Remove,
    /// A short hint is kept: `j***@example.com`, `A***`.
    Mask,
    /// Replaced by the hex HMAC-SHA-256 of the value under `[privacy] pepper`.
    Hash,
}

impl RedactMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RedactMode::Remove => "remove",
            RedactMode::Mask => "mask",
            RedactMode::Hash => "hash",
        }
    }
}

/// One `redact` rule: a JSON pointer into the normalized event (`*` stands
/// for every item of an array or member of an object) and a mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactRule {
    pub path: String,
    pub mode: RedactMode,
}

/// One `require` entry of a source: a normalized field name for every kind,
/// or fields for the listed kinds only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Require {
    Field(String),
    Rule(RequireRule),
}

/// `{ kinds = ["completed"], fields = ["envelope_id", "signer.email"] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequireRule {
    pub fields: Vec<String>,
    /// Empty: every kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<Kind>,
}

impl Require {
    /// The fields and the kinds they are required for (empty: all).
    pub fn parts(&self) -> (&[String], &[Kind]) {
        match self {
            Require::Field(f) => (std::slice::from_ref(f), &[]),
            Require::Rule(r) => (&r.fields, &r.kinds),
        }
    }
}
