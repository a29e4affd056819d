//! Quarantined events: `GET /v1/quarantine?status=&source=&limit=&before=`,
//! `POST /v1/events/{id}/release` (routes it now, and applies it to its
//! envelope) and `POST /v1/events/{id}/reject` (it never routes). Both take
//! `?source=` when several sources used the id, record who decided, and
//! answer 409 when the event is not held.

use axum::extract::{Extension, Path, RawQuery, State};
use axum::response::Response;
use serde_json::Value;

use super::api::{Decided, QuarantineList, QuarantinedView};
use super::query::{limit, number, param};
use super::response::{self, AdminError};
use super::{Shared, blocking, events, views};
use crate::event::SignatureEvent;
use crate::store::{Actor, QuarantineOp, QuarantineStatus};

const DEFAULT_LIST: usize = 50;

/// `GET /v1/quarantine` (held events by default; `status=all` for every one).
pub async fn list(State(admin): Shared, RawQuery(query): RawQuery) -> Result<Response, AdminError> {
    blocking(move || {
        let q = query.as_deref();
        let status = match param(q, "status").as_deref() {
            None | Some("held") => Some(QuarantineStatus::Held),
            Some("all") => None,
            Some(s) => Some(QuarantineStatus::parse(s).ok_or_else(|| {
                AdminError::BadRequest("status must be held, released, rejected or all".into())
            })?),
        };
        let limit = limit(q, DEFAULT_LIST, events::MAX_LIST)?;
        let source = param(q, "source");
        let (found, next_before) =
            admin
                .store
                .quarantined(status, source.as_deref(), number(q, "before")?, limit)?;
        let events = found
            .into_iter()
            .map(|h| {
                let e: Value = serde_json::from_slice(&h.record.json).unwrap_or(Value::Null);
                let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_owned);
                QuarantinedView {
                    sequence: h.record.seq,
                    id: h.record.id.clone(),
                    source: h.record.source.clone(),
                    kind: text("kind"),
                    envelope_id: text("envelope_id"),
                    received_at: crate::time::format_ms(h.record.received_ms),
                    state: views::quarantine(&h.held),
                    violations: e
                        .pointer("/quarantined/violations")
                        .cloned()
                        .unwrap_or(Value::Array(Vec::new())),
                }
            })
            .collect();
        Ok(response::ok(QuarantineList {
            events,
            next_before,
        }))
    })
    .await
}

/// `POST /v1/events/{id}/release[?source=ID]`.
pub async fn release(
    State(admin): Shared,
    Extension(by): Extension<Actor>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    decide(admin, by, id, query, true).await
}

/// `POST /v1/events/{id}/reject[?source=ID]`.
pub async fn reject(
    State(admin): Shared,
    Extension(by): Extension<Actor>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    decide(admin, by, id, query, false).await
}

async fn decide(
    admin: std::sync::Arc<super::Admin>,
    by: Actor,
    id: String,
    query: Option<String>,
    release: bool,
) -> Result<Response, AdminError> {
    let a = admin.clone();
    let (record, held) = blocking(move || {
        let record = events::find(&a.store, &id, query.as_deref())?;
        let held = a.store.held(record.seq)?;
        Ok((record, held))
    })
    .await?;
    if held.as_ref().map(|h| h.status) != Some(QuarantineStatus::Held) {
        return Err(not_held(held.map(|h| h.status)));
    }
    let op = if release {
        // (serde's message could quote a stored value: not repeated here)
        let e: SignatureEvent = serde_json::from_slice(&record.json)
            .map_err(|_| AdminError::State("the stored event is not a readable event".into()))?;
        let event = crate::pipeline::released(
            e,
            record.received_ms,
            &by.label(),
            admin.clock.now_ms(),
            &admin.router,
            admin.store.tracking(),
        );
        QuarantineOp::Release {
            seq: record.seq,
            event: Box::new(event),
        }
    } else {
        QuarantineOp::Reject { seq: record.seq }
    };
    if !admin.store.decide(op, Some(by)).await? {
        // Decided by someone else in between.
        let (a, seq) = (admin.clone(), record.seq);
        let now = blocking(move || Ok(a.store.held(seq)?)).await?;
        return Err(not_held(now.map(|h| h.status)));
    }
    let status = if release { "released" } else { "rejected" };
    Ok(response::ok(Decided {
        id: record.id,
        source: record.source,
        sequence: record.seq,
        status: status.to_owned(),
    }))
}

fn not_held(status: Option<QuarantineStatus>) -> AdminError {
    AdminError::State(match status {
        None => "the event is not quarantined".to_owned(),
        Some(s) => format!("the event is not held: it was {} already", s.as_str()),
    })
}
