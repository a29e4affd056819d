//! Webhook authentication: the signature schemes providers share (pure, no I/O).
//!
//! Everything here works on the raw request bytes and compares secrets and MACs in
//! constant time with `subtle`. The only way to obtain a [`Verified`] value is to
//! pass one of the schemes in [`scheme`], so code that needs an authenticated
//! request takes a `&Verified` and cannot be reached by an unauthenticated one.

pub mod mac;
pub mod scheme;

pub use scheme::{Algorithm, Encoding, HeaderMac, Scheme, Template, TemplatePart};

use std::fmt;

/// Key material for one configured secret. Never printed.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn new(bytes: Vec<u8>) -> Key {
        Key(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// A Standard Webhooks secret, `whsec_<base64>` (or the base64 alone): the
    /// key is the decoded bytes. `None` when it is not one.
    pub fn from_whsec(v: &str) -> Option<Key> {
        use base64::Engine as _;
        let b64 = v.strip_prefix("whsec_").unwrap_or(v);
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .filter(|k| !k.is_empty())
            .map(Key)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([redacted])")
    }
}

/// The parts of a request a scheme may look at.
pub struct Inbound<'a> {
    pub headers: &'a http::HeaderMap,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The `{token}` path segment of `/hooks/{source}/{token}`.
    pub token: Option<&'a str>,
    pub body: &'a [u8],
    /// Current time, unix seconds (injected so tests control it).
    pub now: i64,
}

impl Inbound<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query?;
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// Proof that a request passed authentication. Only this module constructs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    method: &'static str,
    key_index: Option<usize>,
    covers_body: bool,
}

impl Verified {
    fn new(method: &'static str, key_index: Option<usize>, covers_body: bool) -> Verified {
        Verified {
            method,
            key_index,
            covers_body,
        }
    }

    pub fn method(&self) -> &'static str {
        self.method
    }

    pub fn key_index(&self) -> Option<usize> {
        self.key_index
    }

    pub fn covers_body(&self) -> bool {
        self.covers_body
    }
}

/// Why authentication failed. Safe to log and to count: it never holds a secret
/// or an expected MAC.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("timestamp outside the tolerance window")]
    Stale,
    #[error("no configured secret matches")]
    NoMatch,
    /// Credentials the source does not take (a URL token where none is set).
    #[error("unexpected {0}")]
    Unexpected(&'static str),
}

impl VerifyError {
    /// A short stable label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::Missing(_) => "missing_credentials",
            VerifyError::Malformed(_) => "malformed_credentials",
            VerifyError::Stale => "stale_timestamp",
            VerifyError::NoMatch => "signature_mismatch",
            VerifyError::Unexpected(_) => "unexpected_credentials",
        }
    }
}
