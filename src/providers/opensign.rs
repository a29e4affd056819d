//! OpenSign. Auth: `x-webhook-signature`, hex HMAC-SHA256 of the body. Payload
//! `{event, objectId, ...}`; no event id, so one is derived from the document, the
//! event and a digest of the payload (no stable event time is documented).

use serde_json::Value;

use super::{Draft, Malformed, digest, event_type_at, require_object, str_at, time_at};
use crate::event::Kind;
use crate::verify::Scheme;
use crate::verify::{Encoding, HeaderMac};

const KINDS: &[(&str, Kind)] = &[
    ("created", Kind::Created),
    ("sent", Kind::Sent),
    ("viewed", Kind::Viewed),
    ("signed", Kind::SignerCompleted),
    ("completed", Kind::Completed),
    ("declined", Kind::Declined),
    ("revoked", Kind::Voided),
    ("expired", Kind::Expired),
];

fn normalize(v: Value) -> Result<Draft, Malformed> {
    require_object(&v)?;
    let event = event_type_at(&v, &["event"])?;
    let envelope = str_at(&v, &["objectId"]);
    let mut d = Draft::derived(KINDS, event.clone(), envelope, &[Some(digest(&v))]);
    d.signer.email = str_at(&v, &["signer", "email"]).or_else(|| str_at(&v, &["signerEmail"]));
    d.signer.name = str_at(&v, &["signer", "name"]).or_else(|| str_at(&v, &["signerName"]));
    d.occurred_ms = time_at(&v, &["updatedAt"]).or_else(|| time_at(&v, &["createdAt"]));
    d.payload = v;
    Ok(d)
}

/// OpenSign.
pub(super) struct Opensign;

impl super::Behaviour for Opensign {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::HeaderMac(HeaderMac::body(
            "x-webhook-signature",
            "",
            Encoding::Hex,
        )))
    }

    fn normalize(&self, ctx: &super::Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(super::json(ctx)?)?])
    }
}
