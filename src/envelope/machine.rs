//! The transitions: an event, a registration or an archive confirmation
//! applied to an [`Envelope`], returning what changed and what to emit.

use crate::event::{EnvelopeState, Kind, Signer, SignerState, SignerStatus};

use super::{CancelReason, CompletedBy, Derived, Envelope, Registration};

/// One signer's change.
#[derive(Clone, Debug, PartialEq)]
pub struct SignerChange {
    /// Index into `Envelope::signers`.
    pub index: usize,
    /// `None`: the signer was first seen now.
    pub from: Option<SignerState>,
    pub to: SignerState,
}

/// What one application changed, and the derived events it emits (in order).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub from: EnvelopeState,
    pub to: EnvelopeState,
    pub signer: Option<SignerChange>,
    pub derived: Vec<Derived>,
}

impl Step {
    pub fn at(state: EnvelopeState) -> Step {
        Step {
            from: state,
            to: state,
            signer: None,
            derived: Vec::new(),
        }
    }

    /// Whether anything moved: the state, a signer, or an event to emit.
    pub fn changed(&self) -> bool {
        self.from != self.to
            || self.signer.as_ref().is_some_and(|s| s.from != Some(s.to))
            || !self.derived.is_empty()
    }
}

/// Why an archive confirmation was refused (nothing changed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    #[error("the envelope is {0}, not completed; only a completed envelope can be archived")]
    NotCompleted(&'static str),
    #[error("the envelope is already archived with another document (sha256 {0})")]
    AlreadyArchived(String),
}

/// Whether `kind` shows the envelope went out for signing.
fn signing_evidence(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Sent
            | Kind::Viewed
            | Kind::SignerCompleted
            | Kind::Completed
            | Kind::Declined
            | Kind::Reassigned
            | Kind::Reminder
            | Kind::DeliveryFailed
            | Kind::AuthFailed
    )
}

fn cancel_reason(kind: Kind) -> Option<CancelReason> {
    match kind {
        Kind::Declined => Some(CancelReason::Declined),
        Kind::Voided => Some(CancelReason::Voided),
        Kind::Expired => Some(CancelReason::Expired),
        Kind::Deleted => Some(CancelReason::Deleted),
        _ => None,
    }
}

/// The signer state an event of `kind` reports, for events that name one.
fn signer_target(kind: Kind) -> Option<SignerState> {
    match kind {
        Kind::Viewed => Some(SignerState::Viewed),
        Kind::SignerCompleted => Some(SignerState::Signed),
        Kind::Declined => Some(SignerState::Declined),
        Kind::Sent | Kind::Reminder | Kind::AuthFailed | Kind::DeliveryFailed => {
            Some(SignerState::Pending)
        }
        _ => None,
    }
}

/// The join of two signer states: `signed` and `declined` are final.
fn join(old: SignerState, new: SignerState) -> SignerState {
    match (old, new) {
        (SignerState::Signed | SignerState::Declined, _) => old,
        (_, SignerState::Declined) => SignerState::Declined,
        _ => old.max(new),
    }
}

fn same(a: &Option<String>, b: &Option<String>, fold: bool) -> bool {
    match (a, b) {
        (Some(a), Some(b)) if fold => a.eq_ignore_ascii_case(b),
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Whether a known signer is the one an event or a registration names: the
/// same id, or the same email (case-insensitive); by name only when neither
/// side has an id or an email.
fn is(
    known: &SignerStatus,
    id: &Option<String>,
    email: &Option<String>,
    name: &Option<String>,
) -> bool {
    if same(&known.id, id, false) || same(&known.email, email, true) {
        return true;
    }
    let anonymous = |i: &Option<String>, e: &Option<String>| i.is_none() && e.is_none();
    anonymous(&known.id, &known.email) && anonymous(id, email) && same(&known.name, name, false)
}

fn fill(slot: &mut Option<String>, v: &Option<String>) {
    if slot.is_none() {
        slot.clone_from(v);
    }
}

impl Envelope {
    /// Applies one provider event of `kind` (about `signer`, if it names one).
    pub fn apply(&mut self, kind: Kind, signer: Option<&Signer>, max_signers: usize) -> Step {
        let mut step = Step::at(self.state);
        if let (Some(target), Some(s)) = (signer_target(kind), signer) {
            step.signer = self.signer_event(s, target, max_signers);
        }
        if signing_evidence(kind) {
            self.in_signing(&mut step.derived);
        }
        if kind == Kind::Completed {
            match self.state {
                EnvelopeState::Open | EnvelopeState::InSigning => {
                    self.complete(CompletedBy::Provider, &mut step.derived)
                }
                EnvelopeState::Completed | EnvelopeState::Archived => {}
                EnvelopeState::Cancelled => self.anomaly("completed after cancelled", &mut step),
            }
        } else if let Some(reason) = cancel_reason(kind) {
            match self.state {
                EnvelopeState::Open | EnvelopeState::InSigning => {
                    self.state = EnvelopeState::Cancelled;
                    self.cancel_reason = Some(reason);
                    if !self.emitted.cancelled {
                        self.emitted.cancelled = true;
                        step.derived.push(Derived::Cancelled { reason });
                    }
                }
                EnvelopeState::Cancelled => {}
                EnvelopeState::Completed | EnvelopeState::Archived => {
                    let what = format!("{kind} after {}", self.state.as_str());
                    self.anomaly(&what, &mut step)
                }
            }
        } else {
            self.check_signers(&mut step.derived);
        }
        step.to = self.state;
        step
    }

    /// Registers (or re-registers: a PUT replaces) the mapping to the
    /// customer's process. Signers already seen in events are matched by id or
    /// email; the envelope completes at once if every expected signer signed.
    pub fn register(&mut self, reg: Registration, max_signers: usize) -> Step {
        let mut step = Step::at(self.state);
        for s in &mut self.signers {
            s.expected = false;
        }
        for r in &reg.signers {
            let found = self
                .signers
                .iter()
                .position(|k| is(k, &r.id, &r.email, &r.name));
            let index = match found {
                Some(i) => i,
                None if self.signers.len() < max_signers => {
                    self.signers.push(SignerStatus {
                        state: SignerState::Pending,
                        ..SignerStatus::default()
                    });
                    self.signers.len() - 1
                }
                None => continue,
            };
            let k = &mut self.signers[index];
            k.expected = true;
            fill(&mut k.id, &r.id);
            fill(&mut k.email, &r.email);
            if r.name.is_some() {
                k.name.clone_from(&r.name);
            }
            if r.role.is_some() {
                k.role.clone_from(&r.role);
            }
            k.order = r.order.or(k.order);
        }
        self.registration = Some(reg);
        self.check_signers(&mut step.derived);
        step.to = self.state;
        step
    }

    /// The archive confirmed the signed document with this SHA-256 (hex).
    pub fn archive(&mut self, sha256: &str) -> Result<Step, ArchiveError> {
        let mut step = Step::at(self.state);
        let sha256 = sha256.to_ascii_lowercase();
        match self.state {
            EnvelopeState::Archived => {
                let was = self.archived_sha256.clone().unwrap_or_default();
                return if was == sha256 {
                    Ok(step)
                } else {
                    Err(ArchiveError::AlreadyArchived(was))
                };
            }
            EnvelopeState::Completed => {}
            other => return Err(ArchiveError::NotCompleted(other.as_str())),
        }
        let expected = self
            .registration
            .as_ref()
            .and_then(|r| r.document_sha256.as_deref())
            .map(str::to_ascii_lowercase);
        match expected {
            Some(expected) if expected != sha256 => {
                step.derived.push(Derived::DocumentMismatch {
                    expected,
                    got: sha256,
                });
            }
            _ => {
                self.state = EnvelopeState::Archived;
                self.archived_sha256 = Some(sha256.clone());
                if !self.emitted.archived {
                    self.emitted.archived = true;
                    step.derived.push(Derived::Archived { sha256 });
                }
            }
        }
        step.to = self.state;
        Ok(step)
    }

    fn in_signing(&mut self, derived: &mut Vec<Derived>) {
        if self.state == EnvelopeState::Open {
            self.state = EnvelopeState::InSigning;
        }
        if !self.emitted.in_signing {
            self.emitted.in_signing = true;
            derived.push(Derived::InSigning);
        }
    }

    fn complete(&mut self, by: CompletedBy, derived: &mut Vec<Derived>) {
        self.in_signing(derived);
        self.state = EnvelopeState::Completed;
        self.completed_by.get_or_insert(by);
        if !self.emitted.all_signed {
            self.emitted.all_signed = true;
            derived.push(Derived::AllSigned { by });
        }
    }

    fn anomaly(&mut self, what: &str, step: &mut Step) {
        self.anomalies = self.anomalies.saturating_add(1);
        step.derived.push(Derived::Anomaly {
            what: what.to_owned(),
        });
    }

    /// Completes a registered envelope whose expected signers all signed.
    fn check_signers(&mut self, derived: &mut Vec<Derived>) {
        let open = matches!(self.state, EnvelopeState::Open | EnvelopeState::InSigning);
        let mut expected = self.signers.iter().filter(|s| s.expected).peekable();
        let any = expected.peek().is_some();
        if open && any && expected.all(|s| s.state == SignerState::Signed) {
            self.complete(CompletedBy::Signers, derived);
        }
    }

    /// Moves the signer an event names (adding it if new and there is room).
    fn signer_event(
        &mut self,
        s: &Signer,
        target: SignerState,
        max_signers: usize,
    ) -> Option<SignerChange> {
        let found = self
            .signers
            .iter()
            .position(|k| is(k, &s.id, &s.email, &s.name));
        let (index, from) = match found {
            Some(i) => (i, Some(self.signers[i].state)),
            None if self.signers.len() < max_signers => {
                self.signers.push(SignerStatus {
                    state: SignerState::Pending,
                    ..SignerStatus::default()
                });
                (self.signers.len() - 1, None)
            }
            None => return None,
        };
        let k = &mut self.signers[index];
        fill(&mut k.id, &s.id);
        fill(&mut k.email, &s.email);
        fill(&mut k.name, &s.name);
        fill(&mut k.role, &s.role);
        k.state = join(from.unwrap_or(SignerState::Pending), target);
        Some(SignerChange {
            index,
            from,
            to: k.state,
        })
    }
}
