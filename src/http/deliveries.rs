//! The admin API of HTTP deliveries: dead letters (list, show, replay, discard)
//! and endpoints (state, enable after a 410 Gone).
//!
//! A dead letter's id is `{endpoint}:{sequence}`: endpoint ids cannot contain
//! `:`, and the sequence names the event.

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::admin::{Admin, blocking, limit, param, percent_decode};
use super::response::{self, HttpError, Resp};
use crate::store::{Attempt, DeadLetter, DeliveryState, HttpDelivery, HttpOp, Store};
use crate::time::format_ms;

/// Most dead letters one list call returns, and one replay transaction takes.
pub const MAX_LIST: usize = 1000;
const DEFAULT_LIST: usize = 100;

/// Routes `/v1/dead-letters...` and `/v1/endpoints...`; `None` for other paths.
pub async fn route(
    admin: &Arc<Admin>,
    method: &Method,
    path: &str,
    query: &str,
) -> Option<Result<Resp, HttpError>> {
    let store = admin.store.clone();
    let query = query.to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Some(match (method, parts.as_slice()) {
        (&Method::GET, ["v1", "dead-letters"]) => blocking(move || list(&store, &query)).await,
        (&Method::POST, ["v1", "dead-letters", "replay"]) => replay_all(&store, &query).await,
        (&Method::GET, ["v1", "dead-letters", id]) => {
            let id = (*id).to_owned();
            blocking(move || show(&store, &id)).await
        }
        (&Method::POST, ["v1", "dead-letters", id, "replay"]) => one(&store, id, true).await,
        (&Method::DELETE, ["v1", "dead-letters", id]) => one(&store, id, false).await,
        (&Method::GET, ["v1", "endpoints"]) => {
            let admin = admin.clone();
            blocking(move || Ok(endpoints(&admin))).await
        }
        (&Method::POST, ["v1", "endpoints", id, "enable"]) => enable(admin, id).await,
        (_, ["v1", "dead-letters", ..] | ["v1", "endpoints", ..]) => {
            Err(HttpError::MethodNotAllowed("GET, POST, DELETE"))
        }
        _ => return None,
    })
}

/// `billing:42` (also percent-encoded, as clients may send it).
fn parse_id(id: &str) -> Result<(String, u64), HttpError> {
    percent_decode(id)
        .rsplit_once(':')
        .and_then(|(ep, seq)| Some((ep.to_owned(), seq.parse().ok()?)))
        .ok_or(HttpError::NotFound)
}

fn dead_id(endpoint: &str, seq: u64) -> String {
    format!("{endpoint}:{seq}")
}

fn attempt(a: &Attempt) -> Value {
    json!({
        "at": format_ms(a.at_ms),
        "status": a.status,
        "latency_ms": a.latency_ms,
        "error": (!a.error.is_empty()).then_some(&a.error),
    })
}

fn summary(d: &DeadLetter) -> Value {
    json!({
        "id": dead_id(&d.delivery.endpoint, d.seq),
        "endpoint": d.delivery.endpoint,
        "event_id": d.event_id,
        "source": d.source,
        "envelope": d.delivery.envelope,
        "sequence": d.seq,
        "dead_lettered_at": format_ms(d.delivery.updated_ms),
        "reason": d.delivery.reason,
        "attempts": d.delivery.attempts,
    })
}

/// A delivery as the events API shows it, with its attempts.
pub fn delivery(d: &HttpDelivery, history: &[Attempt]) -> Value {
    let mut v = json!({
        "endpoint": d.endpoint,
        "status": d.state.as_str(),
        "attempts": d.attempts,
        "history": history.iter().map(attempt).collect::<Vec<_>>(),
    });
    match d.state {
        DeliveryState::Scheduled => v["next_attempt_at"] = json!(format_ms(d.due_ms)),
        DeliveryState::DeadLettered | DeliveryState::Discarded => v["reason"] = json!(d.reason),
        _ => {}
    }
    v
}

fn list(store: &Store, query: &str) -> Result<Resp, HttpError> {
    let limit = limit(query, DEFAULT_LIST, MAX_LIST)?;
    let endpoint = param(query, "endpoint");
    let after = param(query, "after")
        .map(|a| parse_id(&a))
        .transpose()
        .map_err(|_| HttpError::BadRequest("`after` must be a dead letter id".into()))?;
    let found = store.dead_letters(
        endpoint.as_deref(),
        after.as_ref().map(|(e, s)| (e.as_str(), *s)),
        limit,
    )?;
    let next = (found.len() == limit)
        .then(|| found.last().map(|d| dead_id(&d.delivery.endpoint, d.seq)))
        .flatten();
    let items: Vec<Value> = found.iter().map(summary).collect();
    Ok(response::json(
        StatusCode::OK,
        &json!({"dead_letters": items, "next_after": next}),
    ))
}

fn show(store: &Store, id: &str) -> Result<Resp, HttpError> {
    let (endpoint, seq) = parse_id(id)?;
    let d = store
        .dead_letter(&endpoint, seq)?
        .ok_or(HttpError::NotFound)?;
    let event: Value = serde_json::from_slice(&d.json).unwrap_or(Value::Null);
    let mut body = summary(&d.letter);
    body["history"] = json!(d.history.iter().map(attempt).collect::<Vec<_>>());
    body["event"] = event;
    Ok(response::json(StatusCode::OK, &body))
}

/// Replays (or discards) one dead letter.
async fn one(store: &Store, id: &str, replay: bool) -> Result<Resp, HttpError> {
    let (endpoint, seq) = parse_id(id)?;
    let op = if replay {
        HttpOp::Replay { seq, endpoint }
    } else {
        HttpOp::Discard { seq, endpoint }
    };
    if store.http(vec![op]).await?.first() != Some(&true) {
        return Err(HttpError::NotFound);
    }
    let what = if replay { "replayed" } else { "discarded" };
    Ok(response::json(StatusCode::OK, &json!({ what: id })))
}

/// Replays every dead letter of an endpoint, `MAX_LIST` per transaction. The
/// cursor only moves forward, so one that fails again at once is not replayed
/// twice by the same call.
async fn replay_all(store: &Store, query: &str) -> Result<Resp, HttpError> {
    let endpoint = param(query, "endpoint").ok_or_else(|| {
        HttpError::BadRequest(
            "give ?endpoint=ID (the endpoint whose dead letters to replay)".into(),
        )
    })?;
    let mut after: Option<u64> = None;
    let mut replayed = 0usize;
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
        replayed += store.http(ops).await?.iter().filter(|ok| **ok).count();
        after = Some(last);
    }
    Ok(response::json(
        StatusCode::OK,
        &json!({"endpoint": endpoint, "replayed": replayed}),
    ))
}

fn endpoints(admin: &Admin) -> Resp {
    let list: Vec<Value> = admin
        .endpoints
        .iter()
        .map(|(ep, status)| {
            let snap = status.snapshot.lock().map(|s| s.clone()).unwrap_or_default();

            let state = match (&snap.disabled, snap.paused_until_ms) {
                (Some(_), _) => "disabled",
                (None, Some(_)) => "paused",
                (None, None) => snap.breaker,
            };
            json!({
                "id": ep.id,
                "url": ep.display_url(),
                "state": state,
                "breaker": snap.breaker,
                "disabled": snap.disabled.as_ref().map(|(at, why)| json!({"at": format_ms(*at), "reason": why})),
                "paused_until": snap.paused_until_ms.map(format_ms),
                "in_flight": snap.in_flight,
                "pending": admin.store.http_pending_count(&ep.id).ok(),
                "dead_letters": admin.store.dead_letter_count(&ep.id).ok(),
                "delivered": status.delivered.get(),
                "failed_attempts": status.failed_attempts(),
                "dead_lettered": status.dead_lettered.get(),
            })
        })
        .collect();
    response::json(StatusCode::OK, &json!({"endpoints": list}))
}

async fn enable(admin: &Admin, id: &str) -> Result<Resp, HttpError> {
    if !admin.endpoints.iter().any(|(e, _)| e.id == id) {
        return Err(HttpError::NotFound);
    }
    admin.store.set_disabled(id, None).await?;
    tracing::info!(endpoint = id, "endpoint enabled through the admin API");
    Ok(response::json(StatusCode::OK, &json!({"enabled": id})))
}
