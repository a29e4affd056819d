//! Documenso. Auth: `X-Documenso-Secret`, a plain shared secret (no MAC). No event
//! id, and the top-level `createdAt` changes per attempt, so the id is derived from
//! the envelope, the event and a digest of `payload` (the document's state).

use serde_json::Value;

use super::{Draft, Malformed, digest, event_type_at, require_object, str_at, time_at};
use crate::event::Kind;
use crate::verify::Scheme;

const KINDS: &[(&str, Kind)] = &[
    ("DOCUMENT_CREATED", Kind::Created),
    ("DOCUMENT_SENT", Kind::Sent),
    ("DOCUMENT_OPENED", Kind::Viewed),
    ("DOCUMENT_SIGNED", Kind::SignerCompleted),
    ("DOCUMENT_RECIPIENT_COMPLETED", Kind::SignerCompleted),
    ("DOCUMENT_COMPLETED", Kind::Completed),
    ("DOCUMENT_REJECTED", Kind::Declined),
    ("DOCUMENT_RECIPIENT_REJECTED", Kind::Declined),
    ("DOCUMENT_CANCELLED", Kind::Voided),
    ("RECIPIENT_EXPIRED", Kind::Expired),
    ("DOCUMENT_REMINDER_SENT", Kind::Reminder),
    ("DOCUMENT_DELETED", Kind::Deleted),
];

fn normalize(v: Value) -> Result<Draft, Malformed> {
    require_object(&v)?;
    let event = event_type_at(&v, &["event"])?;
    let inner = v.get("payload").cloned().unwrap_or(Value::Null);
    let envelope = str_at(&inner, &["envelopeId"]).or_else(|| str_at(&inner, &["id"]));
    let mut d = Draft::derived(KINDS, event.clone(), envelope, &[Some(digest(&inner))]);
    if let Some([r]) = inner
        .get("recipients")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        d.signer.id = str_at(r, &["id"]);
        d.signer.email = str_at(r, &["email"]);
        d.signer.name = str_at(r, &["name"]);
        d.signer.role = str_at(r, &["role"]);
    }
    d.occurred_ms = time_at(&inner, &["updatedAt"]);
    d.payload = v;
    Ok(d)
}

/// Documenso.
pub(super) struct Documenso;

impl super::Behaviour for Documenso {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::SharedSecretHeader {
            header: "x-documenso-secret",
        })
    }

    fn normalize(&self, ctx: &super::Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(super::json(ctx)?)?])
    }

    fn secrets_hint(&self) -> &'static str {
        "list the Documenso webhook secret in secrets"
    }
}
