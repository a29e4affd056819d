//! The offline subcommands: `config check`, `sign` (which prints what makes a
//! body a validly signed webhook for a source, as a curl command or JSON) and
//! `route test` (which routes an event matches, and why); `audit verify` and
//! `audit export` ([`audit`]); `quarantine list|release|reject` ([`quarantine`],
//! a client of a running gateway's admin API).

pub mod audit;
pub mod quarantine;

use std::net::SocketAddr;

use serde_json::json;

use crate::app::Loaded;
use crate::providers::SignedRequest;

/// Output shape of `countersign sign`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignFormat {
    /// A ready-to-run curl command.
    Curl,
    /// `{"method","url","headers","body"}` for scripts.
    Json,
}

/// Arguments of `countersign sign` after the body was read.
pub struct SignArgs<'a> {
    pub source: &'a str,
    pub body: &'a [u8],
    pub id: Option<String>,
    pub timestamp: Option<i64>,
    pub base_url: Option<String>,
    pub format: SignFormat,
}

/// The base URL to print: `--url`, else the configured listener, reached
/// the way [`crate::dlq::admin_base`] reaches the admin listener (an
/// unspecified address becomes loopback of the same family).
fn base_url(listen: SocketAddr) -> String {
    crate::dlq::admin_base(listen)
}

/// A fresh message id for schemes that sign one (`msg_` + the time in ms and
/// 32 random bits, in hex).
fn fresh_id(now_ms: i64) -> String {
    format!("msg_{now_ms:x}{:08x}", fastrand::u32(..))
}

/// Runs `route test`: every route's verdict on the event in `event` (JSON),
/// with the envelope block in `envelope` (JSON) if given, and the
/// destinations. Returns the text to print.
pub fn route_test(
    loaded: &Loaded,
    event: &[u8],
    envelope: Option<&[u8]>,
) -> Result<String, String> {
    let event: crate::event::SignatureEvent = serde_json::from_slice(event)
        .map_err(|e| format!("--event is not a normalized event: {e}"))?;
    let envelope: Option<crate::event::EnvelopeBlock> = envelope
        .map(serde_json::from_slice)
        .transpose()
        .map_err(|e| format!("--envelope is not an envelope block: {e}"))?;
    let router = crate::app::router(loaded, crate::time::Clock::System);
    let (verdicts, routed) = crate::route::explain(&router, &event, envelope.as_ref());
    let mut out = String::new();
    for v in &verdicts {
        v.render(&mut out);
    }
    if verdicts.is_empty() {
        out.push_str("no [[routes]] configured\n");
    }
    let list = |l: &[String]| {
        if l.is_empty() {
            "(none)".to_owned()
        } else {
            l.join(", ")
        }
    };
    out.push_str(&format!(
        "=> topics: {}\n=> endpoints: {}\n",
        list(&routed.topics),
        list(&routed.endpoints)
    ));
    Ok(out)
}

/// Runs `sign`, returning the text to print.
pub fn sign(loaded: &Loaded, a: SignArgs) -> Result<String, String> {
    let source = loaded
        .sources
        .iter()
        .find(|s| s.id == a.source)
        .ok_or_else(|| format!("no source `{}` in the config", a.source))?;
    let now_ms = crate::time::Clock::System.now_ms();
    let now = a.timestamp.unwrap_or(now_ms / 1000);
    let id = a.id.unwrap_or_else(|| fresh_id(now_ms));
    let signed = source.sign(a.body, now, &id).map_err(|e| e.to_string())?;
    let base = a
        .base_url
        .unwrap_or_else(|| base_url(loaded.config.server.listen));
    let url = url(&base, &source.id, &signed);
    Ok(match a.format {
        SignFormat::Curl => curl(&url, &signed),
        SignFormat::Json => json!({
            "method": "POST",
            "url": url,
            "headers": signed.signature.headers,
            "body": String::from_utf8_lossy(&signed.body),
        })
        .to_string(),
    })
}

fn url(base: &str, source: &str, s: &SignedRequest) -> String {
    let mut u = format!("{}/hooks/{source}", base.trim_end_matches('/'));
    if let Some(t) = &s.signature.token {
        u.push('/');
        u.push_str(t);
    }
    if let Some(q) = &s.signature.query {
        u.push('?');
        u.push_str(q);
    }
    u
}

/// Single-quotes for a POSIX shell.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn curl(url: &str, s: &SignedRequest) -> String {
    let mut out = format!("curl -sS -X POST {}", sh(url));
    for (k, v) in &s.signature.headers {
        // curl sets a multipart Content-Type with its own boundary for -F.
        if s.form_field.is_some() && k.eq_ignore_ascii_case("content-type") {
            continue;
        }
        out.push_str(&format!(" -H {}", sh(&format!("{k}: {v}"))));
    }
    match &s.form_field {
        Some((name, value)) => {
            let field = format!("{name}={}", String::from_utf8_lossy(value));
            out.push_str(&format!(" -F {}", sh(&field)));
        }
        None => {
            if !s
                .signature
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                out.push_str(" -H 'Content-Type: application/json'");
            }
            out.push_str(&format!(
                " --data-binary {}",
                sh(&String::from_utf8_lossy(&s.body))
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(sh("it's"), r"'it'\''s'");
    }

    #[test]
    fn base_url_replaces_unspecified_host() {
        assert_eq!(
            base_url(([0, 0, 0, 0], 8080).into()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(base_url(([10, 0, 0, 1], 80).into()), "http://10.0.0.1:80");
        // The same rule as the admin client's, IPv6 included.
        assert_eq!(base_url("[::]:8080".parse().unwrap()), "http://[::1]:8080");
    }
}
