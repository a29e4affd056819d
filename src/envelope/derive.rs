//! Derived events: what an envelope's change emits, as a normalized event
//! (`origin: "countersign"`, an `envelope.*` kind, the causing event's id)
//! with a deterministic id, so a replay or a provider's retry can never
//! produce a second one.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::event::{Auth, EventId, Kind, SCHEMA_VERSION, SignatureEvent};

use super::timers::{self, TimerKind};
use super::{Derived, Envelope};

/// The `auth.method` of derived events.
pub const METHOD: &str = "countersign";

/// What caused a derived event: a provider event, or an admin action.
#[derive(Clone, Copy, Debug)]
pub struct Cause<'a> {
    /// The causing event's id; `None` for a registration or an archive.
    pub event_id: Option<&'a str>,
    pub kind: Option<Kind>,
    pub occurred_at: Option<&'a str>,
    /// When the cause was received (RFC 3339).
    pub received_at: &'a str,
}

impl Derived {
    pub fn kind(&self) -> Kind {
        match self {
            Derived::InSigning => Kind::EnvelopeInSigning,
            Derived::AllSigned { .. } => Kind::EnvelopeAllSigned,
            Derived::Cancelled { .. } => Kind::EnvelopeCancelled,
            Derived::Archived { .. } => Kind::EnvelopeArchived,
            Derived::DocumentMismatch { .. } => Kind::EnvelopeDocumentMismatch,
            Derived::Anomaly { .. } => Kind::EnvelopeAnomaly,
            Derived::Due { timer, .. } => match timer.kind {
                TimerKind::Reminder => Kind::EnvelopeReminderDue,
                TimerKind::Overdue => Kind::EnvelopeOverdue,
                TimerKind::Escalated => Kind::EnvelopeEscalated,
            },
        }
    }

    fn payload(&self, env: &Envelope) -> Value {
        match self {
            Derived::InSigning => json!({}),
            Derived::AllSigned { by } => json!({ "completed_by": by }),
            Derived::Cancelled { reason } => json!({ "reason": reason }),
            Derived::Archived { sha256 } => json!({ "document_sha256": sha256 }),
            Derived::DocumentMismatch { expected, got } => {
                json!({ "expected_sha256": expected, "got_sha256": got })
            }
            Derived::Anomaly { what } => json!({ "anomaly": what }),
            Derived::Due { timer, deadline_ms } => {
                let pending: Vec<Value> = env
                    .pending_signers()
                    .into_iter()
                    .map(|s| json!({ "id": s.id, "email": s.email, "name": s.name, "state": s.state }))
                    .collect();
                let mut p = json!({
                    "due_at": crate::time::format_ms(timer.due_ms),
                    "manual": timer.slot == timers::MANUAL,
                    "pending_signers": pending,
                });
                if timer.kind == TimerKind::Reminder && timer.slot != timers::MANUAL {
                    p["reminder"] = json!(timer.slot);
                }
                if let Some(d) = deadline_ms {
                    p["deadline"] = json!(crate::time::format_ms(*d));
                }
                p
            }
        }
    }
}

/// `cs_` + 128 bits of sha256 over the envelope, the derived kind and (for
/// events that may happen more than once) what distinguishes them.
pub fn id(env: &Envelope, d: &Derived, cause: &Cause) -> EventId {
    let mut h = Sha256::new();
    for part in [
        "countersign",
        &env.source,
        &env.envelope_id,
        d.kind().as_str(),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    match d {
        Derived::Anomaly { what } => {
            h.update(cause.event_id.unwrap_or(what).as_bytes());
        }
        Derived::DocumentMismatch { got, .. } => h.update(got.as_bytes()),
        // Each (kind, slot, due time) once.
        Derived::Due { timer, .. } => {
            h.update(timer.slot.to_be_bytes());
            h.update(timer.due_ms.to_be_bytes());
        }
        _ => {}
    }
    EventId::derived(hex::encode(&h.finalize()[..16]))
}

/// The event `d` emits, carrying `env`'s block as of after the change.
pub fn event(env: &Envelope, d: &Derived, cause: &Cause) -> SignatureEvent {
    let mut payload = d.payload(env);
    if let (Some(kind), Some(obj)) = (cause.kind, payload.as_object_mut()) {
        obj.insert("cause_kind".into(), Value::String(kind.as_str().into()));
    }
    SignatureEvent {
        schema_version: SCHEMA_VERSION,
        id: id(env, d, cause),
        source: env.source.clone(),
        provider: env.provider.clone(),
        provider_event_type: d.kind().as_str().to_owned(),
        kind: d.kind(),
        envelope_id: Some(env.envelope_id.clone()),
        document_id: None,
        signer: None,
        occurred_at: cause.occurred_at.map(str::to_owned),
        received_at: cause.received_at.to_owned(),
        sandbox: None,
        auth: Auth {
            method: METHOD.to_owned(),
            key_index: None,
            covers_body: false,
        },
        payload,
        origin: Some("countersign".to_owned()),
        cause: cause.event_id.map(str::to_owned),
        envelope: Some(env.block()),
        quarantine: None,
    }
}
