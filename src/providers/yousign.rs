//! Yousign v3. Auth: `X-Yousign-Signature-256: sha256=<hex>` over the body. Event id
//! `event_id`; `event_time` is stable across retries (`X-Yousign-Retry`).

use serde_json::Value;

use super::{Draft, Malformed, event_type_at, require_object, str_at, time_at};
use crate::event::Kind;
use crate::verify::Scheme;
use crate::verify::{Encoding, HeaderMac};

const KINDS: &[(&str, Kind)] = &[
    ("signature_request.created", Kind::Created),
    ("signature_request.activated", Kind::Sent),
    ("signer.notified", Kind::Sent),
    ("signer.link_opened", Kind::Viewed),
    ("signer.done", Kind::SignerCompleted),
    ("signature_request.done", Kind::Completed),
    ("signature_request.declined", Kind::Declined),
    ("signer.declined", Kind::Declined),
    ("signature_request.canceled", Kind::Voided),
    ("signature_request.expired", Kind::Expired),
    ("signature_request.reminder_executed", Kind::Reminder),
    ("signature_request.deleted", Kind::Deleted),
    ("signature_request.permanently_deleted", Kind::Deleted),
    ("signer.identification_blocked", Kind::AuthFailed),
    ("signer.password_authentication_blocked", Kind::AuthFailed),
    ("signer.otp_authentication_blocked", Kind::AuthFailed),
    ("signer.contact_updated", Kind::Updated),
    ("signer.error", Kind::Error),
];

fn normalize(v: Value) -> Result<Draft, Malformed> {
    require_object(&v)?;
    let event = event_type_at(&v, &["event_name"])?;
    let id = str_at(&v, &["event_id"]).ok_or_else(|| Malformed::new("event_id missing"))?;
    let mut d = Draft::provided(
        KINDS,
        id,
        event,
        str_at(&v, &["data", "signature_request", "id"]),
    );
    d.signer.id = str_at(&v, &["data", "signer", "id"]);
    d.signer.email = str_at(&v, &["data", "signer", "info", "email"]);
    let first = str_at(&v, &["data", "signer", "info", "first_name"]);
    let last = str_at(&v, &["data", "signer", "info", "last_name"]);
    d.signer.name = match (first, last) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (f, l) => f.or(l),
    };
    d.occurred_ms = time_at(&v, &["event_time"]);
    d.sandbox = v.get("sandbox").and_then(Value::as_bool);
    d.payload = v;
    Ok(d)
}

/// Yousign.
pub(super) struct Yousign;

impl super::Behaviour for Yousign {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::HeaderMac(HeaderMac::body(
            "x-yousign-signature-256",
            "sha256=",
            Encoding::Hex,
        )))
    }

    fn normalize(&self, ctx: &super::Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(super::json(ctx)?)?])
    }
}
