//! Skribble. Callbacks are requests to URLs set per signature request, with no MAC:
//! sources use a secret URL token, and the URL carries what happened, using
//! Skribble's placeholders, e.g.
//! `/hooks/skribble/{token}?event=SUCCESS&signature_request_id=SKRIBBLE_SIGNATURE_REQUEST_ID&document_id=SKRIBBLE_DOCUMENT_ID`.
//! A JSON object body, if any, is kept as the payload and may supply the same keys.

use serde_json::{Map, Value};

use super::{Ctx, Draft, Malformed, str_at};
use crate::event::Kind;
use crate::verify::Scheme;

const KINDS: &[(&str, Kind)] = &[
    ("INITIATE", Kind::Sent),
    ("START_SIGN", Kind::Viewed),
    ("UPDATE", Kind::SignerCompleted),
    ("SUCCESS", Kind::Completed),
    ("ERROR", Kind::Error),
    ("IDENT_ERROR", Kind::AuthFailed),
    ("DECLINED", Kind::Declined),
    ("WITHDRAWN", Kind::Voided),
];

fn normalize(ctx: &Ctx) -> Result<Vec<Draft>, Malformed> {
    let query: Map<String, Value> = ctx
        .req
        .query
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect()
        })
        .unwrap_or_default();
    let body = ctx.req.body;
    let body_json: Option<Value> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| Malformed::new(format!("invalid JSON: {e}")))?;
        Some(v).filter(Value::is_object)
    };
    let query = Value::Object(query);
    let field =
        |k: &str| str_at(&query, &[k]).or_else(|| body_json.as_ref().and_then(|b| str_at(b, &[k])));
    let event = field("event")
        .map(|e| e.to_ascii_uppercase())
        .ok_or_else(|| Malformed::new("`event` query parameter missing (e.g. ?event=SUCCESS)"))?;
    let envelope = field("signature_request_id");
    let document = field("document_id");
    let signature = field("signature_id");
    let mut d = Draft::derived(
        KINDS,
        event.clone(),
        envelope,
        &[signature.clone(), document.clone()],
    );
    d.document_id = document;
    d.signer.id = signature;
    d.payload = body_json.unwrap_or(query);
    Ok(vec![d])
}

/// Skribble.
pub(super) struct Skribble;

impl super::Behaviour for Skribble {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::UrlToken)
    }

    fn secrets_hint(&self) -> &'static str {
        super::URL_TOKEN_HINT
    }

    /// The event is in the callback URL; the body is optional.
    fn normalize(&self, ctx: &Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        normalize(ctx)
    }
}
