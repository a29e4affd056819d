//! `/v1/events` (newest first, paged by sequence) and `/v1/events/{id}`.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

use super::api::EventList;
use super::query::{limit, number, param};
use super::response::{self, AdminError};
use super::{Shared, blocking, views};
use crate::store::Record;

/// Most events one list call returns.
pub const MAX_LIST: usize = 1000;
const DEFAULT_LIST: usize = 50;

/// `GET /v1/events/{id}[?source=ID]`: 404 when unknown, 409 (with the
/// sources) when several sources used the id and none was named. With the
/// routes the event matches under the running configuration.
pub async fn get(
    State(admin): Shared,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    blocking(move || {
        let one = find(&admin.store, &id, query.as_deref())?;
        let mut view = views::event(&admin.store, &one);
        view.routes = serde_json::from_slice::<crate::event::SignatureEvent>(&one.json)
            .ok()
            .map(|e| {
                let (verdicts, _) = crate::route::explain(&admin.router, &e, None);
                verdicts
                    .into_iter()
                    .filter(|v| v.matched)
                    .map(|v| v.label)
                    .collect()
            });
        Ok(response::ok(view))
    })
    .await
}

/// The event with this id (of `?source=` when given): 404 when unknown,
/// 409 (with the sources) when several sources used the id and none was named.
pub(super) fn find(
    store: &crate::store::Store,
    id: &str,
    query: Option<&str>,
) -> Result<Record, AdminError> {
    let source = param(query, "source");
    let mut found: Vec<Record> = store
        .get(id)?
        .into_iter()
        .filter(|r| source.as_deref().is_none_or(|s| s == r.source))
        .collect();
    match found.len() {
        0 => Err(AdminError::NotFound("no such event")),
        1 => Ok(found.remove(0)),
        _ => Err(AdminError::Ambiguous(
            found.into_iter().map(|r| r.source).collect(),
        )),
    }
}

/// `GET /v1/events?limit=N&before=SEQ`.
pub async fn list(State(admin): Shared, RawQuery(query): RawQuery) -> Result<Response, AdminError> {
    blocking(move || {
        let q = query.as_deref();
        let limit = limit(q, DEFAULT_LIST, MAX_LIST)?;
        let records = admin.store.list(limit, number(q, "before")?)?;
        let mut next_before = (records.len() == limit)
            .then(|| records.last().map(|r| r.seq))
            .flatten();
        // A page stops before its body would pass
        // server.admin_max_response_bytes (one event at least), and says
        // where to go on.
        let mut events = Vec::with_capacity(records.len());
        let mut bytes = 0usize;
        for r in &records {
            let view = views::event(&admin.store, r);
            bytes += serde_json::to_vec(&view).map_or(0, |v| v.len());
            if !events.is_empty() && bytes > admin.max_response_bytes {
                next_before = events
                    .last()
                    .map(|e: &super::api::EventView| e.state.sequence);
                break;
            }
            events.push(view);
        }
        Ok(response::ok(EventList {
            events,
            next_before,
        }))
    })
    .await
}
