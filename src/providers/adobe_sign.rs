//! Adobe Acrobat Sign. No body MAC: the `X-AdobeSign-ClientId` header must match a
//! configured client id, and the answer echoes it (header and JSON body), both on
//! the GET "verification of intent" and on every POST.

use serde_json::Value;

use super::{Draft, Malformed, event_type_at, require_object, str_at, time_at};
use crate::event::Kind;
use crate::verify::Inbound;
use crate::verify::Scheme;
use crate::verify::VerifyError;
use crate::verify::scheme::ADOBE_CLIENT_ID_HEADER;

const KINDS: &[(&str, Kind)] = &[
    ("AGREEMENT_CREATED", Kind::Created),
    ("AGREEMENT_ACTION_REQUESTED", Kind::Sent),
    ("AGREEMENT_EMAIL_VIEWED", Kind::Viewed),
    ("AGREEMENT_DOCUMENTS_VIEWED", Kind::Viewed),
    ("AGREEMENT_ACTION_COMPLETED", Kind::SignerCompleted),
    ("AGREEMENT_WORKFLOW_COMPLETED", Kind::Completed),
    ("AGREEMENT_REJECTED", Kind::Declined),
    ("AGREEMENT_RECALLED", Kind::Voided),
    ("AGREEMENT_EXPIRED", Kind::Expired),
    ("AGREEMENT_ACTION_DELEGATED", Kind::Reassigned),
    ("AGREEMENT_ACTION_REPLACED_SIGNER", Kind::Reassigned),
    ("AGREEMENT_EMAIL_BOUNCED", Kind::DeliveryFailed),
    ("AGREEMENT_REMINDER_SENT", Kind::Reminder),
    ("AGREEMENT_MODIFIED", Kind::Updated),
    ("AGREEMENT_EXPIRATION_UPDATED", Kind::Updated),
    ("AGREEMENT_SHARED", Kind::Updated),
    ("AGREEMENT_DOCUMENTS_DELETED", Kind::Deleted),
    ("AGREEMENT_DELETED", Kind::Deleted),
    ("AGREEMENT_AUTO_CANCELLED_CONVERSION_PROBLEM", Kind::Error),
    ("AGREEMENT_READY_TO_VAULT", Kind::DocumentReady),
    ("AGREEMENT_READY_TO_NOTARIZE", Kind::DocumentReady),
];

/// The client id header's value (already authenticated when this is called).
fn client_id(req: &Inbound) -> String {
    req.header(ADOBE_CLIENT_ID_HEADER)
        .unwrap_or_default()
        .to_owned()
}

fn normalize(v: Value) -> Result<Draft, Malformed> {
    require_object(&v)?;
    let event = event_type_at(&v, &["event"])?;
    let id = str_at(&v, &["webhookNotificationId"])
        .ok_or_else(|| Malformed::new("webhookNotificationId missing"))?;
    let mut d = Draft::provided(KINDS, id, event, str_at(&v, &["agreement", "id"]));
    d.signer.id = str_at(&v, &["participantUserId"]);
    d.signer.email = str_at(&v, &["participantUserEmail"]);
    d.signer.role = str_at(&v, &["participantRole"]);
    d.occurred_ms = time_at(&v, &["eventDate"]);
    d.payload = v;
    Ok(d)
}

/// Adobe Sign.
pub(super) struct AdobeSign;

impl super::Behaviour for AdobeSign {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::ClientId)
    }

    fn normalize(&self, ctx: &super::Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(super::json(ctx)?)?])
    }

    fn secrets_hint(&self) -> &'static str {
        "list the Adobe Sign client id(s) in secrets"
    }

    fn weak_scheme(&self) -> Option<&'static str> {
        Some(
            "Adobe Sign authenticates only by its client id, which is public (it is in every authorization URL)",
        )
    }

    /// The GET "verification of intent": the client id must match, and is echoed.
    fn handshake(
        &self,
        s: &super::Source,
        req: &Inbound,
        get: bool,
    ) -> Option<Result<super::Handshake, VerifyError>> {
        get.then(|| {
            crate::verify::scheme::verify(&Scheme::ClientId, &s.keys, 0, req)
                .map(|_| super::Handshake::AdobeIntent(client_id(req)))
        })
    }

    /// The client id echoed in a header and in the body.
    fn answer(&self, req: &Inbound) -> super::Answer {
        super::Answer::AdobeEcho(client_id(req))
    }
}
