//! The authentication schemes, each with its verifier and its mirror-image signer
//! (the signer backs `countersign sign` and the tests' signed requests).

use http::HeaderName;
use serde::{Deserialize, Serialize};

pub use super::mac::Algorithm;
use super::mac::{
    decode_base64, decode_hex, encode_base64, hmac, match_any, parse_unix, secret_eq, within,
};
use super::{Inbound, Key, Verified, VerifyError};

/// How a MAC is written in its header or parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    #[default]
    Hex,
    Base64,
    /// Either (signNow is documented as base64 and seen as hex).
    HexOrBase64,
}

impl Encoding {
    fn decode(self, s: &str) -> Option<Vec<u8>> {
        match self {
            Encoding::Hex => decode_hex(s),
            Encoding::Base64 => decode_base64(s),
            Encoding::HexOrBase64 => decode_hex(s).or_else(|| decode_base64(s)),
        }
    }

    fn encode(self, b: &[u8]) -> String {
        match self {
            Encoding::Hex | Encoding::HexOrBase64 => hex::encode(b),
            Encoding::Base64 => encode_base64(b),
        }
    }
}

/// One piece of the signed content of a generic HMAC scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatePart {
    Body,
    Timestamp,
    Id,
    Literal(String),
}

/// Signed content, e.g. `{timestamp}.{body}`; parsed once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(pub Vec<TemplatePart>);

impl Template {
    /// Parses `{body}`, `{timestamp}`, `{id}` and literal text. `{body}` must occur once.
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(TemplatePart::Literal(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| "unclosed `{`".to_owned())?;
            parts.push(match &rest[open + 1..open + close] {
                "body" => TemplatePart::Body,
                "timestamp" => TemplatePart::Timestamp,
                "id" => TemplatePart::Id,
                other => {
                    return Err(format!(
                        "unknown placeholder `{{{other}}}`; use {{body}}, {{timestamp}} or {{id}}"
                    ));
                }
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Literal(rest.to_owned()));
        }
        match parts.iter().filter(|p| **p == TemplatePart::Body).count() {
            1 => Ok(Template(parts)),
            _ => Err("must contain `{body}` exactly once".to_owned()),
        }
    }

    fn needs(&self, part: &TemplatePart) -> bool {
        self.0.contains(part)
    }

    fn pieces<'a>(&'a self, body: &'a [u8], ts: &'a str, id: &'a str) -> Vec<&'a [u8]> {
        self.0
            .iter()
            .map(|p| match p {
                TemplatePart::Body => body,
                TemplatePart::Timestamp => ts.as_bytes(),
                TemplatePart::Id => id.as_bytes(),
                TemplatePart::Literal(l) => l.as_bytes(),
            })
            .collect()
    }
}

/// A MAC in one header over a templated content (GitHub, Yousign, Zoho, signNow,
/// OpenSign and `generic_hmac`).
#[derive(Clone, Debug)]
pub struct HeaderMac {
    pub header: HeaderName,
    pub prefix: String,
    pub encoding: Encoding,
    pub algorithm: Algorithm,
    pub template: Template,
    pub timestamp_header: Option<HeaderName>,
    pub id_header: Option<HeaderName>,
}

impl HeaderMac {
    /// HMAC-SHA256 of the body in `header`, `prefix` + encoded MAC.
    pub fn body(header: &'static str, prefix: &str, encoding: Encoding) -> HeaderMac {
        HeaderMac {
            header: HeaderName::from_static(header),
            prefix: prefix.to_owned(),
            encoding,
            algorithm: Algorithm::Sha256,
            template: Template(vec![TemplatePart::Body]),
            timestamp_header: None,
            id_header: None,
        }
    }
}

/// The authentication scheme of a source.
#[derive(Clone, Debug)]
pub enum Scheme {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64> ...`.
    StandardWebhooks,
    /// `Stripe-Signature: t=..,v1=..`, key is the literal secret, past-only window.
    Stripe,
    /// `X-BoldSign-Signature: t=<unix>, s0=<hex>[, s1=<hex>]`.
    BoldSign,
    /// `X-Docuseal-Signature: <unix>.<hex>` over `<unix>.<body>`.
    DocuSeal,
    /// `X-DocuSign-Signature-1..N`, base64 HMAC of the body, one per active key.
    DocuSign,
    HeaderMac(HeaderMac),
    /// Hex HMAC of the body in a query parameter (PandaDoc's `?signature=`).
    QueryMac {
        param: &'static str,
    },
    /// A plain shared secret in a header (Documenso).
    SharedSecretHeader {
        header: &'static str,
    },
    /// Adobe Sign's `X-AdobeSign-ClientId`, compared with the configured client ids.
    ClientId,
    /// A secret token in the URL path (`/hooks/{source}/{token}`).
    UrlToken,
    /// Dropbox Sign's `event_hash` inside the payload; see [`verify_event_hash`].
    EventHash,
}

pub const ADOBE_CLIENT_ID_HEADER: &str = "x-adobesign-clientid";
const DOCUSIGN_MAX_HEADERS: usize = 100;

/// Authenticates a request under `scheme`. `tolerance_secs` applies to schemes with
/// a timestamp.
pub fn verify(
    scheme: &Scheme,
    keys: &[Key],
    tolerance_secs: i64,
    req: &Inbound,
) -> Result<Verified, VerifyError> {
    let hmac256 = |parts: &[&[u8]], key: &[u8]| hmac(Algorithm::Sha256, key, parts);
    match scheme {
        Scheme::StandardWebhooks => standard_webhooks(keys, tolerance_secs, req),
        Scheme::Stripe => {
            let h = req
                .header("stripe-signature")
                .ok_or(VerifyError::Missing("Stripe-Signature header"))?;
            let (ts, macs) = split_timestamped(h, "t", &["v1"], Encoding::Hex)?;
            check_ts(&ts, req.now, tolerance_secs, true)?;
            let idx = match_any(keys, &macs, |k| {
                hmac256(&[ts.as_bytes(), b".", req.body], k)
            });
            found("stripe", idx, true)
        }
        Scheme::BoldSign => {
            let h = req
                .header("x-boldsign-signature")
                .ok_or(VerifyError::Missing("X-BoldSign-Signature header"))?;
            let (ts, macs) = split_timestamped(h, "t", &["s0", "s1"], Encoding::Hex)?;
            check_ts(&ts, req.now, tolerance_secs, false)?;
            let idx = match_any(keys, &macs, |k| {
                hmac256(&[ts.as_bytes(), b".", req.body], k)
            });
            found("hmac_sha256", idx, true)
        }
        Scheme::DocuSeal => {
            let h = req
                .header("x-docuseal-signature")
                .ok_or(VerifyError::Missing("X-Docuseal-Signature header"))?;
            let (ts, mac) = h
                .split_once('.')
                .ok_or(VerifyError::Malformed("X-Docuseal-Signature header"))?;
            check_ts(ts, req.now, tolerance_secs, false)?;
            let mac = decode_hex(mac).ok_or(VerifyError::Malformed("X-Docuseal-Signature"))?;
            let idx = match_any(keys, &[mac], |k| {
                hmac256(&[ts.as_bytes(), b".", req.body], k)
            });
            found("hmac_sha256", idx, true)
        }
        Scheme::DocuSign => {
            let macs: Vec<Vec<u8>> = (1..=DOCUSIGN_MAX_HEADERS)
                .map_while(|i| req.header(&format!("x-docusign-signature-{i}")))
                .filter_map(decode_base64)
                .collect();
            if macs.is_empty() {
                return Err(VerifyError::Missing("X-DocuSign-Signature-1 header"));
            }
            let idx = match_any(keys, &macs, |k| hmac256(&[req.body], k));
            found("hmac_sha256", idx, true)
        }
        Scheme::HeaderMac(hm) => header_mac(hm, keys, tolerance_secs, req),
        Scheme::QueryMac { param } => {
            let v = req
                .query_param(param)
                .ok_or(VerifyError::Missing("signature query parameter"))?;
            let mac = decode_hex(&v).ok_or(VerifyError::Malformed("signature query parameter"))?;
            found(
                "hmac_sha256",
                match_any(keys, &[mac], |k| hmac256(&[req.body], k)),
                true,
            )
        }
        Scheme::SharedSecretHeader { header } => {
            let v = req
                .header(header)
                .ok_or(VerifyError::Missing("shared-secret header"))?;
            secret_match("shared_secret", keys, v)
        }
        Scheme::ClientId => {
            let v = req
                .header(ADOBE_CLIENT_ID_HEADER)
                .ok_or(VerifyError::Missing("X-AdobeSign-ClientId header"))?;
            secret_match("client_id", keys, v)
        }
        Scheme::UrlToken => {
            let t = req.token.ok_or(VerifyError::Missing("URL token"))?;
            secret_match("url_token", keys, t)
        }
        Scheme::EventHash => Err(VerifyError::Missing("event_hash")),
    }
}

/// A timestamp (unix seconds, as text) within `tolerance_secs` of `now`, for
/// schemes whose MAC covers a time but where nothing else checks it.
pub fn verify_fresh(ts: &str, now: i64, tolerance_secs: i64) -> Result<(), VerifyError> {
    check_ts(ts, now, tolerance_secs, false)
}

/// A source's `url_token`: the `{token}` path segment must match one of
/// `keys` (compared in constant time, after hashing, like every secret).
pub fn verify_url_token(keys: &[Key], token: Option<&str>) -> Result<(), VerifyError> {
    let t = token.ok_or(VerifyError::Missing("URL token"))?;
    secret_match("url_token", keys, t).map(|_| ())
}

/// Dropbox Sign: `event_hash` = hex HMAC-SHA256(api key, event_time + event_type).
/// The body is not covered, which the resulting [`Verified`] records.
pub fn verify_event_hash(
    keys: &[Key],
    event_time: &str,
    event_type: &str,
    event_hash: &str,
) -> Result<Verified, VerifyError> {
    let mac = decode_hex(event_hash).ok_or(VerifyError::Malformed("event_hash"))?;
    let idx = match_any(keys, &[mac], |k| {
        hmac(
            Algorithm::Sha256,
            k,
            &[event_time.as_bytes(), event_type.as_bytes()],
        )
    });
    found("event_hash", idx, false)
}

/// The hex `event_hash` Dropbox Sign would send (for `countersign sign`).
pub fn sign_event_hash(key: &Key, event_time: &str, event_type: &str) -> String {
    hex::encode(hmac(
        Algorithm::Sha256,
        key.bytes(),
        &[event_time.as_bytes(), event_type.as_bytes()],
    ))
}

fn found(
    method: &'static str,
    idx: Option<usize>,
    covers_body: bool,
) -> Result<Verified, VerifyError> {
    idx.map(|i| Verified::new(method, Some(i), covers_body))
        .ok_or(VerifyError::NoMatch)
}

fn secret_match(method: &'static str, keys: &[Key], given: &str) -> Result<Verified, VerifyError> {
    let idx = keys
        .iter()
        .position(|k| secret_eq(given.as_bytes(), k.bytes()));
    found(method, idx, false)
}

fn check_ts(ts: &str, now: i64, tolerance: i64, past_only: bool) -> Result<(), VerifyError> {
    let t = parse_unix(ts).ok_or(VerifyError::Malformed("timestamp"))?;
    if within(t, now, tolerance, past_only) {
        Ok(())
    } else {
        Err(VerifyError::Stale)
    }
}

/// Splits `t=<ts>, v1=<mac>, v1=<mac>` (Stripe) or `t=<ts>, s0=<mac>` (BoldSign).
fn split_timestamped(
    header: &str,
    ts_key: &str,
    mac_keys: &[&str],
    enc: Encoding,
) -> Result<(String, Vec<Vec<u8>>), VerifyError> {
    let mut ts = None;
    let mut macs = Vec::new();
    for item in header.split(',') {
        let (k, v) = item
            .trim()
            .split_once('=')
            .ok_or(VerifyError::Malformed("signature header"))?;
        if k == ts_key {
            ts = Some(v.to_owned());
        } else if mac_keys.contains(&k) {
            macs.push(enc.decode(v).ok_or(VerifyError::Malformed("signature"))?);
        }
    }
    let ts = ts.ok_or(VerifyError::Missing("signature timestamp"))?;
    if macs.is_empty() {
        return Err(VerifyError::Missing("signature"));
    }
    Ok((ts, macs))
}

fn standard_webhooks(keys: &[Key], tolerance: i64, req: &Inbound) -> Result<Verified, VerifyError> {
    let get = |name: &'static str, svix: &'static str| {
        req.header(name)
            .or_else(|| req.header(svix))
            .ok_or(VerifyError::Missing(name))
    };
    let id = get("webhook-id", "svix-id")?;
    let ts = get("webhook-timestamp", "svix-timestamp")?;
    let sigs = get("webhook-signature", "svix-signature")?;
    check_ts(ts, req.now, tolerance, false)?;
    let macs: Vec<Vec<u8>> = sigs
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(decode_base64)
        .collect();
    if macs.is_empty() {
        return Err(VerifyError::Malformed("webhook-signature"));
    }
    let idx = match_any(keys, &macs, |k| {
        hmac(
            Algorithm::Sha256,
            k,
            &[id.as_bytes(), b".", ts.as_bytes(), b".", req.body],
        )
    });
    found("standard_webhooks", idx, true)
}

fn header_mac(
    hm: &HeaderMac,
    keys: &[Key],
    tolerance: i64,
    req: &Inbound,
) -> Result<Verified, VerifyError> {
    let value = req
        .headers
        .get(&hm.header)
        .and_then(|v| v.to_str().ok())
        .ok_or(VerifyError::Missing("signature header"))?;
    let encoded = value
        .strip_prefix(hm.prefix.as_str())
        .ok_or(VerifyError::Malformed("signature header prefix"))?;
    let mac = hm
        .encoding
        .decode(encoded)
        .ok_or(VerifyError::Malformed("signature encoding"))?;
    let ts = match &hm.timestamp_header {
        Some(h) => {
            let ts = req
                .headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .ok_or(VerifyError::Missing("timestamp header"))?;
            check_ts(ts, req.now, tolerance, false)?;
            ts
        }
        None if hm.template.needs(&TemplatePart::Timestamp) => {
            return Err(VerifyError::Missing("timestamp header"));
        }
        None => "",
    };
    let id = match &hm.id_header {
        Some(h) => req
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .ok_or(VerifyError::Missing("id header"))?,
        None => "",
    };
    let pieces = hm.template.pieces(req.body, ts, id);
    let idx = match_any(keys, &[mac], |k| hmac(hm.algorithm, k, &pieces));
    let method = match hm.algorithm {
        Algorithm::Sha256 => "hmac_sha256",
        Algorithm::Sha512 => "hmac_sha512",
    };
    found(method, idx, true)
}

/// What makes a body a validly signed webhook: headers to add, a query string, or
/// a URL token.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Signature {
    pub headers: Vec<(String, String)>,
    pub query: Option<String>,
    pub token: Option<String>,
}

impl Signature {
    fn header(name: impl Into<String>, value: impl Into<String>) -> Signature {
        Signature {
            headers: vec![(name.into(), value.into())],
            ..Signature::default()
        }
    }
}

/// Signs `body` as the provider would, at time `now`, with message id `id` where the
/// scheme has one. [`Scheme::EventHash`] is signed by its provider (the hash goes
/// into the body), so it yields no headers here.
pub fn sign(scheme: &Scheme, key: &Key, body: &[u8], now: i64, id: &str) -> Signature {
    let k = key.bytes();
    let ts = now.to_string();
    let mac256 = |parts: &[&[u8]]| hmac(Algorithm::Sha256, k, parts);
    match scheme {
        Scheme::StandardWebhooks => {
            let mac = mac256(&[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
            Signature {
                headers: vec![
                    ("webhook-id".into(), id.into()),
                    ("webhook-timestamp".into(), ts),
                    (
                        "webhook-signature".into(),
                        format!("v1,{}", encode_base64(&mac)),
                    ),
                ],
                ..Signature::default()
            }
        }
        Scheme::Stripe => {
            let mac = hex::encode(mac256(&[ts.as_bytes(), b".", body]));
            Signature::header("Stripe-Signature", format!("t={ts},v1={mac}"))
        }
        Scheme::BoldSign => {
            let mac = hex::encode(mac256(&[ts.as_bytes(), b".", body]));
            Signature::header("X-BoldSign-Signature", format!("t={ts}, s0={mac}"))
        }
        Scheme::DocuSeal => {
            let mac = hex::encode(mac256(&[ts.as_bytes(), b".", body]));
            Signature::header("X-Docuseal-Signature", format!("{ts}.{mac}"))
        }
        Scheme::DocuSign => {
            Signature::header("X-DocuSign-Signature-1", encode_base64(&mac256(&[body])))
        }
        Scheme::HeaderMac(hm) => {
            let pieces = hm.template.pieces(body, &ts, id);
            let mac = hm.encoding.encode(&hmac(hm.algorithm, k, &pieces));
            let mut sig = Signature::header(hm.header.as_str(), format!("{}{mac}", hm.prefix));
            if let Some(h) = &hm.timestamp_header {
                sig.headers.push((h.as_str().into(), ts.clone()));
            }
            if let Some(h) = &hm.id_header {
                sig.headers.push((h.as_str().into(), id.into()));
            }
            sig
        }
        Scheme::QueryMac { param } => {
            let mac = hex::encode(mac256(&[body]));
            Signature {
                query: Some(format!("{param}={mac}")),
                ..Signature::default()
            }
        }
        Scheme::SharedSecretHeader { header } => {
            Signature::header(*header, String::from_utf8_lossy(k))
        }
        Scheme::ClientId => Signature::header("X-AdobeSign-ClientId", String::from_utf8_lossy(k)),
        Scheme::UrlToken => Signature {
            token: Some(String::from_utf8_lossy(k).into_owned()),
            ..Signature::default()
        },
        Scheme::EventHash => Signature::default(),
    }
}

#[cfg(test)]
mod tests;
