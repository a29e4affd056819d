//! BoldSign. Auth: `X-BoldSign-Signature: t=<unix>, s0=<hex>[, s1=<hex>]` over
//! `{t}.{body}`. The `Verification` event arrives when a webhook is created, before
//! its secret exists; it is answered 200 and stores nothing.

use serde_json::Value;

use super::{Draft, Malformed, event_type_at, require_object, str_at, time_at};
use crate::event::Kind;
use crate::verify::Scheme;
use crate::verify::{Inbound, VerifyError};

const KINDS: &[(&str, Kind)] = &[
    ("DraftCreated", Kind::Created),
    ("Sent", Kind::Sent),
    ("Viewed", Kind::Viewed),
    ("Signed", Kind::SignerCompleted),
    ("Completed", Kind::Completed),
    ("Declined", Kind::Declined),
    ("Revoked", Kind::Voided),
    ("Expired", Kind::Expired),
    ("Reassigned", Kind::Reassigned),
    ("DeliveryFailed", Kind::DeliveryFailed),
    ("AuthenticationFailed", Kind::AuthFailed),
    ("SendFailed", Kind::Error),
    ("Edited", Kind::Updated),
    ("Reminder", Kind::Reminder),
    ("RemindDocument", Kind::Reminder),
    ("Verification", Kind::Test),
];

/// Whether an unauthenticated body is BoldSign's URL verification event.
fn is_verification(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| str_at(&v, &["event", "eventType"]))
        .is_some_and(|t| t == "Verification")
}

fn normalize(v: Value) -> Result<Draft, Malformed> {
    require_object(&v)?;
    let event = event_type_at(&v, &["event", "eventType"])?;
    let id = str_at(&v, &["event", "id"]).ok_or_else(|| Malformed::new("event.id missing"))?;
    let mut d = Draft::provided(KINDS, id, event, str_at(&v, &["data", "documentId"]));
    // BoldSign lists every signer; only a single-signer list names the one concerned.
    if let Some([s]) = v
        .pointer("/data/signerDetails")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        d.signer.email = str_at(s, &["signerEmail"]);
        d.signer.name = str_at(s, &["signerName"]);
        d.signer.role = str_at(s, &["signerRole"]);
    }
    d.occurred_ms = time_at(&v, &["event", "created"]);
    d.sandbox = str_at(&v, &["event", "environment"]).map(|e| e.eq_ignore_ascii_case("test"));
    d.payload = v;
    Ok(d)
}

/// BoldSign.
pub(super) struct Boldsign;

impl super::Behaviour for Boldsign {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::BoldSign)
    }

    fn normalize(&self, ctx: &super::Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(super::json(ctx)?)?])
    }

    /// The `Verification` event, sent before the webhook's secret exists.
    fn handshake(
        &self,
        _: &super::Source,
        req: &Inbound,
        get: bool,
    ) -> Option<Result<super::Handshake, VerifyError>> {
        (!get && is_verification(req.body)).then_some(Ok(super::Handshake::BoldSignVerification))
    }
}
