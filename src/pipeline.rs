//! The ingest pipeline, independent of HTTP: authenticate → normalize → dedup and
//! durable commit. Returns what happened as data; `http/` decides what the
//! provider is told.

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::{EventId, SignatureEvent};
use crate::providers::{Answer, Handshake, Malformed, Source};
use crate::route::Router;
use crate::store::{NewEvent, Outcome, Store, StoreError};
use crate::verify::{Inbound, VerifyError};

/// The result of a webhook that was taken.
#[derive(Debug)]
pub enum Accepted {
    /// Events stored (or recognized as duplicates), with the answer to give.
    Events {
        events: Vec<(EventId, Outcome)>,
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
                        .all(|(_, o)| matches!(o, Outcome::Duplicate { .. }))
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
            IngestError::Store(StoreError::Overloaded) => "overloaded",
            IngestError::Store(_) => "error",
        }
    }
}

/// The configured sources and the store.
pub struct Pipeline {
    sources: HashMap<String, Arc<Source>>,
    store: Store,
    router: Router,
}

impl Pipeline {
    pub fn new(sources: Vec<Source>, store: Store, router: Router) -> Pipeline {
        let sources = sources
            .into_iter()
            .map(|s| (s.id.clone(), Arc::new(s)))
            .collect();
        Pipeline {
            sources,
            store,
            router,
        }
    }

    pub fn source(&self, id: &str) -> Option<Arc<Source>> {
        self.sources.get(id).cloned()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Handles one request for `source`. `get` marks a GET (handshakes only).
    pub async fn ingest(
        &self,
        source: &Source,
        get: bool,
        req: &Inbound<'_>,
        received_ms: i64,
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
        let events = source.normalize(req, &verified, pre, received_ms)?;
        let new = events
            .iter()
            .map(|e| to_new(e, received_ms, &self.router, req))
            .collect();
        let outcomes = self.store.commit(new).await?;
        let events = events.into_iter().map(|e| e.id).zip(outcomes).collect();
        Ok(Accepted::Events {
            events,
            answer: source.answer(req),
        })
    }
}

fn to_new(e: &SignatureEvent, received_ms: i64, router: &Router, req: &Inbound) -> NewEvent {
    NewEvent {
        traceparent: req
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::sink::trace::parse)
            .map(str::to_owned),
        topics: router.topics(e),
        endpoints: router.endpoints(e),
        envelope: e
            .envelope_id
            .clone()
            .unwrap_or_else(|| e.id.as_str().to_owned()),
        source: e.source.clone(),
        id: e.id.as_str().to_owned(),
        received_ms,
        json: serde_json::to_vec(e).expect("events serialize"),
    }
}
