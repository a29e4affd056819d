//! DocuSign Connect (JSON, SIM format). Auth: `X-DocuSign-Signature-N`, one header
//! per active HMAC key. No event id: derived from envelope, event, recipient and
//! `generatedDateTime` (stable across retries; `retryCount` is not used).

use serde_json::Value;

use super::{Draft, Malformed, event_type_at, require_object, str_at, time_at};
use crate::event::{Kind, Signer};
use crate::verify::Scheme;

const KINDS: &[(&str, Kind)] = &[
    ("envelope-created", Kind::Created),
    ("envelope-sent", Kind::Sent),
    ("envelope-resent", Kind::Sent),
    ("recipient-sent", Kind::Sent),
    ("recipient-resent", Kind::Sent),
    ("envelope-delivered", Kind::Viewed),
    ("recipient-delivered", Kind::Viewed),
    ("recipient-completed", Kind::SignerCompleted),
    ("envelope-completed", Kind::Completed),
    ("envelope-declined", Kind::Declined),
    ("recipient-declined", Kind::Declined),
    ("envelope-voided", Kind::Voided),
    ("envelope-deleted", Kind::Deleted),
    ("envelope-purge", Kind::Deleted),
    ("envelope-discard", Kind::Deleted),
    ("envelope-corrected", Kind::Updated),
    ("recipient-reassign", Kind::Reassigned),
    ("recipient-delegate", Kind::Reassigned),
    ("recipient-autoresponded", Kind::DeliveryFailed),
    ("recipient-authenticationfailed", Kind::AuthFailed),
    ("recipient-finish-later", Kind::Other),
    ("envelope-removed", Kind::Deleted),
];

fn normalize(v: Value) -> Result<Draft, Malformed> {
    require_object(&v)?;
    let event = event_type_at(&v, &["event"])?;
    let envelope = str_at(&v, &["data", "envelopeId"]);
    let recipient = str_at(&v, &["data", "recipientId"]);
    let mut d = Draft::derived(
        KINDS,
        event.clone(),
        envelope,
        &[recipient.clone(), str_at(&v, &["generatedDateTime"])],
    );
    d.signer = recipient_details(&v, recipient.as_deref());
    d.occurred_ms = time_at(&v, &["generatedDateTime"]);
    d.payload = v;
    Ok(d)
}

/// Finds the recipient in `envelopeSummary.recipients.*[]` for email, name, role.
fn recipient_details(v: &Value, recipient_id: Option<&str>) -> Signer {
    let mut signer = Signer {
        id: recipient_id.map(str::to_owned),
        ..Signer::default()
    };
    let Some(id) = recipient_id else {
        return signer;
    };
    let groups = v
        .pointer("/data/envelopeSummary/recipients")
        .and_then(Value::as_object);
    let found = groups
        .into_iter()
        .flat_map(|g| g.values())
        .filter_map(Value::as_array)
        .flatten()
        .find(|r| str_at(r, &["recipientId"]).as_deref() == Some(id));
    if let Some(r) = found {
        signer.email = str_at(r, &["email"]);
        signer.name = str_at(r, &["name"]);
        signer.role = str_at(r, &["roleName"]);
    }
    signer
}

/// DocuSign Connect.
pub(super) struct Docusign;

impl super::Behaviour for Docusign {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::DocuSign)
    }

    fn normalize(&self, ctx: &super::Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(super::json(ctx)?)?])
    }
}
