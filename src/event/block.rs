//! The `envelope` block events carry: an envelope's state, its signers'
//! progress and its registration's mapping (data only; the state machine is
//! `envelope`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where an envelope is: `open → in_signing → completed → archived`, or
/// `cancelled`. Only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeState {
    Open,
    InSigning,
    Completed,
    Archived,
    Cancelled,
}

impl EnvelopeState {
    /// Open or in signing: not completed, cancelled or archived (only such
    /// envelopes have deadlines and reminders).
    pub fn is_live(self) -> bool {
        matches!(self, EnvelopeState::Open | EnvelopeState::InSigning)
    }

    pub const ALL: [EnvelopeState; 5] = [
        EnvelopeState::Open,
        EnvelopeState::InSigning,
        EnvelopeState::Completed,
        EnvelopeState::Archived,
        EnvelopeState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EnvelopeState::Open => "open",
            EnvelopeState::InSigning => "in_signing",
            EnvelopeState::Completed => "completed",
            EnvelopeState::Archived => "archived",
            EnvelopeState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<EnvelopeState> {
        EnvelopeState::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where one signer is: `pending → viewed → signed`, or `declined`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SignerState {
    #[default]
    Pending,
    Viewed,
    Signed,
    Declined,
}

/// One signer of an envelope as events and the registration know them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SignerStatus {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub order: Option<u32>,
    /// Named by the registration (their signatures complete the envelope);
    /// absent when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expected: bool,
    pub state: SignerState,
}

/// Counts of an envelope's signers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Signers the registration expects (0 when unregistered).
    pub expected: u32,
    /// Signers known (expected or seen in events) who signed.
    pub signed: u32,
    pub viewed: u32,
    pub declined: u32,
}

/// The `envelope` block of an event: state, signers' progress and the
/// registration's mapping to the customer's process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeBlock {
    pub state: EnvelopeState,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub metadata: Option<Value>,
    pub progress: Progress,
    pub signers: Vec<SignerStatus>,
}
