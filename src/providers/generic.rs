//! Payload-defined providers: Standard Webhooks, Stripe-style, GitHub-style and
//! `generic_hmac`. Where the fields are is configurable per source (`fields`, JSON
//! pointers); the defaults below fit the common shapes. Kinds come from the
//! source's `kinds` table, else from an event type whose last segment is a kind
//! name (`envelope.completed` → `completed`), else `other`.

use serde_json::Value;

use super::{Ctx, Draft, IdSource, Malformed, Provider, as_string, digest};
use crate::event::Kind;
use crate::verify::{Encoding, HeaderMac, Scheme};

/// The first pointer (configured one, else the defaults) that holds a scalar.
fn pick(v: &Value, configured: &Option<String>, defaults: &[&str]) -> Option<String> {
    match configured {
        Some(p) => v.pointer(p).and_then(as_string),
        None => defaults
            .iter()
            .find_map(|p| v.pointer(p).and_then(as_string)),
    }
}

/// The event id from a header, only where the MAC covers it (Standard
/// Webhooks signs `webhook-id`; `generic_hmac` requires `{id}` in its
/// template). GitHub's `X-GitHub-Delivery` is not signed: a GitHub event's id
/// is derived from the signed body instead, so one body replayed under other
/// delivery ids is still one event.
fn id_header(ctx: &Ctx) -> Option<String> {
    let names: &[&str] = match ctx.source.provider {
        Provider::StandardWebhooks => &["webhook-id", "svix-id"],
        Provider::GenericHmac => match &ctx.source.scheme {
            Scheme::HeaderMac(hm) => match &hm.id_header {
                Some(h) => return ctx.req.header(h.as_str()).map(str::to_owned),
                None => &[],
            },
            _ => &[],
        },
        _ => &[],
    };
    names
        .iter()
        .find_map(|n| ctx.req.header(n))
        .map(str::to_owned)
}

/// Kind from the last segment of a dotted/underscored event type.
fn kind_guess(event_type: &str) -> Kind {
    let last = event_type
        .rsplit(['.', ':', '/'])
        .next()
        .unwrap_or(event_type);
    Kind::parse(&last.to_ascii_lowercase())
        .filter(|k| !k.is_derived())
        .unwrap_or(Kind::Other)
}

fn normalize(ctx: &Ctx, v: Value) -> Result<Draft, Malformed> {
    let f = &ctx.source.fields;
    let event_type = match ctx.source.provider {
        Provider::Github if f.event_type.is_none() => {
            ctx.req.header("x-github-event").map(str::to_owned)
        }
        _ => pick(&v, &f.event_type, &["/type", "/event_type", "/event"]),
    }
    .ok_or_else(|| {
        Malformed::new("event type missing (set `fields.event_type` to its JSON pointer)")
    })?;
    let envelope = pick(
        &v,
        &f.envelope_id,
        &[
            "/data/envelope_id",
            "/data/envelopeId",
            "/envelope_id",
            "/envelopeId",
        ],
    );
    let id = match f.event_id.as_ref().map(|_| pick(&v, &f.event_id, &[])) {
        Some(Some(id)) => IdSource::Provided(id),
        Some(None) => return Err(Malformed::new("event id missing at `fields.event_id`")),
        None => match id_header(ctx).or_else(|| pick(&v, &None, &["/id"])) {
            Some(id) => IdSource::Provided(id),
            None => IdSource::Derived(vec![
                envelope.clone().unwrap_or_default(),
                event_type.clone(),
                digest(&v),
            ]),
        },
    };
    let mut d = Draft::new(id, event_type.clone(), kind_guess(&event_type), Value::Null);
    d.envelope_id = envelope;
    d.document_id = pick(&v, &f.document_id, &["/data/document_id", "/document_id"]);
    d.signer.id = pick(&v, &f.signer_id, &["/data/signer/id", "/signer/id"]);
    d.signer.email = pick(
        &v,
        &f.signer_email,
        &["/data/signer/email", "/signer/email"],
    );
    d.signer.name = pick(&v, &f.signer_name, &["/data/signer/name", "/signer/name"]);
    d.signer.role = pick(&v, &f.signer_role, &["/data/signer/role", "/signer/role"]);
    let time_ptr = f.occurred_at.as_deref().unwrap_or("/timestamp");
    d.occurred_ms = v.pointer(time_ptr).and_then(|t| super::time_at(t, &[]));
    d.sandbox = f
        .sandbox
        .as_deref()
        .and_then(|p| v.pointer(p))
        .and_then(Value::as_bool);
    d.payload = v;
    Ok(d)
}

/// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`;
/// also Svix's `svix-` names), with `whsec_` secrets.
pub(super) struct StandardWebhooks;
/// Stripe-style `Stripe-Signature: t=...,v1=...`.
pub(super) struct Stripe;
/// GitHub-style `X-Hub-Signature-256: sha256=...`.
pub(super) struct Github;
/// A MAC scheme assembled from the source's `header`, `prefix`, `encoding`,
/// `algorithm`, `template`, `timestamp_header` and `id_header`.
pub(super) struct GenericHmac;

impl super::Behaviour for StandardWebhooks {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::StandardWebhooks)
    }

    fn secrets_hint(&self) -> &'static str {
        "list the whsec_... signing secret(s) in secrets"
    }

    fn whsec_keys(&self) -> bool {
        true
    }

    fn normalize(&self, ctx: &Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(ctx, super::json(ctx)?)?])
    }
}

impl super::Behaviour for Stripe {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::Stripe)
    }

    fn normalize(&self, ctx: &Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(ctx, super::json(ctx)?)?])
    }
}

impl super::Behaviour for Github {
    fn scheme(&self) -> Option<Scheme> {
        Some(Scheme::HeaderMac(HeaderMac::body(
            "x-hub-signature-256",
            "sha256=",
            Encoding::Hex,
        )))
    }

    fn normalize(&self, ctx: &Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(ctx, super::json(ctx)?)?])
    }
}

impl super::Behaviour for GenericHmac {
    /// None built in: `providers/config.rs` assembles it from the source's keys.
    fn scheme(&self) -> Option<Scheme> {
        None
    }

    fn normalize(&self, ctx: &Ctx, _: super::Preparsed) -> Result<Vec<Draft>, Malformed> {
        Ok(vec![normalize(ctx, super::json(ctx)?)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_kinds_from_the_last_segment() {
        assert_eq!(kind_guess("envelope.completed"), Kind::Completed);
        assert_eq!(kind_guess("document:SENT"), Kind::Sent);
        assert_eq!(kind_guess("signer_completed"), Kind::SignerCompleted);
        assert_eq!(kind_guess("envelope.finished"), Kind::Other);
    }
}
