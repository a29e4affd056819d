//! HTTP endpoints: their workers' state, and enabling one again after a 410
//! Gone disabled it.

use axum::extract::{Extension, Path, State};
use axum::response::Response;

use super::api::{Disabled, Enabled, EndpointList, EndpointView, Purged};
use super::response::{self, AdminError};
use super::{Shared, blocking};
use crate::sink::webhook::{Endpoint, EndpointStatus};
use crate::store::{Actor, Backlog};
use crate::time::format_ms;

/// `GET /v1/endpoints`.
pub async fn list(State(admin): Shared) -> Result<Response, AdminError> {
    blocking(move || {
        let endpoints = admin
            .endpoints
            .iter()
            .map(|(ep, status)| {
                let backlog = admin.store.http_backlog(&ep.id).ok();
                view(&admin, ep, status, backlog.as_ref())
            })
            .collect();
        Ok(response::ok(EndpointList { endpoints }))
    })
    .await
}

/// One endpoint as the API shows it, with its `backlog` read by the caller
/// (store reads: call it off the async workers).
pub fn view(
    admin: &super::Admin,
    ep: &Endpoint,
    status: &EndpointStatus,
    backlog: Option<&Backlog>,
) -> EndpointView {
    let snap = status
        .snapshot
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    // The store is the record (an enable through the API writes it at once;
    // the worker's snapshot follows when it wakes).
    let disabled = admin.store.disabled(&ep.id).unwrap_or(snap.disabled);
    let state = match (&disabled, snap.paused_until_ms) {
        (Some(_), _) => "disabled",
        (None, Some(_)) => "paused",
        (None, None) => snap.breaker,
    };
    EndpointView {
        id: ep.id.clone(),
        url: ep.display_url(),
        state: state.into(),
        breaker: snap.breaker.into(),
        disabled: disabled.as_ref().map(|(at, why)| Disabled {
            at: format_ms(*at),
            reason: why.clone(),
        }),
        paused_until: snap.paused_until_ms.map(format_ms),
        in_flight: snap.in_flight,
        pending: backlog.map(|b| b.count),
        dead_letters: admin.store.dead_letter_count(&ep.id).ok(),
        delivered: status.delivered.get(),
        failed_attempts: status.failed_attempts(),
        dead_lettered: status.dead_lettered.get(),
    }
}

/// `POST /v1/endpoints/{id}/enable`.
pub async fn enable(
    State(admin): Shared,
    Extension(by): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    if !admin.endpoints.iter().any(|(e, _)| e.id == id) {
        return Err(AdminError::NotFound("not found"));
    }
    admin.store.set_disabled(&id, None, Some(by)).await?;
    tracing::info!(endpoint = %id, "endpoint enabled through the admin API");
    Ok(response::ok(Enabled { enabled: id }))
}

/// `DELETE /v1/endpoints/{id}/deliveries`: drops the waiting deliveries and
/// dead letters of an endpoint that is no longer configured (409 for one that
/// is: remove it from the config first).
pub async fn purge(
    State(admin): Shared,
    Extension(by): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    if admin.endpoints.iter().any(|(e, _)| e.id == id) {
        return Err(AdminError::Conflict(
            "the endpoint is configured: remove it from the config first (dead letters of a configured endpoint: DELETE /v1/dead-letters/{id})",
        ));
    }
    let purged = admin.store.purge_endpoint(&id, by).await?;
    tracing::warn!(endpoint = %id, purged, "deliveries of an unconfigured endpoint purged through the admin API");
    Ok(response::ok(Purged {
        endpoint: id,
        purged,
    }))
}
