//! SIGNIUS. No authentication is documented: sources use a secret URL token
//! (`/hooks/{source}/{token}`). Callback `{documentId, presentSignee, nextSignee,
//! documentStatus}` with status `SIGNED` or `SIGNING_IN_PROGESS` (spelled so).

use serde_json::Value;

use super::{Draft, Malformed, event_type_at, require_object, str_at};
use crate::event::Kind;
use crate::verify::Scheme;

const KINDS: &[(&str, Kind)] = &[
    ("SIGNED", Kind::Completed),
    ("SIGNING_IN_PROGESS", Kind::SignerCompleted),
    ("SIGNING_IN_PROGRESS", Kind::SignerCompleted),
];

fn normalize(v: Value) -> Result<Draft, Malformed> {
    require_object(&v)?;
    let status = event_type_at(&v, &["documentStatus"])?;
    let envelope = str_at(&v, &["documentId"]);
    let present = signee(v.get("presentSignee"));
    let mut d = Draft::derived(
        KINDS,
        status.clone(),
        envelope,
        &[present.clone(), signee(v.get("nextSignee"))],
    );
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

/// SIGNIUS.
pub(super) struct Signius;

impl super::Behaviour for Signius {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::UrlToken)
    }

    fn normalize(&self, ctx: &super::Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(super::json(ctx)?)?])
    }

    fn secrets_hint(&self) -> &'static str {
        super::URL_TOKEN_HINT
    }
}
