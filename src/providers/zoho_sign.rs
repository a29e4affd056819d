//! Zoho Sign. Auth: `X-ZS-WEBHOOK-SIGNATURE`, base64 HMAC-SHA256 of the body. No
//! event id: derived from request, operation, action and `performed_at`. Zoho fires
//! both `RequestSigningSuccess` and `RequestCompleted` on the last signature; they
//! differ in type and so in id, and both are kept.

use serde_json::Value;

use super::{Draft, Malformed, event_type_at, require_object, str_at, time_at};
use crate::event::Kind;
use crate::verify::Scheme;
use crate::verify::{Encoding, HeaderMac};

const KINDS: &[(&str, Kind)] = &[
    ("RequestSubmitted", Kind::Sent),
    ("RequestViewed", Kind::Viewed),
    ("RequestSigningSuccess", Kind::SignerCompleted),
    ("RequestApproved", Kind::SignerCompleted),
    ("RequestCompleted", Kind::Completed),
    ("RequestRejected", Kind::Declined),
    ("RequestRecalled", Kind::Voided),
    ("RequestExpired", Kind::Expired),
    ("RequestForwarded", Kind::Reassigned),
    ("RequestReassigned", Kind::Reassigned),
    ("RequestDeleted", Kind::Deleted),
    ("RequestReminded", Kind::Reminder),
    ("RequestSigningFailed", Kind::Error),
];

fn normalize(v: Value) -> Result<Draft, Malformed> {
    require_object(&v)?;
    let event = event_type_at(&v, &["notifications", "operation_type"])?;
    let envelope = str_at(&v, &["requests", "request_id"]);
    let action = str_at(&v, &["notifications", "action_id"]);
    let mut d = Draft::derived(
        KINDS,
        event.clone(),
        envelope,
        &[
            action.clone(),
            str_at(&v, &["notifications", "performed_at"]),
        ],
    );
    d.signer.id = action;
    d.signer.email = str_at(&v, &["notifications", "performed_by_email"]);
    d.signer.name = str_at(&v, &["notifications", "performed_by_name"]);
    d.occurred_ms = time_at(&v, &["notifications", "performed_at"]);
    d.payload = v;
    Ok(d)
}

/// Zoho Sign.
pub(super) struct ZohoSign;

impl super::Behaviour for ZohoSign {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::HeaderMac(HeaderMac::body(
            "x-zs-webhook-signature",
            "",
            Encoding::Base64,
        )))
    }

    fn normalize(&self, ctx: &super::Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(super::json(ctx)?)?])
    }
}
