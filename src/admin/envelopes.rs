//! `/v1/envelopes`: registration (`PUT`), one envelope with its history
//! (`GET`), the listing, and the archive confirmation (`POST …/archived`).

use axum::body::Body;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::response::Response;
use http_body_util::{BodyExt, Limited};

use super::api::{
    ArchiveRequest, DeadlineRequest, DerivedRef, DocumentMismatch, EnvelopeList, EnvelopeView,
    TimerView,
};
use super::query::{self, limit, number, param};
use super::response::{self, AdminError};
use super::{Shared, blocking};
use crate::envelope::timers::{Offset, TimerKind};
use crate::envelope::{Envelope, Registration};
use crate::event::Kind;
use crate::store::{Actor, EnvelopeFilter, EnvelopeOp, EnvelopeOutcome, LogEntry};
use crate::time::{format_ms, parse_rfc3339_ms};

/// Most envelopes one list call returns.
pub const MAX_LIST: usize = 500;
const DEFAULT_LIST: usize = 50;
/// Longest `reference`.
pub const MAX_REFERENCE: usize = 200;

fn tracking(admin: &super::Admin) -> Result<(), AdminError> {
    if admin.store.tracking() {
        Ok(())
    } else {
        Err(AdminError::Conflict(
            "envelope tracking is off; set envelopes.enabled = true",
        ))
    }
}

/// Reads a JSON body of at most `max` bytes.
async fn json_body<T: serde::de::DeserializeOwned>(
    body: Body,
    max: usize,
) -> Result<T, AdminError> {
    let bytes = Limited::new(body, max)
        .collect()
        .await
        .map_err(|_| AdminError::TooLarge(max))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| AdminError::BadRequest(format!("invalid body: {e}")))
}

/// `h` as a document hash, or the error naming `key`.
fn sha256(key: &str, h: &str) -> Result<(), AdminError> {
    if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(AdminError::BadRequest(format!(
            "{key} `{h}` is not a SHA-256 (64 hex digits)"
        )))
    }
}

/// An applied action's envelope and the derived events it emitted.
type Applied = (Box<Envelope>, Vec<(Kind, String)>);

/// What an action applied; the refusals as the API's errors.
fn applied(outcome: EnvelopeOutcome) -> Result<Applied, AdminError> {
    match outcome {
        EnvelopeOutcome::Done { envelope, derived } => Ok((envelope, derived)),
        EnvelopeOutcome::NotFound => Err(AdminError::NotFound("no such envelope")),
        EnvelopeOutcome::Refused(e) => Err(AdminError::State(e.to_string())),
        EnvelopeOutcome::Final(state) => Err(AdminError::State(format!(
            "the envelope is {}: it has no deadline or reminders any more",
            state.as_str()
        ))),
    }
}

/// Applies `op` and answers 200 with the envelope and what it emitted.
async fn answer(admin: &super::Admin, op: EnvelopeOp, by: Actor) -> Result<Response, AdminError> {
    let (envelope, derived) = applied(admin.store.envelope_op(op, Some(by)).await?)?;
    Ok(response::ok(view(&envelope, &derived, Vec::new())))
}

/// The checks a registration passes before anything is written.
fn check(reg: &Registration, max_signers: usize) -> Result<(), AdminError> {
    let bad = |m: String| Err(AdminError::BadRequest(m));
    if reg.reference.trim().is_empty() || reg.reference.len() > MAX_REFERENCE {
        return bad(format!("reference must be 1 to {MAX_REFERENCE} bytes"));
    }
    if reg.signers.len() > max_signers {
        return bad(format!(
            "{} signers; at most {max_signers} (envelopes.max_signers)",
            reg.signers.len()
        ));
    }
    for (i, s) in reg.signers.iter().enumerate() {
        if s.id.is_none() && s.email.is_none() {
            return bad(format!("signers[{i}] needs an id or an email"));
        }
    }
    if let Some(h) = reg.document_sha256.as_deref() {
        sha256("document_sha256", h)?;
    }
    if let Some(d) = reg
        .deadline
        .as_deref()
        .filter(|d| parse_rfc3339_ms(d).is_none())
    {
        return bad(format!(
            "deadline `{d}` is not an RFC 3339 time (e.g. 2026-12-31T17:00:00Z)"
        ));
    }
    for (i, r) in reg.reminders.iter().flatten().enumerate() {
        if let Err(e) = Offset::parse(r) {
            return bad(format!("reminders[{i}]: {e}"));
        }
    }
    if let Some(e) = reg.escalate_after.as_deref()
        && humantime::parse_duration(e).is_err()
    {
        return bad(format!(
            "escalate_after `{e}` is not a duration (e.g. \"7d\")"
        ));
    }
    Ok(())
}

/// `POST /v1/envelopes/{source}/{envelope_id}/remind`: emits
/// `envelope.reminder_due` now (`manual: true`, the signers still pending);
/// 409 once the envelope is completed, cancelled or archived.
pub async fn remind(
    State(admin): Shared,
    Extension(by): Extension<Actor>,
    Path((source, envelope_id)): Path<(String, String)>,
) -> Result<Response, AdminError> {
    tracking(&admin)?;
    let op = EnvelopeOp::Remind {
        source,
        envelope_id,
    };
    answer(&admin, op, by).await
}

/// `POST /v1/envelopes/{source}/{envelope_id}/deadline` with
/// `{"deadline": "<RFC 3339>"}`: moves the deadline and reschedules the
/// timers that hang on it (overdue, escalation, reminders before it); a
/// timer already fired for the old deadline stays fired, the new ones fire
/// in their turn.
pub async fn deadline(
    State(admin): Shared,
    Extension(by): Extension<Actor>,
    Path((source, envelope_id)): Path<(String, String)>,
    body: Body,
) -> Result<Response, AdminError> {
    tracking(&admin)?;
    let req: DeadlineRequest = json_body(body, 4096).await?;
    let deadline_ms = parse_rfc3339_ms(&req.deadline).ok_or_else(|| {
        AdminError::BadRequest(format!(
            "deadline `{}` is not an RFC 3339 time (e.g. 2026-12-31T17:00:00Z)",
            req.deadline
        ))
    })?;
    let op = EnvelopeOp::Deadline {
        source,
        envelope_id,
        deadline_ms,
    };
    answer(&admin, op, by).await
}

/// `PUT /v1/envelopes/{source}/{envelope_id}`: idempotent; 200 with the
/// envelope (and the derived events the registration emitted).
pub async fn register(
    State(admin): Shared,
    Extension(by): Extension<Actor>,
    Path((source, envelope_id)): Path<(String, String)>,
    body: Body,
) -> Result<Response, AdminError> {
    tracking(&admin)?;
    let provider = admin
        .sources
        .get(&source)
        .cloned()
        .ok_or(AdminError::NotFound("no such source"))?;
    check_id(&envelope_id)?;
    let registration: Registration =
        json_body(body, admin.envelopes.max_registration_bytes).await?;
    check(&registration, admin.envelopes.max_signers)?;
    let op = EnvelopeOp::Register {
        source,
        provider,
        envelope_id,
        registration,
    };
    answer(&admin, op, by).await
}

fn check_id(id: &str) -> Result<(), AdminError> {
    if id.is_empty() || id.len() > crate::event::MAX_EVENT_ID_LEN {
        return Err(AdminError::BadRequest(
            "envelope id must be 1 to 200 bytes".into(),
        ));
    }
    Ok(())
}

/// `GET /v1/envelopes/{source}/{envelope_id}`: the envelope with its history.
pub async fn get(
    State(admin): Shared,
    Path((source, envelope_id)): Path<(String, String)>,
) -> Result<Response, AdminError> {
    tracking(&admin)?;
    blocking(move || match admin.store.envelope(&source, &envelope_id)? {
        Some((env, history)) => Ok(response::ok(view(&env, &[], history))),
        None => Err(AdminError::NotFound("no such envelope")),
    })
    .await
}

/// `GET /v1/envelopes?state=&source=&reference=&q=&limit=&before=`: newest
/// first. `reference` is exact; `q` is a case-insensitive part of the
/// envelope id, the reference, or a signer's e-mail address or name. A page
/// may hold fewer than `limit` (a bounded scan): go on while `next_before`
/// is set.
pub async fn list(State(admin): Shared, RawQuery(query): RawQuery) -> Result<Response, AdminError> {
    tracking(&admin)?;
    blocking(move || {
        let q = query.as_deref();
        let limit = limit(q, DEFAULT_LIST, MAX_LIST)?;
        let text = param(q, "q").filter(|t| !t.trim().is_empty());
        if text.as_ref().is_some_and(|t| t.len() > MAX_REFERENCE) {
            return Err(AdminError::BadRequest(format!(
                "`q` must be at most {MAX_REFERENCE} bytes"
            )));
        }
        let filter = EnvelopeFilter {
            state: query::state(q)?,
            source: param(q, "source"),
            reference: param(q, "reference"),
            text: text.map(|t| t.trim().to_owned()),
        };
        let page = admin
            .store
            .envelopes(&filter, limit, number(q, "before")?)?;
        Ok(response::ok(EnvelopeList {
            envelopes: page
                .envelopes
                .iter()
                .map(|e| view(e, &[], Vec::new()))
                .collect(),
            next_before: page.next_before,
            log_head: page.log_head,
        }))
    })
    .await
}

/// `POST /v1/envelopes/{source}/{envelope_id}/archived` with
/// `{"document_sha256": "…"}`: `completed → archived`; a hash other than the
/// registered one emits `envelope.document_mismatch` and answers 409.
pub async fn archived(
    State(admin): Shared,
    Extension(by): Extension<Actor>,
    Path((source, envelope_id)): Path<(String, String)>,
    body: Body,
) -> Result<Response, AdminError> {
    tracking(&admin)?;
    let req: ArchiveRequest = json_body(body, 4096).await?;
    sha256("document_sha256", &req.document_sha256)?;
    let got = req.document_sha256.to_ascii_lowercase();
    let op = EnvelopeOp::Archive {
        source,
        envelope_id,
        sha256: req.document_sha256,
    };
    let (envelope, derived) = applied(admin.store.envelope_op(op, Some(by)).await?)?;
    let v = view(&envelope, &derived, Vec::new());
    match derived
        .iter()
        .find(|(k, _)| *k == Kind::EnvelopeDocumentMismatch)
    {
        Some((_, id)) => {
            let expected = envelope
                .registration
                .as_ref()
                .and_then(|r| r.document_sha256.as_deref())
                .unwrap_or_default()
                .to_ascii_lowercase();
            Ok(response::conflict(DocumentMismatch {
                error: "document_mismatch".into(),
                expected_sha256: expected,
                got_sha256: got,
                event_id: id.clone(),
                envelope: v,
            }))
        }
        None => Ok(response::ok(v)),
    }
}

/// `v` as its API mirror type: the same JSON shape, with names for enums
/// (a unit test checks every mirror).
fn mirror<T: serde::Serialize, U: serde::de::DeserializeOwned>(v: &T) -> U {
    serde_json::to_value(v)
        .and_then(serde_json::from_value)
        .expect("the API type mirrors the stored one")
}

/// An enum's serde name.
fn name<T: serde::Serialize>(v: &T) -> String {
    mirror(v)
}

/// An envelope as the API shows it.
pub fn view(e: &Envelope, derived: &[(Kind, String)], history: Vec<LogEntry>) -> EnvelopeView {
    let emitted = [
        (e.emitted.in_signing, Kind::EnvelopeInSigning),
        (e.emitted.all_signed, Kind::EnvelopeAllSigned),
        (e.emitted.cancelled, Kind::EnvelopeCancelled),
        (e.emitted.archived, Kind::EnvelopeArchived),
    ];
    EnvelopeView {
        source: e.source.clone(),
        envelope_id: e.envelope_id.clone(),
        provider: e.provider.clone(),
        state: e.state.as_str().into(),
        cancel_reason: e.cancel_reason.as_ref().map(name),
        completed_by: e.completed_by.as_ref().map(name),
        registration: e.registration.as_ref().map(mirror),
        archived_sha256: e.archived_sha256.clone(),
        progress: mirror(&e.progress()),
        signers: e.signers.iter().map(mirror).collect(),
        emitted: emitted
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, k)| k.as_str().to_owned())
            .collect(),
        anomalies: e.anomalies,
        events: e.events,
        created_at: format_ms(e.created_ms),
        updated_at: format_ms(e.updated_ms),
        sequence: e.created_seq,
        deadline: e
            .timers
            .pending
            .iter()
            .find(|t| t.kind == TimerKind::Overdue)
            .map(|t| t.due_ms)
            // Without the source's policy: a set or registered deadline.
            .or_else(|| e.deadline_ms(&Default::default()))
            .map(format_ms),
        timers: e
            .timers
            .pending
            .iter()
            .map(|t| TimerView {
                kind: t.kind.as_str().into(),
                reminder: (t.kind == TimerKind::Reminder).then_some(t.slot),
                due_at: format_ms(t.due_ms),
            })
            .collect(),
        derived: derived
            .iter()
            .map(|(k, id)| DerivedRef {
                kind: k.as_str().into(),
                id: id.clone(),
            })
            .collect(),
        history: history.iter().map(mirror).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{ExpectedSigner, Registration};
    use crate::event::{Kind, Signer};

    /// Every mirror converts: an envelope with every field set, and its history.
    #[test]
    fn views_mirror_the_stored_types() {
        let mut e = Envelope::new("ds", "env-1", "docusign", 7, 0);
        e.register(
            Registration {
                reference: "CRM-1".into(),
                metadata: Some(serde_json::json!({"value": 1200})),
                signers: vec![ExpectedSigner {
                    email: Some("a@example.com".into()),
                    order: Some(1),
                    ..ExpectedSigner::default()
                }],
                document_sha256: Some("ab".repeat(32)),
                deadline: Some("2026-12-31T17:00:00Z".into()),
                ..Registration::default()
            },
            10,
        );
        let signer = Signer {
            email: Some("a@example.com".into()),
            ..Signer::default()
        };
        e.apply(Kind::SignerCompleted, Some(&signer), 10);
        let other = Signer {
            id: Some("7".into()),
            ..Signer::default()
        };
        e.apply(Kind::Viewed, Some(&other), 10);
        e.apply(Kind::Voided, None, 10);
        let v = view(&e, &[(Kind::EnvelopeAllSigned, "cs_x".into())], Vec::new());
        assert_eq!(v.state, "completed");
        assert_eq!(v.completed_by.as_deref(), Some("signers"));
        assert_eq!(v.signers[0].state, "signed");
        assert!(v.signers[0].expected);
        assert_eq!(v.signers[1].state, "viewed");
        assert!(!v.signers[1].expected, "seen in events only");
        assert_eq!(v.progress.signed, 1);
        assert_eq!(v.anomalies, 1);
        assert_eq!(v.emitted, ["envelope.in_signing", "envelope.all_signed"]);
        assert_eq!(v.registration.unwrap()["reference"], "CRM-1");
    }
}
