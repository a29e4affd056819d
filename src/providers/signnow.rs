//! signNow. Auth: `X-SignNow-Signature`, HMAC-SHA256 of the body (base64, hex also
//! accepted). `meta.access_token` is a credential and is stripped before storing.

use serde_json::Value;

use super::{Draft, Malformed, event_type_at, require_object, str_at, time_at};
use crate::event::Kind;
use crate::verify::Scheme;
use crate::verify::{Encoding, HeaderMac};

const KINDS: &[(&str, Kind)] = &[
    ("user.document.create", Kind::Created),
    ("document.fieldinvite.sent", Kind::Sent),
    ("document.freeforminvite.sent", Kind::Sent),
    ("document.open", Kind::Viewed),
    ("document.fieldinvite.signed", Kind::SignerCompleted),
    ("document.freeforminvite.signed", Kind::SignerCompleted),
    ("document.complete", Kind::Completed),
    ("document_group.complete", Kind::Completed),
    ("document.fieldinvite.decline", Kind::Declined),
    ("document.fieldinvite.delete", Kind::Voided),
    ("document.fieldinvite.reassign", Kind::Reassigned),
    ("document.fieldinvite.replace", Kind::Reassigned),
    ("document.update", Kind::Updated),
    ("document.delete", Kind::Deleted),
];

fn normalize(mut v: Value) -> Result<Draft, Malformed> {
    require_object(&v)?;
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("access_token");
    }
    let event = event_type_at(&v, &["meta", "event"])?;
    let envelope = str_at(&v, &["content", "document_id"])
        .or_else(|| str_at(&v, &["content", "document_group_id"]));
    let signer_email = str_at(&v, &["content", "signer"]);
    let mut d = Draft::derived(
        KINDS,
        event.clone(),
        envelope,
        &[signer_email.clone(), str_at(&v, &["meta", "timestamp"])],
    );
    d.signer.email = signer_email;
    d.occurred_ms = time_at(&v, &["meta", "timestamp"]);
    d.payload = v;
    Ok(d)
}

/// signNow.
pub(super) struct Signnow;

impl super::Behaviour for Signnow {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::HeaderMac(HeaderMac::body(
            "x-signnow-signature",
            "",
            Encoding::HexOrBase64,
        )))
    }

    fn normalize(&self, ctx: &super::Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(super::json(ctx)?)?])
    }
}
