//! E-signature providers: one file each with its whole [`Behaviour`] (scheme,
//! normalizer, handshake, answer, config hints); this file keeps the trait,
//! the one dispatch ([`behaviour`]) and the shared finishing (`finish`,
//! derived ids). Adding a provider: a new file, its variant in
//! [`Provider`], and one line in [`behaviour`]. Pure: no I/O, no clocks (time
//! comes in through [`Ctx`]).
//!
//! The path of a request through this module: [`Source::authenticate`] (raw bytes,
//! before anything is parsed, except Dropbox Sign whose MAC lives inside the
//! payload) → [`Source::normalize`] (only with a [`Verified`]) → [`Source::answer`].

mod adobe_sign;
mod boldsign;
mod config;
mod documenso;
mod docuseal;
mod docusign;
mod dropbox_sign;
mod generic;
pub mod multipart;
mod opensign;
mod pandadoc;
mod signius;
mod signnow;
mod skribble;
mod yousign;
mod zoho_sign;

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::FieldMap;
pub use crate::event::Provider;
use crate::event::{Auth, EventId, Kind, SCHEMA_VERSION, SignatureEvent, Signer};
use crate::verify::{self, Inbound, Key, Scheme, Verified, VerifyError};

/// Everything one provider does, implemented in its own file (scheme,
/// normalizer, handshake, answer, config hints); [`behaviour`] is the one
/// place a [`Provider`] is mapped to it (cf. mini-redis `Command`). The
/// defaults fit a provider that signs the body and wants countersign's own
/// JSON answer.
pub(crate) trait Behaviour: Sync {
    /// The built-in scheme; `None` when the source configures it.
    fn scheme(&self) -> Option<Scheme>;

    /// What `secrets` must hold, for the config error that finds none.
    fn secrets_hint(&self) -> &'static str {
        "list the webhook signing secret(s) in secrets, e.g. [\"env:NAME\"]"
    }

    /// Why this provider's own scheme alone is weak, when it is: `config
    /// check` then warns about a source without a `url_token`.
    fn weak_scheme(&self) -> Option<&'static str> {
        None
    }

    /// Whether the secrets are Standard Webhooks `whsec_` secrets (the key is
    /// the base64 part).
    fn whsec_keys(&self) -> bool {
        false
    }

    /// Authenticates on the raw bytes, before anything is parsed.
    fn authenticate(
        &self,
        s: &Source,
        req: &Inbound,
    ) -> Result<(Verified, Preparsed), VerifyError> {
        let v = verify::scheme::verify(&s.scheme, &s.keys, s.tolerance_secs, req)?;
        Ok((v, Preparsed::None))
    }

    /// A handshake to answer (storing nothing) for a request that did not
    /// authenticate as an event; `get` is true for GET requests.
    fn handshake(
        &self,
        _s: &Source,
        _req: &Inbound,
        _get: bool,
    ) -> Option<Result<Handshake, VerifyError>> {
        None
    }

    /// The events of an authenticated request, before the shared finishing.
    fn normalize(&self, ctx: &Ctx, pre: Preparsed) -> Result<Vec<Draft>, Malformed>;

    /// The success answer the provider expects.
    fn answer(&self, _req: &Inbound) -> Answer {
        Answer::Standard
    }

    /// What makes `body` a validly signed webhook (for `countersign sign`).
    fn sign(
        &self,
        s: &Source,
        key: &Key,
        body: &[u8],
        now: i64,
        id: &str,
    ) -> Result<SignedRequest, Malformed> {
        Ok(SignedRequest {
            signature: verify::scheme::sign(&s.scheme, key, body, now, id),
            body: body.to_vec(),
            form_field: None,
        })
    }
}

/// The one dispatch: each provider's behaviour lives in its file.
pub(crate) fn behaviour(p: Provider) -> &'static dyn Behaviour {
    match p {
        Provider::StandardWebhooks => &generic::StandardWebhooks,
        Provider::Stripe => &generic::Stripe,
        Provider::Github => &generic::Github,
        Provider::GenericHmac => &generic::GenericHmac,
        Provider::Docusign => &docusign::Docusign,
        Provider::DropboxSign => &dropbox_sign::DropboxSign,
        Provider::AdobeSign => &adobe_sign::AdobeSign,
        Provider::Yousign => &yousign::Yousign,
        Provider::Boldsign => &boldsign::Boldsign,
        Provider::Docuseal => &docuseal::Docuseal,
        Provider::ZohoSign => &zoho_sign::ZohoSign,
        Provider::Signnow => &signnow::Signnow,
        Provider::Pandadoc => &pandadoc::Pandadoc,
        Provider::Opensign => &opensign::Opensign,
        Provider::Documenso => &documenso::Documenso,
        Provider::Skribble => &skribble::Skribble,
        Provider::Signius => &signius::Signius,
    }
}

/// The hint of the providers whose secret is a token in the callback URL.
const URL_TOKEN_HINT: &str =
    "list the URL token(s) in secrets; callbacks go to /hooks/{id}/{token}";

impl Provider {
    /// The built-in scheme; `generic_hmac` has none (its scheme is configured).
    pub fn scheme(self) -> Option<Scheme> {
        behaviour(self).scheme()
    }
}

/// A configured source at run time: a provider with its keys and settings.
#[derive(Debug, Clone)]
pub struct Source {
    pub id: String,
    pub provider: Provider,
    pub scheme: Scheme,
    pub keys: Vec<Key>,
    /// `url_token`: required as the `{token}` path segment when set.
    pub url_token: Option<Key>,
    pub tolerance_secs: i64,
    pub max_body_bytes: usize,
    /// Stored webhooks per second, at most.
    pub rate_limit: Option<crate::config::RateLimit>,
    /// Overrides of the event-type → kind table.
    pub kinds: HashMap<String, Kind>,
    /// Where generic providers find the event fields.
    pub fields: FieldMap,
}

/// What the provider should be told when its webhook was taken (or was a duplicate).
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// countersign's own JSON answer.
    Standard,
    /// A fixed text body the provider insists on (Dropbox Sign).
    Text(&'static str),
    /// Adobe Sign's client-id echo, in a header and in the JSON body.
    AdobeEcho(String),
}

/// A handshake that is answered without storing anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Handshake {
    /// Adobe Sign's GET "verification of intent".
    AdobeIntent(String),
    /// BoldSign's `Verification` event, sent before the webhook's secret exists.
    BoldSignVerification,
}

/// A payload that was authentic but could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Malformed(pub String);

impl Malformed {
    pub fn new(msg: impl Into<String>) -> Malformed {
        Malformed(msg.into())
    }
}

/// What a provider parses before or while authenticating (only Dropbox Sign).
pub enum Preparsed {
    None,
    Json(Value),
}

/// Input to the normalizers.
pub struct Ctx<'a> {
    pub source: &'a Source,
    pub req: &'a Inbound<'a>,
    pub verified: &'a Verified,
    pub received_ms: i64,
}

/// How an event's id is obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum IdSource {
    /// The provider's own id.
    Provided(String),
    /// Stable fields to hash when the provider has no id; never a per-attempt field.
    Derived(Vec<String>),
}

/// A provider's reading of one event, before the common finishing.
#[derive(Debug, Clone)]
pub struct Draft {
    pub id: IdSource,
    pub event_type: String,
    pub kind: Kind,
    pub envelope_id: Option<String>,
    pub document_id: Option<String>,
    pub signer: Signer,
    pub occurred_ms: Option<i64>,
    pub sandbox: Option<bool>,
    pub payload: Value,
}

impl Draft {
    /// A draft for a provider without event ids: the id is derived from the
    /// envelope, the event type and `stable` (fields that do not change across
    /// the provider's retries). Kind from `table`; the payload is set later.
    pub fn derived(
        table: &[(&str, Kind)],
        event_type: String,
        envelope: Option<String>,
        stable: &[Option<String>],
    ) -> Draft {
        let mut basis = vec![envelope.clone().unwrap_or_default(), event_type.clone()];
        basis.extend(stable.iter().map(|s| s.clone().unwrap_or_default()));
        Draft::with(IdSource::Derived(basis), table, event_type, envelope)
    }

    /// A draft for a provider that sends its own event id.
    pub fn provided(
        table: &[(&str, Kind)],
        id: String,
        event_type: String,
        envelope: Option<String>,
    ) -> Draft {
        Draft::with(IdSource::Provided(id), table, event_type, envelope)
    }

    fn with(
        id: IdSource,
        table: &[(&str, Kind)],
        event_type: String,
        envelope: Option<String>,
    ) -> Draft {
        let kind = kind_of(table, &event_type);
        let mut d = Draft::new(id, event_type, kind, Value::Null);
        d.envelope_id = envelope;
        d
    }

    /// A draft with the required fields; the rest default to unknown.
    pub fn new(id: IdSource, event_type: String, kind: Kind, payload: Value) -> Draft {
        Draft {
            id,
            event_type,
            kind,
            envelope_id: None,
            document_id: None,
            signer: Signer::default(),
            occurred_ms: None,
            sandbox: None,
            payload,
        }
    }
}

impl Source {
    fn behaviour(&self) -> &'static dyn Behaviour {
        behaviour(self.provider)
    }

    /// Authenticates on the raw bytes: the URL token first (when the source
    /// has one), then the provider's scheme. Dropbox Sign is the one provider
    /// whose MAC sits inside the payload, so its body is parsed there (and
    /// handed on).
    pub fn authenticate(&self, req: &Inbound) -> Result<(Verified, Preparsed), VerifyError> {
        self.check_url_token(req)?;
        self.behaviour().authenticate(self, req)
    }

    /// A handshake to answer for a request that did not authenticate as an event.
    /// `get` is true for GET requests. Handshakes store nothing; they need the
    /// URL token too.
    pub fn handshake(&self, req: &Inbound, get: bool) -> Option<Result<Handshake, VerifyError>> {
        let h = self.behaviour().handshake(self, req, get)?;
        Some(self.check_url_token(req).and(h))
    }

    /// The source's `url_token`, when set, must be the `{token}` segment. A
    /// token where the source has none is refused rather than ignored (the
    /// sender believes it protects something).
    fn check_url_token(&self, req: &Inbound) -> Result<(), VerifyError> {
        match (&self.url_token, req.token) {
            (Some(k), t) => verify::scheme::verify_url_token(std::slice::from_ref(k), t),
            (None, Some(_)) if !matches!(self.scheme, Scheme::UrlToken) => {
                Err(VerifyError::Unexpected("URL token"))
            }
            _ => Ok(()),
        }
    }

    /// Turns an authenticated request into normalized events (several for
    /// PandaDoc's array bodies).
    pub fn normalize(
        &self,
        req: &Inbound,
        verified: &Verified,
        pre: Preparsed,
        received_ms: i64,
    ) -> Result<Vec<SignatureEvent>, Malformed> {
        let ctx = Ctx {
            source: self,
            req,
            verified,
            received_ms,
        };
        let drafts = self.behaviour().normalize(&ctx, pre)?;
        drafts.into_iter().map(|d| finish(d, &ctx)).collect()
    }

    /// The success answer this provider expects.
    pub fn answer(&self, req: &Inbound) -> Answer {
        self.behaviour().answer(req)
    }

    /// What makes `body` a validly signed webhook for this source, signed with the
    /// first key: headers, query or token, and for Dropbox Sign a rewritten body.
    pub fn sign(&self, body: &[u8], now: i64, id: &str) -> Result<SignedRequest, Malformed> {
        let key = self
            .keys
            .first()
            .ok_or_else(|| Malformed::new("source has no secret to sign with"))?;
        let mut signed = self.behaviour().sign(self, key, body, now, id)?;
        if let Some(t) = &self.url_token {
            signed.signature.token = Some(String::from_utf8_lossy(t.bytes()).into_owned());
        }
        Ok(signed)
    }
}

/// A request body with what authenticates it.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub signature: verify::scheme::Signature,
    /// The exact bytes to send.
    pub body: Vec<u8>,
    /// For form posts (Dropbox Sign): the field name and value inside `body`.
    pub form_field: Option<(&'static str, Vec<u8>)>,
}

/// The request body as JSON, for the providers that send JSON.
fn json(ctx: &Ctx) -> Result<Value, Malformed> {
    serde_json::from_slice(ctx.req.body).map_err(|e| Malformed::new(format!("invalid JSON: {e}")))
}

/// Completes a draft: id (derived if needed), kind override, timestamps, auth.
fn finish(d: Draft, ctx: &Ctx) -> Result<SignatureEvent, Malformed> {
    let provider = ctx.source.provider.as_str();
    let id = match d.id {
        IdSource::Provided(s) => {
            EventId::parse(&s).map_err(|e| Malformed::new(format!("provider event id: {e}")))?
        }
        IdSource::Derived(parts) => derive_id(provider, &parts),
    };
    if d.event_type.is_empty() {
        return Err(Malformed::new("event type missing"));
    }
    let kind = ctx
        .source
        .kinds
        .get(&d.event_type)
        .copied()
        .unwrap_or(d.kind);
    Ok(SignatureEvent {
        schema_version: SCHEMA_VERSION,
        id,
        source: ctx.source.id.clone(),
        provider: provider.to_owned(),
        provider_event_type: d.event_type,
        kind,
        envelope_id: d.envelope_id,
        document_id: d.document_id,
        signer: d.signer.non_empty(),
        occurred_at: d.occurred_ms.map(crate::time::format_ms),
        received_at: crate::time::format_ms(ctx.received_ms),
        sandbox: d.sandbox,
        auth: Auth {
            method: ctx.verified.method().to_owned(),
            key_index: ctx.verified.key_index(),
            covers_body: ctx.verified.covers_body(),
        },
        payload: d.payload,
        origin: None,
        cause: None,
        envelope: None,
        quarantine: None,
    })
}

/// `cs_` + 128 bits of sha256(provider, parts...), fields separated by NUL.
pub fn derive_id(provider: &str, parts: &[String]) -> EventId {
    let mut h = Sha256::new();
    h.update(provider.as_bytes());
    for p in parts {
        h.update([0u8]);
        h.update(p.as_bytes());
    }
    EventId::derived(hex::encode(&h.finalize()[..16]))
}

/// A digest of a JSON value, for derived ids of providers with no stable time.
pub fn digest(v: &Value) -> String {
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

/// Looks a provider event type up in a provider's table; unknown types are `other`.
pub fn kind_of(table: &[(&str, Kind)], event_type: &str) -> Kind {
    table
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, k)| *k)
        .unwrap_or(Kind::Other)
}

/// A string (or number, rendered) at a path of object keys.
pub fn str_at(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    as_string(cur)
}

/// A JSON scalar as a non-empty string.
pub fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A timestamp at `path`: unix seconds/millis (number or digits) or RFC 3339;
/// `None` when absent, unreadable or outside 1970 .. 9999.
pub fn time_at(v: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    match cur {
        Value::Number(n) => n.as_i64().and_then(crate::time::unix_to_ms),
        Value::String(s) => match s.parse::<i64>() {
            Ok(n) => crate::time::unix_to_ms(n),
            Err(_) => crate::time::parse_rfc3339_ms(s),
        },
        _ => None,
    }
}

/// Requires a JSON object, as most providers send.
pub fn require_object(v: &Value) -> Result<(), Malformed> {
    if v.is_object() {
        Ok(())
    } else {
        Err(Malformed::new("payload must be a JSON object"))
    }
}

/// The event type at `path`, required.
pub fn event_type_at(v: &Value, path: &[&str]) -> Result<String, Malformed> {
    str_at(v, path)
        .ok_or_else(|| Malformed::new(format!("event type `{}` missing", path.join("."))))
}

#[cfg(test)]
pub(crate) mod testkit;

#[cfg(test)]
mod tests;
