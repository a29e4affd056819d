//! PandaDoc. Auth: `?signature=<hex>` HMAC-SHA256 of the body. The body is a JSON
//! array of `{event, data}`; each element becomes one event. Event id:
//! derived from the signed element (the `X-PandaDoc-Webhook-Event-Id` header is
//! not signed, so it cannot name an event). State changes are typed
//! `event:status`.

use serde_json::Value;

use super::{Ctx, Draft, IdSource, Malformed, digest, kind_of, str_at, time_at};
use crate::event::Kind;
use crate::verify::Scheme;

const KINDS: &[(&str, Kind)] = &[
    ("document_state_changed:document.draft", Kind::Created),
    ("document_state_changed:document.sent", Kind::Sent),
    ("document_state_changed:document.viewed", Kind::Viewed),
    ("document_state_changed:document.completed", Kind::Completed),
    ("document_state_changed:document.declined", Kind::Declined),
    ("document_state_changed:document.rejected", Kind::Declined),
    ("document_state_changed:document.voided", Kind::Voided),
    ("document_state_changed:document.cancelled", Kind::Voided),
    ("document_state_changed:document.expired", Kind::Expired),
    ("recipient_completed", Kind::SignerCompleted),
    ("document_updated", Kind::Updated),
    ("document_section_added", Kind::Updated),
    ("document_deleted", Kind::Deleted),
    ("document_creation_failed", Kind::Error),
    ("document_completed_pdf_ready", Kind::DocumentReady),
];

fn normalize(v: Value) -> Result<Vec<Draft>, Malformed> {
    let Value::Array(items) = v else {
        return Err(Malformed::new("PandaDoc payload must be a JSON array"));
    };
    if items.is_empty() {
        return Err(Malformed::new("PandaDoc payload holds no event"));
    }
    // `X-PandaDoc-Webhook-Event-Id` is not covered by the signature (which
    // signs the body only): ids are derived from the signed body, so one body
    // replayed under other header ids is still the same events.
    items.into_iter().map(one).collect()
}

fn one(item: Value) -> Result<Draft, Malformed> {
    let event = str_at(&item, &["event"]).ok_or_else(|| Malformed::new("event missing"))?;
    let status = str_at(&item, &["data", "status"]);
    let event_type = match (&*event, &status) {
        ("document_state_changed", Some(s)) => format!("{event}:{s}"),
        _ => event,
    };
    let envelope = str_at(&item, &["data", "id"]);
    let id = IdSource::Derived(vec![
        envelope.clone().unwrap_or_default(),
        event_type.clone(),
        item.get("data").map(digest).unwrap_or_default(),
    ]);
    let mut d = Draft::new(
        id,
        event_type.clone(),
        kind_of(KINDS, &event_type),
        Value::Null,
    );
    d.envelope_id = envelope;
    d.signer.id = str_at(&item, &["data", "action_by", "id"]);
    d.signer.email = str_at(&item, &["data", "action_by", "email"]);
    let first = str_at(&item, &["data", "action_by", "first_name"]);
    let last = str_at(&item, &["data", "action_by", "last_name"]);
    d.signer.name = match (first, last) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (f, l) => f.or(l),
    };
    d.occurred_ms = time_at(&item, &["data", "date_modified"]);
    d.payload = item;
    Ok(d)
}

/// PandaDoc.
pub(super) struct Pandadoc;

impl super::Behaviour for Pandadoc {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::QueryMac { param: "signature" })
    }

    fn normalize(&self, ctx: &Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        normalize(super::json(ctx)?)
    }
}
