//! DocuSeal. Auth: `X-Docuseal-Signature: {unix}.{hex}` over `{unix}.{body}`, key is
//! the literal secret string. No event id: derived from the submission, event,
//! submitter and the event's `timestamp`.

use serde_json::Value;

use super::{Draft, Malformed, event_type_at, require_object, str_at, time_at};
use crate::event::Kind;
use crate::verify::Scheme;

const KINDS: &[(&str, Kind)] = &[
    ("submission.created", Kind::Created),
    ("form.viewed", Kind::Viewed),
    ("form.started", Kind::Viewed),
    ("form.completed", Kind::SignerCompleted),
    ("form.declined", Kind::Declined),
    ("submission.completed", Kind::Completed),
    ("submission.expired", Kind::Expired),
    ("submission.archived", Kind::Deleted),
    ("template.created", Kind::Other),
    ("template.updated", Kind::Other),
];

fn normalize(v: Value) -> Result<Draft, Malformed> {
    require_object(&v)?;
    let event = event_type_at(&v, &["event_type"])?;
    let form_event = event.starts_with("form.");
    let envelope = if form_event {
        str_at(&v, &["data", "submission", "id"]).or_else(|| str_at(&v, &["data", "submission_id"]))
    } else {
        str_at(&v, &["data", "id"])
    };
    let submitter = form_event.then(|| str_at(&v, &["data", "id"])).flatten();
    let mut d = Draft::derived(
        KINDS,
        event.clone(),
        envelope,
        &[submitter.clone(), str_at(&v, &["timestamp"])],
    );
    if form_event {
        d.signer.id = submitter;
        d.signer.email = str_at(&v, &["data", "email"]);
        d.signer.name = str_at(&v, &["data", "name"]);
        d.signer.role = str_at(&v, &["data", "role"]);
    }
    d.occurred_ms = time_at(&v, &["timestamp"]);
    d.payload = v;
    Ok(d)
}

/// DocuSeal.
pub(super) struct Docuseal;

impl super::Behaviour for Docuseal {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::DocuSeal)
    }

    fn normalize(&self, ctx: &super::Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(super::json(ctx)?)?])
    }
}
