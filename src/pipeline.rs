//! The ingest pipeline, independent of HTTP: authenticate → normalize →
//! screen (the source's plausibility checks, then its redactions) → dedup and
//! durable commit. Returns what happened as data; `http/` decides what the
//! provider is told.
//!
//! An event that fails its checks is not rejected (the provider would retry
//! it forever): it is stored held in quarantine and routed only to
//! `quarantined = true` routes until a person releases it ([`released`]).

use std::collections::HashMap;
use std::sync::Arc;

use tracing::Instrument as _;

use crate::event::{EventId, SignatureEvent};
use crate::providers::{Answer, Handshake, Malformed, Source};
use crate::route::Router;
use crate::store::{
    AuditFacts, Claim, Facts, LateRoute, NewEvent, Store, StoreError, WebhookFacts,
};
use crate::time::Clock;
use crate::verify::{Inbound, VerifyError};

/// The result of a webhook that was taken.
#[derive(Debug)]
pub enum Accepted {
    /// Events stored (or recognized as duplicates), with the answer to give.
    Events {
        events: Vec<(EventId, Claim)>,
        answer: Answer,
    },
    /// A handshake answered without storing anything.
    Handshake(Handshake),
}

impl Accepted {
    /// True when every event was a duplicate.
    pub fn all_duplicates(&self) -> bool {
        match self {
            Accepted::Events { events, .. } => {
                !events.is_empty()
                    && events
                        .iter()
                        .all(|(_, o)| matches!(o, Claim::Duplicate { .. }))
            }
            Accepted::Handshake(_) => false,
        }
    }
}

/// Why a webhook was not taken. Each case changes nothing in the store.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("authentication failed: {0}")]
    Unauthorized(#[from] VerifyError),
    #[error("malformed payload: {0}")]
    Malformed(#[from] Malformed),
    #[error("method not allowed for this source")]
    MethodNotAllowed,
    /// The source is over its `rate_limit`; retry after this many seconds.
    #[error("source over its rate limit")]
    RateLimited(u64),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl IngestError {
    /// Stable label for logs and metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            IngestError::Unauthorized(_) => "unauthorized",
            IngestError::Malformed(_) => "invalid",
            IngestError::MethodNotAllowed => "method_not_allowed",
            IngestError::RateLimited(_) => "rate_limited",
            IngestError::Store(StoreError::Overloaded) => "overloaded",
            IngestError::Store(_) => "error",
        }
    }
}

/// What a source checks and hides before anything is stored.
#[derive(Debug, Clone, Default)]
pub struct Screen {
    pub checks: Option<Arc<crate::plausibility::Checks>>,
    pub redact: Option<crate::privacy::Redactor>,
}

impl Screen {
    /// Checks `e` (marking it quarantined when it fails), then redacts it:
    /// the checks see the complete event, the store only the redacted one.
    pub fn apply(&self, e: &mut SignatureEvent) {
        if let Some(c) = &self.checks {
            c.screen(e);
        }
        if let Some(r) = &self.redact {
            redact(r, e);
        }
    }
}

/// Applies a source's rules (which only reach `/payload`, `/signer` and
/// `/document_id`) to the event's own fields.
fn redact(r: &crate::privacy::Redactor, e: &mut SignatureEvent) {
    use serde_json::{Map, Value};
    let mut root = Map::with_capacity(3);
    root.insert("payload".into(), std::mem::take(&mut e.payload));
    if let Some(s) = e.signer.take() {
        root.insert(
            "signer".into(),
            serde_json::to_value(s).unwrap_or(Value::Null),
        );
    }
    if let Some(d) = e.document_id.take() {
        root.insert("document_id".into(), Value::String(d));
    }
    let mut root = Value::Object(root);
    r.apply(&mut root);
    let Value::Object(mut root) = root else {
        return;
    };
    e.payload = root.remove("payload").unwrap_or(Value::Null);
    // Rules keep these shapes (checked at load): a failure cannot leak,
    // it can only lose the field.
    e.signer = root
        .remove("signer")
        .and_then(|v| serde_json::from_value::<crate::event::Signer>(v).ok())
        .and_then(crate::event::Signer::non_empty);
    e.document_id = root.remove("document_id").and_then(|v| match v {
        Value::String(s) => Some(s),
        _ => None,
    });
}

/// The configured sources and the store.
pub struct Pipeline {
    sources: HashMap<String, Arc<Source>>,
    /// Sources with a `rate_limit`.
    limiters: HashMap<String, crate::ratelimit::Direct>,
    store: Store,
    router: Router,
    /// Sources with checks or redactions.
    screens: HashMap<String, Screen>,
}

impl Pipeline {
    pub fn new(
        sources: Vec<Source>,
        screens: HashMap<String, Screen>,
        store: Store,
        router: Router,
        clock: Clock,
    ) -> Pipeline {
        let limiters = sources
            .iter()
            .filter_map(|s| {
                let rl = s.rate_limit?;
                Some((s.id.clone(), crate::ratelimit::direct(&rl, clock.clone())))
            })
            .collect();
        let sources = sources
            .into_iter()
            .map(|s| (s.id.clone(), Arc::new(s)))
            .collect();
        Pipeline {
            sources,
            limiters,
            store,
            router,
            screens,
        }
    }

    pub fn source(&self, id: &str) -> Option<Arc<Source>> {
        self.sources.get(id).cloned()
    }

    /// Handles one request for `source`. `get` marks a GET (handshakes only);
    /// `traceparent` is the trace the events' messages and deliveries continue.
    pub async fn ingest(
        &self,
        source: &Source,
        get: bool,
        req: &Inbound<'_>,
        received_ms: i64,
        traceparent: Option<&str>,
        client: Option<std::net::IpAddr>,
    ) -> Result<Accepted, IngestError> {
        if get {
            return match source.handshake(req, true) {
                Some(h) => Ok(Accepted::Handshake(h?)),
                None => Err(IngestError::MethodNotAllowed),
            };
        }
        let (verified, pre) = match source.authenticate(req) {
            Ok(v) => v,
            Err(e) => {
                if let Some(Ok(h)) = source.handshake(req, false) {
                    return Ok(Accepted::Handshake(h));
                }
                return Err(e.into());
            }
        };
        // After authentication, so forged requests cannot use up the budget.
        if let Some(l) = self.limiters.get(&source.id) {
            l.check().map_err(|n| {
                IngestError::RateLimited(crate::ratelimit::retry_after(&n, l.clock()))
            })?;
        }
        let mut events = source.normalize(req, &verified, pre, received_ms)?;
        if let Some(screen) = self.screens.get(&source.id) {
            events.iter_mut().for_each(|e| screen.apply(e));
        }
        let tracking = self.store.tracking();
        // The audit log records the raw body's hash (one per request).
        let body_sha256 = self.store.auditing().then(|| {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(req.body))
        });
        let new = events
            .iter()
            .map(|e| {
                let mut n = to_new(e, received_ms, &self.router, traceparent, tracking);
                n.audit = body_sha256.as_deref().map(|b| {
                    AuditFacts::new(&WebhookFacts {
                        source: &e.source,
                        provider: &e.provider,
                        event_id: e.id.as_str(),
                        envelope_id: e.envelope_id.as_deref(),
                        body_sha256: b,
                        method: &e.auth.method,
                        key_index: e.auth.key_index,
                        client,
                        received_ms,
                    })
                });
                n
            })
            .collect();
        let outcomes = self
            .store
            .commit(new)
            .instrument(tracing::info_span!("store.commit", events = events.len()))
            .await?;
        let events = events.into_iter().map(|e| e.id).zip(outcomes).collect();
        Ok(Accepted::Events {
            events,
            answer: source.answer(req),
        })
    }
}

/// A held event as released by `by` at `now_ms`: its `quarantined` block
/// says so, and it is routed and tracked like a sound one (the store
/// applies it if it is still held).
pub fn released(
    mut e: SignatureEvent,
    received_ms: i64,
    by: &str,
    now_ms: i64,
    router: &Router,
    tracking: bool,
) -> NewEvent {
    if let Some(q) = e.quarantine.as_mut() {
        q.released_by = Some(by.to_owned());
        q.released_at = Some(crate::time::format_ms(now_ms));
    }
    to_new(&e, received_ms, router, None, tracking)
}

/// The event as the store takes it; with envelope `tracking`, what the
/// envelope needs of it (nothing is copied for that otherwise). A held event
/// is not tracked: its envelope learns of it when it is released.
fn to_new(
    e: &SignatureEvent,
    received_ms: i64,
    router: &Router,
    traceparent: Option<&str>,
    tracking: bool,
) -> NewEvent {
    let held = e.held();
    let tracked = e.envelope_id.as_ref().filter(|_| tracking && !held);
    let (routed, late) = match tracked {
        Some(_) => router.route_deferring(e),
        None => (router.route(e), None),
    };
    NewEvent {
        traceparent: traceparent.map(str::to_owned),
        topics: routed.topics,
        endpoints: routed.endpoints,
        envelope: e
            .envelope_id
            .clone()
            .unwrap_or_else(|| e.id.as_str().to_owned()),
        facts: tracked.map(|envelope_id| Facts {
            envelope_id: envelope_id.clone(),
            provider: e.provider.clone(),
            kind: e.kind,
            signer: e.signer.clone(),
            occurred_at: e.occurred_at.clone(),
            received_at: e.received_at.clone(),
            late_route: late.map(|d| {
                LateRoute(Arc::new(move |block| {
                    let r = d.route(block);
                    (r.topics, r.endpoints)
                }))
            }),
        }),
        source: e.source.clone(),
        id: e.id.as_str().to_owned(),
        received_ms,
        json: serde_json::to_vec(e).expect("events serialize"),
        audit: None,
        held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RedactMode;
    use crate::privacy::tests::rule;

    fn event() -> SignatureEvent {
        serde_json::from_value(serde_json::json!({
            "schema_version": 1, "id": "e1", "source": "s", "provider": "generic_hmac",
            "provider_event_type": "signed", "kind": "signer_completed",
            "envelope_id": "env-1", "document_id": "doc-1", "received_at": "2026-12-01T00:00:00Z",
            "signer": { "email": "jane@example.com", "name": "Jane" },
            "auth": { "method": "hmac_sha256", "covers_body": true },
            "payload": { "signer": { "email": "jane@example.com" }, "ip": "203.0.113.9" }
        }))
        .unwrap()
    }

    #[test]
    fn a_source_redacts_the_event_it_stores_and_keeps_it_an_event() {
        let r = crate::privacy::Redactor::new(
            &[
                rule("/signer/email", RedactMode::Remove),
                rule("/signer/name", RedactMode::Remove),
                rule("/document_id", RedactMode::Mask),
                rule("/payload/ip", RedactMode::Remove),
                rule("/payload/signer/email", RedactMode::Hash),
            ],
            Some(b"0123456789abcdef"),
        )
        .unwrap();
        let screen = Screen {
            checks: None,
            redact: Some(r),
        };
        let mut e = event();
        screen.apply(&mut e);
        assert_eq!(e.signer, None, "a signer with nothing left is no signer");
        assert_eq!(e.document_id.as_deref(), Some("d***"));
        assert!(e.payload.get("ip").is_none());
        assert_eq!(e.payload["signer"]["email"].as_str().unwrap().len(), 64);
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains("jane@example.com") && !json.contains("203.0.113.9"));
        crate::providers::testkit::assert_valid(&e);
    }

    /// Checks that require the normalized field `field`.
    fn requiring(field: &str) -> Option<Arc<crate::plausibility::Checks>> {
        crate::plausibility::Checks::compile(None, &[crate::config::Require::Field(field.into())])
            .unwrap()
            .map(Arc::new)
    }

    #[test]
    fn checks_see_the_event_before_redaction() {
        let checks = requiring("signer.email");
        let redact =
            crate::privacy::Redactor::new(&[rule("/signer/email", RedactMode::Remove)], None);
        let mut e = event();
        Screen { checks, redact }.apply(&mut e);
        assert!(e.quarantine.is_none(), "the e-mail was there when checked");
        assert!(e.signer.unwrap().email.is_none());
    }

    #[test]
    fn a_failing_event_is_marked_quarantined_and_still_valid() {
        let checks = requiring("occurred_at");
        let mut e = event();
        Screen {
            checks,
            redact: None,
        }
        .apply(&mut e);
        assert!(e.held());
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["quarantined"]["violations"][0]["pointer"], "/occurred_at");
        crate::providers::testkit::assert_valid(&e);
        let back: SignatureEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
