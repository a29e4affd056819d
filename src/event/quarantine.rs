//! The `quarantined` block of an event that is authentic but failed its
//! source's plausibility checks (`schema`, `require`): stored and
//! deduplicated as usual, routed only to `quarantined = true` routes until a
//! person releases it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    /// What failed, in the order found.
    pub violations: Vec<Violation>,
    /// Who released it (`POST /v1/events/{id}/release`); absent while held.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub released_by: Option<String>,
    /// When it was released (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub released_at: Option<String>,
}

/// One failed check: where (a JSON pointer into the normalized event,
/// `/payload/...` for the provider payload) and what. Messages never quote
/// the offending value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub pointer: String,
    pub message: String,
}
