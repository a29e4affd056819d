//! Dropbox Sign (HelloSign). The event arrives as multipart/form-data field `json`;
//! `event.event_hash` = hex HMAC-SHA256(API key, event_time + event_type). The MAC
//! does **not** cover the body, which the event's `auth.covers_body` says. The
//! answer must be exactly `Hello API Event Received`.

use serde_json::Value;

use super::multipart::{encode_single, form_field};
use super::{Draft, Malformed, Preparsed, SignedRequest, require_object, str_at, time_at};
use crate::event::Kind;
use crate::verify::Scheme;
use crate::verify::scheme::{Signature, sign_event_hash, verify_event_hash, verify_fresh};
use crate::verify::{Inbound, Key, Verified, VerifyError};

const ANSWER: &str = "Hello API Event Received";

const KINDS: &[(&str, Kind)] = &[
    ("signature_request_prepared", Kind::Created),
    ("signature_request_sent", Kind::Sent),
    ("signature_request_viewed", Kind::Viewed),
    ("signature_request_signed", Kind::SignerCompleted),
    ("signature_request_all_signed", Kind::Completed),
    ("signature_request_declined", Kind::Declined),
    ("signature_request_canceled", Kind::Voided),
    ("signature_request_expired", Kind::Expired),
    ("signature_request_remind", Kind::Reminder),
    ("signature_request_reassigned", Kind::Reassigned),
    ("signature_request_email_bounce", Kind::DeliveryFailed),
    ("signature_request_signer_removed", Kind::Updated),
    ("signature_request_downloadable", Kind::DocumentReady),
    ("signature_request_invalid", Kind::Error),
    ("file_error", Kind::Error),
    ("unknown_error", Kind::Error),
    ("sign_url_invalid", Kind::Error),
    ("template_error", Kind::Error),
    ("callback_test", Kind::Test),
];

/// Parses the form field and checks `event_hash`. A body that cannot be read far
/// enough to find the hash is unauthenticated, not malformed.
fn authenticate(
    keys: &[Key],
    tolerance_secs: i64,
    req: &Inbound,
) -> Result<(Verified, Preparsed), VerifyError> {
    // Dropbox Sign posts multipart/form-data; nothing else is read (a plain
    // JSON body would let anyone holding one seen hash post any payload).
    let ct = req.header("content-type").unwrap_or("");
    let json =
        form_field(ct, req.body, "json").map_err(|_| VerifyError::Missing("json form field"))?;
    let v: Value =
        serde_json::from_slice(&json).map_err(|_| VerifyError::Malformed("json form field"))?;
    let get = |k: &str| str_at(&v, &["event", k]);
    let (Some(time), Some(ty), Some(hash)) =
        (get("event_time"), get("event_type"), get("event_hash"))
    else {
        return Err(VerifyError::Missing("event_hash"));
    };
    let verified = verify_event_hash(keys, &time, &ty, &hash)?;
    // The hash covers only time and type, so a seen hash is replayable with
    // any body: the time must be fresh (`tolerance`), like a signature
    // header's timestamp.
    verify_fresh(&time, req.now, tolerance_secs)?;
    Ok((verified, Preparsed::Json(v)))
}

fn normalize(mut v: Value) -> Result<Vec<Draft>, Malformed> {
    require_object(&v)?;
    let event = str_at(&v, &["event", "event_type"])
        .ok_or_else(|| Malformed::new("event.event_type missing"))?;
    let envelope = str_at(&v, &["signature_request", "signature_request_id"]);
    let signature_id = str_at(&v, &["event", "event_metadata", "related_signature_id"]);
    let mut d = Draft::derived(
        KINDS,
        event.clone(),
        envelope,
        &[signature_id.clone(), str_at(&v, &["event", "event_time"])],
    );
    d.signer.id = signature_id.clone();
    let signatures = v
        .pointer("/signature_request/signatures")
        .and_then(Value::as_array);
    if let Some(s) = signatures
        .into_iter()
        .flatten()
        .find(|s| signature_id.is_some() && str_at(s, &["signature_id"]) == signature_id)
    {
        d.signer.email = str_at(s, &["signer_email_address"]);
        d.signer.name = str_at(s, &["signer_name"]);
        d.signer.role = str_at(s, &["signer_role"]);
    }
    d.occurred_ms = time_at(&v, &["event", "event_time"]);
    d.sandbox = v
        .pointer("/signature_request/test_mode")
        .and_then(Value::as_bool);
    // The hash is a credential for its time and type: not stored, not
    // forwarded.
    if let Some(e) = v.get_mut("event").and_then(Value::as_object_mut) {
        e.remove("event_hash");
    }
    d.payload = v;
    Ok(vec![d])
}

const BOUNDARY: &str = "countersign-dropbox-sign-boundary";

/// Sets `event.event_time` to `now` (as Dropbox Sign stamps its events) and
/// `event.event_hash` in a JSON body, and wraps it in the multipart form.
fn sign(key: &Key, body: &[u8], now: i64) -> Result<SignedRequest, Malformed> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| Malformed::new(format!("invalid JSON: {e}")))?;
    let Some(ty) = str_at(&v, &["event", "event_type"]) else {
        return Err(Malformed::new("event.event_type is required"));
    };
    let time = now.to_string();
    v["event"]["event_time"] = Value::String(time.clone());
    v["event"]["event_hash"] = Value::String(sign_event_hash(key, &time, &ty));
    let sig = Signature {
        headers: vec![(
            "Content-Type".into(),
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )],
        ..Signature::default()
    };
    let json = v.to_string().into_bytes();
    Ok(SignedRequest {
        signature: sig,
        body: encode_single(BOUNDARY, "json", &json),
        form_field: Some(("json", json)),
    })
}

/// Dropbox Sign.
pub(super) struct DropboxSign;

impl super::Behaviour for DropboxSign {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::EventHash)
    }

    fn secrets_hint(&self) -> &'static str {
        "list the Dropbox Sign API key in secrets"
    }

    fn weak_scheme(&self) -> Option<&'static str> {
        Some("Dropbox Sign's event_hash covers only the event's time and type, not the body")
    }

    /// The MAC is inside the payload: parse it here and hand it on.
    fn authenticate(
        &self,
        s: &super::Source,
        req: &Inbound,
    ) -> Result<(Verified, Preparsed), VerifyError> {
        authenticate(&s.keys, s.tolerance_secs, req)
    }

    fn normalize(&self, _: &super::Ctx, pre: Preparsed) -> Result<Vec<Draft>, Malformed> {
        match pre {
            Preparsed::Json(v) => normalize(v),
            Preparsed::None => Err(Malformed::new("Dropbox Sign payload missing")),
        }
    }

    fn answer(&self, _: &Inbound) -> super::Answer {
        super::Answer::Text(ANSWER)
    }

    /// The hash goes inside the event, sent as a form field.
    fn sign(
        &self,
        _: &super::Source,
        key: &Key,
        body: &[u8],
        now: i64,
        _id: &str,
    ) -> Result<SignedRequest, Malformed> {
        sign(key, body, now)
    }
}
