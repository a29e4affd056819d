//! SIGNIUS. No authentication is documented: sources use a secret URL token
//! (`/hooks/{source}/{token}`). Callback `{documentId, presentSignee, nextSignee,
//! documentStatus}` with status `SIGNED` or `SIGNING_IN_PROGESS` (spelled so).

use serde_json::Value;

use super::{Draft, IdSource, Malformed, event_type_at, kind_of, require_object, str_at};
use crate::event::Kind;

const KINDS: &[(&str, Kind)] = &[
    ("SIGNED", Kind::Completed),
    ("SIGNING_IN_PROGESS", Kind::SignerCompleted),
    ("SIGNING_IN_PROGRESS", Kind::SignerCompleted),
];

pub(super) fn normalize(v: Value) -> Result<Draft, Malformed> {
    require_object(&v)?;
    let status = event_type_at(&v, &["documentStatus"])?;
    let envelope = str_at(&v, &["documentId"]);
    let present = signee(v.get("presentSignee"));
    let basis = vec![
        envelope.clone().unwrap_or_default(),
        status.clone(),
        present.clone().unwrap_or_default(),
        signee(v.get("nextSignee")).unwrap_or_default(),
    ];
    let mut d = Draft::new(
        IdSource::Derived(basis),
        status.clone(),
        kind_of(KINDS, &status),
        Value::Null,
    );
    d.envelope_id = envelope;
    match present {
        Some(p) if p.contains('@') => d.signer.email = Some(p),
        p => d.signer.id = p,
    }
    d.payload = v;
    Ok(d)
}

/// A signee given as a string, or as an object with an email or id.
fn signee(v: Option<&Value>) -> Option<String> {
    let v = v?;
    super::as_string(v)
        .or_else(|| str_at(v, &["email"]))
        .or_else(|| str_at(v, &["id"]))
}
