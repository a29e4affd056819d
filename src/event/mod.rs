//! The normalized signature event (schema v1): what every accepted webhook becomes.
//!
//! The JSON shape is published as `schema/signature-event.v1.json`; a test checks
//! that events produced by every normalizer validate against it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

mod block;
mod quarantine;

pub use block::{EnvelopeBlock, EnvelopeState, Progress, SignerState, SignerStatus};
pub use quarantine::{Quarantine, Violation};

/// Version of the event schema written into every event.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened to the envelope, in one vocabulary for all providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Created,
    Sent,
    Viewed,
    SignerCompleted,
    Completed,
    Declined,
    Voided,
    Expired,
    Deleted,
    Reassigned,
    DeliveryFailed,
    AuthFailed,
    Reminder,
    Updated,
    DocumentReady,
    Error,
    Test,
    Other,
    /// Derived by countersign (`origin: "countersign"`): the first sign that
    /// the envelope went out for signing.
    #[serde(rename = "envelope.in_signing")]
    EnvelopeInSigning,
    /// Derived: every signer signed (the provider said so, or every expected
    /// signer of the registration signed). At most once per envelope.
    #[serde(rename = "envelope.all_signed")]
    EnvelopeAllSigned,
    /// Derived: declined, voided, expired or deleted (the reason is in the payload).
    #[serde(rename = "envelope.cancelled")]
    EnvelopeCancelled,
    /// Derived: the archive confirmed the signed document.
    #[serde(rename = "envelope.archived")]
    EnvelopeArchived,
    /// Derived: the archived document's hash differs from the registered one.
    #[serde(rename = "envelope.document_mismatch")]
    EnvelopeDocumentMismatch,
    /// Derived: an event contradicted the envelope's state (e.g. `completed`
    /// after `cancelled`); recorded, never applied.
    #[serde(rename = "envelope.anomaly")]
    EnvelopeAnomaly,
    /// Derived: a reminder is due (a configured offset, or `manual: true`),
    /// with the signers still pending.
    #[serde(rename = "envelope.reminder_due")]
    EnvelopeReminderDue,
    /// Derived: the deadline passed before the envelope completed.
    #[serde(rename = "envelope.overdue")]
    EnvelopeOverdue,
    /// Derived: `escalate_after` past the deadline, still not completed.
    #[serde(rename = "envelope.escalated")]
    EnvelopeEscalated,
}

impl Kind {
    pub const ALL: [Kind; 27] = [
        Kind::Created,
        Kind::Sent,
        Kind::Viewed,
        Kind::SignerCompleted,
        Kind::Completed,
        Kind::Declined,
        Kind::Voided,
        Kind::Expired,
        Kind::Deleted,
        Kind::Reassigned,
        Kind::DeliveryFailed,
        Kind::AuthFailed,
        Kind::Reminder,
        Kind::Updated,
        Kind::DocumentReady,
        Kind::Error,
        Kind::Test,
        Kind::Other,
        Kind::EnvelopeInSigning,
        Kind::EnvelopeAllSigned,
        Kind::EnvelopeCancelled,
        Kind::EnvelopeArchived,
        Kind::EnvelopeDocumentMismatch,
        Kind::EnvelopeAnomaly,
        Kind::EnvelopeReminderDue,
        Kind::EnvelopeOverdue,
        Kind::EnvelopeEscalated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::Sent => "sent",
            Kind::Viewed => "viewed",
            Kind::SignerCompleted => "signer_completed",
            Kind::Completed => "completed",
            Kind::Declined => "declined",
            Kind::Voided => "voided",
            Kind::Expired => "expired",
            Kind::Deleted => "deleted",
            Kind::Reassigned => "reassigned",
            Kind::DeliveryFailed => "delivery_failed",
            Kind::AuthFailed => "auth_failed",
            Kind::Reminder => "reminder",
            Kind::Updated => "updated",
            Kind::DocumentReady => "document_ready",
            Kind::Error => "error",
            Kind::Test => "test",
            Kind::Other => "other",
            Kind::EnvelopeInSigning => "envelope.in_signing",
            Kind::EnvelopeAllSigned => "envelope.all_signed",
            Kind::EnvelopeCancelled => "envelope.cancelled",
            Kind::EnvelopeArchived => "envelope.archived",
            Kind::EnvelopeDocumentMismatch => "envelope.document_mismatch",
            Kind::EnvelopeAnomaly => "envelope.anomaly",
            Kind::EnvelopeReminderDue => "envelope.reminder_due",
            Kind::EnvelopeOverdue => "envelope.overdue",
            Kind::EnvelopeEscalated => "envelope.escalated",
        }
    }

    /// Whether countersign derives this kind itself (from an envelope's
    /// state); providers' events never have it.
    pub fn is_derived(self) -> bool {
        self.as_str().starts_with("envelope.")
    }

    /// The CloudEvents `type`: `countersign.signature.<kind>` for provider
    /// events, `countersign.envelope.<name>` for derived ones.
    pub fn cloudevents_type(self) -> String {
        if self.is_derived() {
            format!("countersign.{}", self.as_str())
        } else {
            format!("countersign.signature.{}", self.as_str())
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event id: the provider's own id, or a stable derived hash (`cs_` + 32 hex).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

/// Longest event id accepted from a provider.
pub const MAX_EVENT_ID_LEN: usize = 200;

impl EventId {
    /// Accepts a provider-supplied id: 1..=200 bytes, printable, no whitespace.
    pub fn parse(s: &str) -> Result<EventId, InvalidId> {
        let ok = !s.is_empty()
            && s.len() <= MAX_EVENT_ID_LEN
            && s.chars().all(|c| !c.is_control() && !c.is_whitespace());
        if ok {
            Ok(EventId(s.to_owned()))
        } else {
            Err(InvalidId)
        }
    }

    /// A derived id from stable fields; see `providers::derive_id`.
    pub(crate) fn derived(hex32: String) -> EventId {
        EventId(format!("cs_{hex32}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("event id must be 1 to 200 printable characters without whitespace")]
pub struct InvalidId;

/// The signer an event is about, where the provider says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Signer {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role: Option<String>,
}

impl Signer {
    /// `None` when no field is known, so empty signers are not emitted.
    pub fn non_empty(self) -> Option<Signer> {
        let empty =
            self.id.is_none() && self.email.is_none() && self.name.is_none() && self.role.is_none();
        (!empty).then_some(self)
    }
}

/// How the webhook was authenticated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Auth {
    /// The scheme, e.g. `hmac_sha256`, `standard_webhooks`, `url_token`.
    pub method: String,
    /// Which configured secret matched (0-based), for rotation tracking.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key_index: Option<usize>,
    /// False when the MAC does not cover the body (Dropbox Sign, tokens, client ids).
    pub covers_body: bool,
}

/// The normalized signature event, schema v1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignatureEvent {
    pub schema_version: u32,
    pub id: EventId,
    pub source: String,
    pub provider: String,
    pub provider_event_type: String,
    pub kind: Kind,
    /// Null for events that concern no envelope (tests, account events).
    pub envelope_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub document_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub signer: Option<Signer>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub occurred_at: Option<String>,
    pub received_at: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sandbox: Option<bool>,
    pub auth: Auth,
    pub payload: Value,
    /// `"countersign"` on derived events (`envelope.*` kinds); absent on
    /// provider events.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub origin: Option<String>,
    /// A derived event's cause: the id of the event that changed the envelope
    /// (absent when an admin action did: registration, archive).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cause: Option<String>,
    /// The envelope's state after this event, with its registration: on every
    /// event of a registered envelope and on every derived event.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub envelope: Option<EnvelopeBlock>,
    /// Present when the event failed its source's plausibility checks
    /// (`quarantined` in the JSON: the event is marked quarantined, with
    /// its violations).
    #[serde(
        rename = "quarantined",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub quarantine: Option<Quarantine>,
}

/// The head of a stored event: what sinks put into message metadata, read
/// without materialising the payload. It is defined here, beside
/// [`SignatureEvent`], and a test reads it back from every serialized event, so
/// a renamed field fails that test instead of dead-lettering messages.
impl SignatureEvent {
    /// Quarantined and not released: only `quarantined = true` routes take it.
    pub fn held(&self) -> bool {
        self.quarantine
            .as_ref()
            .is_some_and(|q| q.released_by.is_none())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventHead<'a> {
    #[serde(borrow)]
    pub id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub source: std::borrow::Cow<'a, str>,
    pub kind: Kind,
    #[serde(borrow, default)]
    pub envelope_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub occurred_at: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub received_at: std::borrow::Cow<'a, str>,
    /// The envelope block's `reference`, when the envelope is registered.
    #[serde(borrow, default)]
    pub envelope: Option<HeadEnvelope<'a>>,
}

/// The part of the `envelope` block sinks put into metadata.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HeadEnvelope<'a> {
    #[serde(borrow, default)]
    pub reference: Option<std::borrow::Cow<'a, str>>,
}

impl EventHead<'_> {
    /// Reads the head of a stored event's JSON.
    pub fn read(json: &[u8]) -> Result<EventHead<'_>, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// The partition key of the event's messages: its envelope, else its id.
    pub fn key(&self) -> &str {
        self.envelope_id.as_deref().unwrap_or(&self.id)
    }

    /// The registered envelope's reference, if any.
    pub fn reference(&self) -> Option<&str> {
        self.envelope.as_ref()?.reference.as_deref()
    }
}

/// The provider ids accepted in `sources[].provider`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    StandardWebhooks,
    Stripe,
    Github,
    Docusign,
    DropboxSign,
    AdobeSign,
    Yousign,
    Boldsign,
    Docuseal,
    ZohoSign,
    Signnow,
    Pandadoc,
    Opensign,
    Documenso,
    Skribble,
    Signius,
    GenericHmac,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::StandardWebhooks => "standard_webhooks",
            Provider::Stripe => "stripe",
            Provider::Github => "github",
            Provider::Docusign => "docusign",
            Provider::DropboxSign => "dropbox_sign",
            Provider::AdobeSign => "adobe_sign",
            Provider::Yousign => "yousign",
            Provider::Boldsign => "boldsign",
            Provider::Docuseal => "docuseal",
            Provider::ZohoSign => "zoho_sign",
            Provider::Signnow => "signnow",
            Provider::Pandadoc => "pandadoc",
            Provider::Opensign => "opensign",
            Provider::Documenso => "documenso",
            Provider::Skribble => "skribble",
            Provider::Signius => "signius",
            Provider::GenericHmac => "generic_hmac",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(Kind::parse("finished"), None);
    }

    #[test]
    fn the_head_reads_back_from_every_serialized_event() {
        let e = SignatureEvent {
            schema_version: SCHEMA_VERSION,
            id: EventId::parse("evt-1").unwrap(),
            source: "ds".into(),
            provider: "docusign".into(),
            provider_event_type: "envelope-completed".into(),
            kind: Kind::Completed,
            // A quote is escaped in JSON: the head must own that string.
            envelope_id: Some("env-\"q\"".into()),
            document_id: None,
            signer: None,
            occurred_at: Some("2026-01-01T00:00:00.000Z".into()),
            received_at: "2026-01-01T00:00:01.000Z".into(),
            sandbox: None,
            auth: Auth {
                method: "hmac_sha256".into(),
                key_index: Some(0),
                covers_body: true,
            },
            payload: serde_json::json!({"nested": {"id": "not this one"}}),
            origin: None,
            cause: None,
            envelope: Some(EnvelopeBlock {
                state: EnvelopeState::Completed,
                reference: Some("CRM-\"7\"".into()),
                metadata: None,
                progress: Progress::default(),
                signers: Vec::new(),
            }),
            quarantine: None,
        };
        let json = serde_json::to_vec(&e).unwrap();
        let h = EventHead::read(&json).unwrap();
        assert_eq!(h.id, e.id.as_str());
        assert_eq!(h.source, "ds");
        assert_eq!(h.kind, Kind::Completed);
        assert_eq!(h.key(), "env-\"q\"");
        assert_eq!(h.occurred_at.as_deref(), e.occurred_at.as_deref());
        assert_eq!(h.received_at, e.received_at);
        assert_eq!(h.reference(), Some("CRM-\"7\""));
        let no_envelope = SignatureEvent {
            envelope_id: None,
            occurred_at: None,
            envelope: None,
            ..e
        };
        let json = serde_json::to_vec(&no_envelope).unwrap();
        let h = EventHead::read(&json).unwrap();
        assert_eq!(h.key(), no_envelope.id.as_str());
        assert_eq!(h.occurred_at, None);
        assert_eq!(h.reference(), None);
    }

    #[test]
    fn event_id_rules() {
        assert!(EventId::parse("msg_p5jXN8AQM9LWM0D4loKWxJek").is_ok());
        assert_eq!(EventId::parse(""), Err(InvalidId));
        assert_eq!(EventId::parse("a b"), Err(InvalidId));
        assert_eq!(EventId::parse("a\nb"), Err(InvalidId));
        assert_eq!(EventId::parse(&"x".repeat(201)), Err(InvalidId));
        assert!(EventId::parse(&"x".repeat(200)).is_ok());
    }
}
