//! Envelopes: the signature as a process trigger. One [`Envelope`] per
//! (source, envelope id) holds its state (`open → in_signing → completed →
//! archived`, or `cancelled`), its signers (`pending → viewed → signed`, or
//! `declined`), its registration (the customer's `reference` and metadata,
//! the expected signers) and which derived events it has emitted.
//!
//! Pure: no I/O, no clock. The store applies events to envelopes in the
//! transaction that accepts them (see the store's `envelopes`); [`derive`] turns a
//! [`Derived`] into the `envelope.*` event countersign emits.
//!
//! The rules make the result independent of arrival order: every state only
//! moves forward (a join), each derived event is emitted when its condition
//! first holds and never again (the flags in [`Emitted`]), and an event that
//! contradicts a final state (`completed` after `cancelled`, a cancellation
//! after `completed`) is recorded as an anomaly and changes nothing.

pub mod derive;
mod machine;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timer_tests;
pub mod timers;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{EnvelopeBlock, EnvelopeState, Progress, SignerState, SignerStatus};

pub use machine::{ArchiveError, Step};

/// Why an envelope was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    Declined,
    Voided,
    Expired,
    Deleted,
}

/// What completed an envelope first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletedBy {
    /// The provider's `completed` event.
    Provider,
    /// Every expected signer of the registration signed.
    Signers,
}

/// An envelope.* event to emit.
#[derive(Clone, Debug, PartialEq)]
pub enum Derived {
    InSigning,
    AllSigned {
        by: CompletedBy,
    },
    Cancelled {
        reason: CancelReason,
    },
    Archived {
        sha256: String,
    },
    DocumentMismatch {
        expected: String,
        got: String,
    },
    Anomaly {
        what: String,
    },
    /// A timer fired (or a manual reminder): `envelope.reminder_due`,
    /// `envelope.overdue` or `envelope.escalated`.
    Due {
        timer: timers::Timer,
        deadline_ms: Option<i64>,
    },
}

/// Which once-only derived events an envelope has emitted. (Stored: false
/// flags are left out.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emitted {
    #[serde(default, skip_serializing_if = "is_false")]
    pub in_signing: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub all_signed: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub cancelled: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub archived: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A signer the registration expects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedSigner {
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
}

/// The mapping of an envelope to the customer's process
/// (`PUT /v1/envelopes/{source}/{envelope_id}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The internal process id (CRM, DMS, contract number).
    pub reference: String,
    /// Free JSON: contract value, term, product…
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub metadata: Option<Value>,
    /// Signers whose signatures complete the envelope.
    #[serde(default)]
    pub signers: Vec<ExpectedSigner>,
    /// SHA-256 (hex) of the document at send time, checked on archive.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub document_sha256: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deadline: Option<String>,
    /// Reminder offsets instead of the source's: `"3d"` after sending,
    /// `"-1d"` before the deadline.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reminders: Option<Vec<String>>,
    /// Grace past the deadline before `envelope.escalated`, instead of the
    /// source's.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub escalate_after: Option<String>,
}

/// One envelope as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub source: String,
    pub envelope_id: String,
    pub provider: String,
    pub state: EnvelopeState,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cancel_reason: Option<CancelReason>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub completed_by: Option<CompletedBy>,
    pub signers: Vec<SignerStatus>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub registration: Option<Registration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub archived_sha256: Option<String>,
    pub emitted: Emitted,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub anomalies: u32,
    /// The sequence numbers of its history entries in the store's envelope
    /// log, oldest first (at most `envelopes.max_history`, changes always).
    #[serde(default)]
    pub history: Vec<u64>,
    /// Events of this envelope countersign accepted.
    pub events: u64,
    /// The sequence number that created it (the listing's order).
    pub created_seq: u64,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Deadline, reminders, escalation.
    #[serde(default, skip_serializing_if = "timers::Timers::is_empty")]
    pub timers: timers::Timers,
}

impl Envelope {
    pub fn new(source: &str, envelope_id: &str, provider: &str, seq: u64, now_ms: i64) -> Self {
        Envelope {
            source: source.to_owned(),
            envelope_id: envelope_id.to_owned(),
            provider: provider.to_owned(),
            state: EnvelopeState::Open,
            cancel_reason: None,
            completed_by: None,
            signers: Vec::new(),
            registration: None,
            archived_sha256: None,
            emitted: Emitted::default(),
            anomalies: 0,
            history: Vec::new(),
            events: 0,
            created_seq: seq,
            created_ms: now_ms,
            updated_ms: now_ms,
            timers: timers::Timers::default(),
        }
    }

    pub fn reference(&self) -> Option<&str> {
        self.registration.as_ref().map(|r| r.reference.as_str())
    }

    pub fn progress(&self) -> Progress {
        let mut p = Progress::default();
        for s in &self.signers {
            p.expected += u32::from(s.expected);
            match s.state {
                SignerState::Pending => {}
                SignerState::Viewed => p.viewed += 1,
                SignerState::Signed => p.signed += 1,
                SignerState::Declined => p.declined += 1,
            }
        }
        p
    }

    /// The `envelope` block events carry.
    pub fn block(&self) -> EnvelopeBlock {
        EnvelopeBlock {
            state: self.state,
            reference: self.reference().map(str::to_owned),
            metadata: self.registration.as_ref().and_then(|r| r.metadata.clone()),
            progress: self.progress(),
            signers: self.signers.clone(),
        }
    }
}
