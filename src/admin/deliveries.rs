//! Dead letters of HTTP deliveries: list, show, replay (one, or all of an
//! endpoint's), discard. A dead letter's id is `{endpoint}:{sequence}`.

use axum::extract::{Extension, Path, RawQuery, State};
use axum::response::Response;

use super::api::{DeadLetterDetail, DeadLetterList, Discarded, Replayed, ReplayedAll};
use super::query::{limit, param};
use super::response::{self, AdminError};
use super::views::{self, dead_letter_id, parse_dead_letter_id};
use super::{Shared, blocking};
use crate::store::{Actor, HttpOp};

/// Most dead letters one list call returns, and one replay transaction takes.
pub const MAX_LIST: usize = 1000;
const DEFAULT_LIST: usize = 100;

fn parse_id(id: &str) -> Result<(String, u64), AdminError> {
    parse_dead_letter_id(id).ok_or(AdminError::NotFound("not found"))
}

/// `GET /v1/dead-letters?endpoint=ID&limit=N&after=ID`.
pub async fn list(State(admin): Shared, RawQuery(query): RawQuery) -> Result<Response, AdminError> {
    blocking(move || {
        let q = query.as_deref();
        let limit = limit(q, DEFAULT_LIST, MAX_LIST)?;
        let endpoint = param(q, "endpoint");
        let after = param(q, "after")
            .map(|a| parse_dead_letter_id(&a))
            .map(|p| {
                p.ok_or_else(|| AdminError::BadRequest("`after` must be a dead letter id".into()))
            })
            .transpose()?;
        let found = admin.store.dead_letters(
            endpoint.as_deref(),
            after.as_ref().map(|(e, s)| (e.as_str(), *s)),
            limit,
        )?;
        let next_after = (found.len() == limit)
            .then(|| {
                found
                    .last()
                    .map(|d| dead_letter_id(&d.delivery.endpoint, d.seq))
            })
            .flatten();
        Ok(response::ok(DeadLetterList {
            dead_letters: found.iter().map(views::summary).collect(),
            next_after,
        }))
    })
    .await
}

/// `GET /v1/dead-letters/{id}`.
pub async fn show(State(admin): Shared, Path(id): Path<String>) -> Result<Response, AdminError> {
    blocking(move || {
        let (endpoint, seq) = parse_id(&id)?;
        let d = admin
            .store
            .dead_letter(&endpoint, seq)?
            .ok_or(AdminError::NotFound("not found"))?;
        Ok(response::ok(DeadLetterDetail {
            summary: views::summary(&d.letter),
            history: d.history.iter().map(views::attempt).collect(),
            event: serde_json::from_slice(&d.json).unwrap_or(serde_json::Value::Null),
        }))
    })
    .await
}

/// Applies one replay or discard; 404 when there is no such dead letter.
async fn apply(admin: &super::Admin, op: HttpOp, by: Actor) -> Result<(), AdminError> {
    if admin.store.http_by(vec![op], by).await?.first() != Some(&true) {
        return Err(AdminError::NotFound("not found"));
    }
    Ok(())
}

/// `POST /v1/dead-letters/{id}/replay`.
pub async fn replay(
    State(admin): Shared,
    Extension(by): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let (endpoint, seq) = parse_id(&id)?;
    apply(&admin, HttpOp::Replay { seq, endpoint }, by).await?;
    Ok(response::ok(Replayed { replayed: id }))
}

/// `DELETE /v1/dead-letters/{id}`.
pub async fn discard(
    State(admin): Shared,
    Extension(by): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let (endpoint, seq) = parse_id(&id)?;
    apply(&admin, HttpOp::Discard { seq, endpoint }, by).await?;
    Ok(response::ok(Discarded { discarded: id }))
}

/// `POST /v1/dead-letters/replay?endpoint=ID`: every dead letter of an
/// endpoint, `MAX_LIST` per transaction. The cursor only moves forward, so one
/// that fails again at once is not replayed twice by the same call.
pub async fn replay_all(
    State(admin): Shared,
    Extension(by): Extension<Actor>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let endpoint = param(query.as_deref(), "endpoint").ok_or_else(|| {
        AdminError::BadRequest(
            "give ?endpoint=ID (the endpoint whose dead letters to replay)".into(),
        )
    })?;
    let store = &admin.store;
    let mut after: Option<u64> = None;
    let mut replayed = 0u64;
    loop {
        let ep = endpoint.clone();
        let page = store
            .read(move |s| s.dead_letters(Some(&ep), after.map(|a| (ep.as_str(), a)), MAX_LIST))
            .await?;
        let Some(last) = page.last().map(|d| d.seq) else {
            break;
        };
        let ops = page
            .iter()
            .map(|d| HttpOp::Replay {
                seq: d.seq,
                endpoint: endpoint.clone(),
            })
            .collect();
        replayed += store
            .http_by(ops, by.clone())
            .await?
            .iter()
            .filter(|ok| **ok)
            .count() as u64;
        after = Some(last);
    }
    Ok(response::ok(ReplayedAll { endpoint, replayed }))
}
