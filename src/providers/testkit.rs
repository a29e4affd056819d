//! Helpers for provider tests: real sources built through config loading, signed
//! with the providers' own schemes, normalized, and checked against the schema.

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{Malformed, Source};
use crate::event::SignatureEvent;
use crate::verify::{Inbound, VerifyError};

pub const NOW: i64 = 1_700_000_000;

/// A source from a `[[sources]]` table body (id `s`).
pub fn source(extra_toml: &str) -> Source {
    let toml = format!("[[sources]]\nid = \"s\"\n{extra_toml}\n");
    crate::app::load_str(&toml)
        .unwrap_or_else(|e| panic!("{e}"))
        .sources
        .remove(0)
}

/// Why a test request failed; the fields are read through `Debug` in assertions.
#[derive(Debug)]
#[allow(dead_code)]
pub enum Failure {
    Auth(VerifyError),
    Malformed(Malformed),
}

/// Signs `body` for `src`, adds `extra` headers and a query, then authenticates
/// and normalizes it.
pub fn run(
    src: &Source,
    body: &str,
    extra: &[(&str, &str)],
    query: Option<&str>,
) -> Result<Vec<SignatureEvent>, Failure> {
    run_signed_by(src, src, body, extra, query)
}

/// Like [`run`], but signed with `signer`'s key and checked with `verifier`'s.
pub fn run_signed_by(
    signer: &Source,
    verifier: &Source,
    body: &str,
    extra: &[(&str, &str)],
    query: Option<&str>,
) -> Result<Vec<SignatureEvent>, Failure> {
    let src = verifier;
    let signed = signer.sign(body.as_bytes(), NOW, "msg_test_1").unwrap();
    let mut headers = HeaderMap::new();
    for (k, v) in signed
        .signature
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra.iter().copied())
    {
        headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let q = match (signed.signature.query.as_deref(), query) {
        (Some(a), Some(b)) => Some(format!("{a}&{b}")),
        (a, b) => a.or(b).map(str::to_owned),
    };
    let req = Inbound {
        headers: &headers,
        query: q.as_deref(),
        token: signed.signature.token.as_deref(),
        body: &signed.body,
        now: NOW + 1,
    };
    let (verified, pre) = src.authenticate(&req).map_err(Failure::Auth)?;
    let events = src
        .normalize(&req, &verified, pre, NOW * 1000)
        .map_err(Failure::Malformed)?;
    for e in &events {
        assert_valid(e);
    }
    Ok(events)
}

/// Authenticates `signed` (as `src.sign` made it) at unix time `now`, with
/// `token` as the `{token}` path segment instead of the signed one, and the
/// signed headers with `content_type` replacing theirs when given.
pub fn authenticate_at(
    src: &Source,
    signed: &super::SignedRequest,
    now: i64,
    token: Option<Option<&str>>,
    content_type: Option<&str>,
) -> Result<(crate::verify::Verified, super::Preparsed), VerifyError> {
    let mut headers = HeaderMap::new();
    for (k, v) in &signed.signature.headers {
        headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    if let Some(ct) = content_type {
        headers.insert("content-type", HeaderValue::from_str(ct).unwrap());
    }
    let req = Inbound {
        headers: &headers,
        query: signed.signature.query.as_deref(),
        token: token.unwrap_or(signed.signature.token.as_deref()),
        body: &signed.body,
        now,
    };
    src.authenticate(&req)
}

fn schema() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let text = include_str!("../../schema/signature-event.v1.json");
        let schema: serde_json::Value = serde_json::from_str(text).unwrap();
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("schema compiles")
    })
}

/// Panics with every violation if `e` does not validate against the v1 schema.
pub fn assert_valid(e: &SignatureEvent) {
    let v = serde_json::to_value(e).unwrap();
    let errors: Vec<String> = schema()
        .iter_errors(&v)
        .map(|err| format!("{err} at {}", err.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "event violates the schema: {errors:?}\n{v:#}"
    );
}
