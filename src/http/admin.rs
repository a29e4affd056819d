//! The admin listener: `/healthz`, `/readyz`, `/metrics`, the events API
//! (`/v1/events/{id}`, `/v1/events?limit=N&before=SEQ`), `/v1/stats`, and the
//! dead-letter and endpoint API ([`deliveries`]). Keep it on a private address:
//! it can replay and discard deliveries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{Method, StatusCode};
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::deliveries;
use super::response::{self, HttpError, Resp};
use crate::metrics::{Metrics, OUTCOMES};
use crate::sink::kafka::KafkaStatus;
use crate::sink::webhook::{Endpoint, EndpointStatus};
use crate::store::{KafkaDelivery, Record, Store};

/// Most events one list call returns.
pub const MAX_LIST: usize = 1000;
const DEFAULT_LIST: usize = 50;

pub struct Admin {
    pub store: Store,
    /// False until serving starts and again from the moment shutdown begins.
    pub ready: Arc<AtomicBool>,
    /// The Kafka sink's status, when Kafka is on.
    pub kafka: Option<Arc<KafkaStatus>>,
    /// The HTTP endpoints and their workers' status.
    pub endpoints: Vec<(Arc<Endpoint>, Arc<EndpointStatus>)>,
    pub metrics: Arc<Metrics>,
    /// What the state gauges' ages are measured by.
    pub clock: crate::time::Clock,
}

pub async fn handle(admin: Arc<Admin>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let result = match deliveries::route(&admin, req.method(), &path, &query).await {
        Some(r) => r,
        None if req.method() != Method::GET => Err(HttpError::MethodNotAllowed("GET")),
        None => get_route(&admin, &path, query).await,
    };
    result.unwrap_or_else(|e| {
        if matches!(e, HttpError::Store(_)) {
            tracing::error!(path, error = %e, "admin request failed");
        }
        response::error(&e)
    })
}

async fn get_route(admin: &Arc<Admin>, path: &str, query: String) -> Result<Resp, HttpError> {
    let store = admin.store.clone();
    match path {
        "/healthz" => Ok(response::json(StatusCode::OK, &json!({"status": "ok"}))),
        "/readyz" => Ok(readyz(admin)),
        "/v1/stats" => Ok(stats(admin)),
        "/metrics" => metrics(admin.clone()).await,
        "/v1/events" => blocking(move || list(&store, &query)).await,
        p => match p.strip_prefix("/v1/events/") {
            Some(id) if !id.is_empty() && !id.contains('/') => {
                let id = percent_decode(id);
                blocking(move || get(&store, &id, &query)).await
            }
            _ => Err(HttpError::NotFound),
        },
    }
}

/// Store reads are synchronous; keep them off the async workers.
pub(super) async fn blocking(
    f: impl FnOnce() -> Result<Resp, HttpError> + Send + 'static,
) -> Result<Resp, HttpError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(HttpError::BadRequest(format!("request failed: {e}"))))
}

/// Ready while serving with a working store. Kafka connectivity is reported but
/// does not make the gateway unready: webhooks are still taken (and kept on
/// disk) while the broker is away, which is what a provider needs.
fn readyz(admin: &Admin) -> Resp {
    let ready = admin.ready.load(Ordering::SeqCst);
    let store = admin.store.healthy();
    let status = if ready && store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut checks = json!({"serving": ready, "store": store});
    if let Some(k) = &admin.kafka {
        checks["kafka"] = json!({
            "connected": k.connected.load(Ordering::Relaxed),
            "pending": admin.store.pending_count().ok(),
            "published": kafka_total(admin, "published"),
            "dead_lettered": kafka_total(admin, "dead_lettered"),
        });
    }
    let body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "not ready" },
        "checks": checks,
    });
    response::json(status, &body)
}

/// Prometheus text format; state gauges are read from the store when scraped.
async fn metrics(admin: Arc<Admin>) -> Result<Resp, HttpError> {
    tokio::task::spawn_blocking(move || {
        let endpoints = admin
            .endpoints
            .iter()
            .map(|(e, s)| {
                let snap = s.snapshot.lock().map(|s| s.clone()).unwrap_or_default();
                (e.id.as_str(), snap.breaker, snap.disabled.is_some())
            })
            .collect();
        let state = crate::metrics::Observed {
            now_ms: admin.clock.now_ms(),
            store: &admin.store,
            ready: admin.ready.load(Ordering::SeqCst),
            kafka_connected: admin
                .kafka
                .as_ref()
                .map(|k| k.connected.load(Ordering::Relaxed)),
            endpoints,
        };
        admin.metrics.refresh(&state)?;
        let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(
            admin.metrics.encode(),
        )));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        );
        Ok(r)
    })
    .await
    .unwrap_or_else(|e| Err(HttpError::BadRequest(format!("request failed: {e}"))))
}

/// Kafka messages with `outcome` since start, all topics.
fn kafka_total(admin: &Admin, outcome: &str) -> u64 {
    Metrics::total(&admin.metrics.kafka_messages, "outcome", outcome)
}

/// Webhooks by outcome (all sources), store and Kafka counters since start.
fn stats(admin: &Admin) -> Resp {
    let webhooks: serde_json::Map<String, Value> = OUTCOMES
        .iter()
        .map(|o| {
            let n = Metrics::total(&admin.metrics.webhooks, "outcome", o);
            (o.to_string(), json!(n))
        })
        .collect();
    let s = admin.store.stats();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut body = json!({
        "webhooks": webhooks,
        "store": {
            "commits": load(&s.commits),
            "events_stored": load(&s.events_stored),
            "duplicates": load(&s.duplicates),
            "largest_batch": load(&s.largest_batch),
            "events_swept": load(&s.events_swept),
        },
    });
    if let Some(k) = &admin.kafka {
        body["kafka"] = json!({
            "published": kafka_total(admin, "published"),
            "dead_lettered": kafka_total(admin, "dead_lettered"),
            "rewinds": load(&k.rewinds),
        });
    }
    response::json(StatusCode::OK, &body)
}

pub(super) fn param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub(super) fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The stored event and its state, with its Kafka deliveries.
fn view(store: &Store, r: &Record) -> Value {
    let event: Value = serde_json::from_slice(&r.json).unwrap_or(Value::Null);
    let kafka: Vec<Value> = store
        .kafka_deliveries(r.seq)
        .unwrap_or_default()
        .into_iter()
        .map(|d| match d {
            KafkaDelivery::Pending { topic } => json!({"topic": topic, "status": "pending"}),
            KafkaDelivery::Published {
                topic,
                partition,
                offset,
                at_ms,
            } => json!({
                "topic": topic, "status": "published", "partition": partition,
                "offset": offset, "at": crate::time::format_ms(at_ms),
            }),
            KafkaDelivery::DeadLettered {
                topic,
                reason,
                at_ms,
            } => json!({
                "topic": topic, "status": "dead_lettered", "reason": reason,
                "at": crate::time::format_ms(at_ms),
            }),
        })
        .collect();
    let http: Vec<Value> = store
        .http_deliveries(r.seq)
        .unwrap_or_default()
        .iter()
        .map(|(d, history)| deliveries::delivery(d, history))
        .collect();
    json!({
        "event": event,
        "state": {
            "sequence": r.seq,
            "stored_at": crate::time::format_ms(r.received_ms),
            "status": "stored",
            "kafka": kafka,
            "http": http,
        }
    })
}

fn get(store: &Store, id: &str, query: &str) -> Result<Resp, HttpError> {
    let source = param(query, "source");
    let found: Vec<Record> = store
        .get(id)?
        .into_iter()
        .filter(|r| source.as_deref().is_none_or(|s| s == r.source))
        .collect();
    Ok(match found.as_slice() {
        [] => response::json(StatusCode::NOT_FOUND, &json!({"error": "no such event"})),
        [one] => response::json(StatusCode::OK, &view(store, one)),
        many => {
            let sources: Vec<&str> = many.iter().map(|r| r.source.as_str()).collect();
            response::json(
                StatusCode::CONFLICT,
                &json!({"error": "several sources used this event id; add ?source=", "sources": sources}),
            )
        }
    })
}

/// A whole-number query parameter, if given.
fn number(query: &str, name: &str) -> Result<Option<u64>, HttpError> {
    param(query, name)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| HttpError::BadRequest(format!("`{name}` must be a whole number")))
        })
        .transpose()
}

/// `?limit=`: from 1 to `max`, `default` when absent.
pub(super) fn limit(query: &str, default: usize, max: usize) -> Result<usize, HttpError> {
    let limit = number(query, "limit")?.map_or(default, |l| l as usize);
    if !(1..=max).contains(&limit) {
        return Err(HttpError::BadRequest(format!(
            "`limit` must be from 1 to {max}"
        )));
    }
    Ok(limit)
}

fn list(store: &Store, query: &str) -> Result<Resp, HttpError> {
    let limit = limit(query, DEFAULT_LIST, MAX_LIST)?;
    let records = store.list(limit, number(query, "before")?)?;
    let next = (records.len() == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    let events: Vec<Value> = records.iter().map(|r| view(store, r)).collect();
    Ok(response::json(
        StatusCode::OK,
        &json!({"events": events, "next_before": next}),
    ))
}
