//! `[[sources]]`: a provider with its secrets, limits and field mapping.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{RateLimit, SecretRef, dur, is_default};
use crate::event::{Kind, Provider};
use crate::verify::{Algorithm, Encoding};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Path segment: webhooks arrive at `/hooks/{id}`.
    pub id: String,
    pub provider: Provider,
    /// HMAC keys, shared secrets, URL tokens or client ids, per provider. Any one
    /// matching authenticates (rotation).
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    /// A secret URL path segment required on top of the provider's scheme:
    /// when set, only `/hooks/{id}/{token}` is accepted (anything else is
    /// 401). For providers whose own scheme is weak (Dropbox Sign's
    /// `event_hash` does not cover the body; Adobe Sign's client id is
    /// public). A reference like the secrets (`env:`, `file:`, literal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_token: Option<SecretRef>,
    /// Allowed clock difference for schemes with a timestamp.
    #[serde(with = "dur", default = "default_tolerance")]
    pub tolerance: Duration,
    /// Webhooks per second this source may store, and burst. Unset: no limit.
    /// Checked after authentication (forged requests do not use it up); over
    /// it: 429 with `Retry-After`, nothing stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Overrides `server.max_body_bytes` for this source (Adobe Sign can send 10 MB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// Provider event type → kind, overriding the built-in table.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kinds: BTreeMap<String, Kind>,
    /// Where payload-defined providers keep the event's fields (JSON pointers).
    #[serde(default, skip_serializing_if = "is_default")]
    pub fields: FieldMap,
    /// `generic_hmac`: the header carrying the MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `generic_hmac`: text before the encoded MAC, e.g. `sha256=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<Algorithm>,
    /// `generic_hmac`: the signed content, e.g. `{timestamp}.{body}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_header: Option<String>,
    /// Envelope deadline by default: this long after an envelope was first
    /// seen going out for signing (a registration's `deadline` wins). Needs
    /// `[envelopes] enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "dur::opt")]
    pub expire_after: Option<Duration>,
    /// Reminder offsets: `"3d"` after sending, `"-1d"` before the deadline;
    /// each fires `envelope.reminder_due` once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reminders: Vec<String>,
    /// Grace past the deadline before `envelope.escalated`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "dur::opt")]
    pub escalate_after: Option<Duration>,
    /// A JSON Schema (2020-12) file the provider payload must satisfy, or
    /// the event is quarantined (stored, routed only to `quarantined`
    /// routes). Relative paths are relative to the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<std::path::PathBuf>,
    /// Normalized fields that must be present (and well formed) — for every
    /// kind (`"envelope_id"`), or per kind (`{ kinds = [...], fields = [...] }`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<super::Require>,
    /// Redactions applied before anything is stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<super::RedactRule>,
}

fn default_tolerance() -> Duration {
    Duration::from_secs(300)
}

/// JSON pointers (RFC 6901) to the event's fields in a payload-defined body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub envelope_id: Option<String>,
    pub document_id: Option<String>,
    pub signer_id: Option<String>,
    pub signer_email: Option<String>,
    pub signer_name: Option<String>,
    pub signer_role: Option<String>,
    pub occurred_at: Option<String>,
    pub sandbox: Option<String>,
}

impl FieldMap {
    /// Every configured pointer with its key name, for validation.
    pub fn pointers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("event_id", &self.event_id),
            ("event_type", &self.event_type),
            ("envelope_id", &self.envelope_id),
            ("document_id", &self.document_id),
            ("signer_id", &self.signer_id),
            ("signer_email", &self.signer_email),
            ("signer_name", &self.signer_name),
            ("signer_role", &self.signer_role),
            ("occurred_at", &self.occurred_at),
            ("sandbox", &self.sandbox),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|p| (k, p)))
    }
}
