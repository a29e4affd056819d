//! The admin listener, on axum: the status panel at `/` ([`panel`]),
//! `/healthz`, `/readyz`, `/metrics`, `/v1/stats`, the live overview
//! ([`overview`]), the events API ([`events`]), dead letters ([`deliveries`]),
//! quarantined events ([`quarantine`]), endpoints ([`endpoints`]), envelopes ([`envelopes`]) and their live
//! stream ([`stream`]: SSE and WebSocket), and audit exports ([`audit`]).
//! Keep it on a private address: it can replay and discard deliveries.
//!
//! - [`api`]: the bodies as types, shared with the CLI and the tests.
//! - [`response`]: the one place status codes are chosen.
//! - [`views`]: store rows → API types.
//! - [`query`]: query-string parameters with the API's own error messages.

pub mod api;
mod audit;
pub(crate) mod auth;
mod deliveries;
mod endpoints;
pub(crate) mod envelopes;
mod events;
pub(crate) mod overview;
mod panel;
mod quarantine;
pub(crate) mod query;
pub mod response;
pub(crate) mod stream;
pub(crate) mod views;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use hyper::Request;
use hyper::body::Incoming;

use crate::metrics::{Metrics, OUTCOMES};
use crate::sink::kafka::KafkaStatus;
use crate::sink::webhook::{Endpoint, EndpointStatus};
use crate::store::Store;
use crate::time::Clock;
use api::{Health, KafkaCheck, KafkaStats, Ready, ReadyChecks, Stats, StoreStats};
use response::AdminError;

/// What the admin handlers read.
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
    pub clock: Clock,
    /// The token and host rules.
    pub guard: Guard,
    /// `server.admin_max_response_bytes`.
    pub max_response_bytes: usize,
    /// Source id → provider id (registration needs the provider).
    pub sources: std::collections::HashMap<String, String>,
    /// `[envelopes]`.
    pub envelopes: crate::config::EnvelopesConfig,
    /// The live stream's limits and subscribers.
    pub streams: stream::Streams,
    /// Routes a released quarantined event.
    pub router: crate::route::Router,
    /// The public half of `audit.signing_key` (checks `/v1/audit/verify`).
    pub audit_key: Option<ed25519_dalek::VerifyingKey>,
    /// The overview's webhook samples (taken by [`overview::sample_until`]).
    pub history: overview::History,
}

pub use auth::Guard;

type Shared = State<Arc<Admin>>;

/// The admin API's routes, behind the [`Guard`].
pub fn router(admin: Arc<Admin>) -> Router {
    let guard = Arc::new(admin.guard.clone());
    let routes = Router::new()
        .route("/", get(panel::page))
        .route("/assets/{name}", get(panel::asset))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/stats", get(stats))
        .route("/v1/overview", get(overview::get))
        .route("/v1/overview/stream", get(overview::stream))
        .route("/v1/events", get(events::list))
        .route("/v1/events/{id}", get(events::get))
        .route("/v1/events/{id}/release", post(quarantine::release))
        .route("/v1/events/{id}/reject", post(quarantine::reject))
        .route("/v1/quarantine", get(quarantine::list))
        .route("/v1/dead-letters", get(deliveries::list))
        // No dead letter is named `replay` (ids are `{endpoint}:{sequence}`).
        .route(
            "/v1/dead-letters/replay",
            post(deliveries::replay_all).get(no_such_dead_letter),
        )
        .route(
            "/v1/dead-letters/{id}",
            get(deliveries::show).delete(deliveries::discard),
        )
        .route("/v1/dead-letters/{id}/replay", post(deliveries::replay))
        .route("/v1/envelopes", get(envelopes::list))
        .route(
            "/v1/envelopes/{source}/{envelope_id}",
            get(envelopes::get).put(envelopes::register),
        )
        .route(
            "/v1/envelopes/{source}/{envelope_id}/archived",
            post(envelopes::archived),
        )
        .route(
            "/v1/envelopes/{source}/{envelope_id}/remind",
            post(envelopes::remind),
        )
        .route(
            "/v1/envelopes/{source}/{envelope_id}/deadline",
            post(envelopes::deadline),
        )
        .route("/v1/audit", get(audit::export))
        .route("/v1/audit/verify", get(audit::verify))
        .route("/v1/stream", get(stream::sse))
        .route("/v1/stream/ws", get(stream::ws))
        .route("/v1/endpoints", get(endpoints::list))
        .route("/v1/endpoints/{id}/enable", post(endpoints::enable))
        .route(
            "/v1/endpoints/{id}/deliveries",
            axum::routing::delete(endpoints::purge),
        )
        .fallback(async || AdminError::NotFound("not found"))
        .method_not_allowed_fallback(async || AdminError::MethodNotAllowed)
        .with_state(admin)
        .layer(axum::middleware::from_fn_with_state(guard, auth::guard));
    panel::headers(routes)
}

/// The listener's handler: `router` for one request.
pub fn handler(
    router: Router,
) -> impl Fn(Request<Incoming>, SocketAddr) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |mut req: Request<Incoming>, peer| {
        let mut r = router.clone();
        req.extensions_mut().insert(auth::Peer(peer));
        Box::pin(async move {
            match tower_service::Service::call(&mut r, req.map(Body::new)).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        })
    }
}

async fn no_such_dead_letter() -> AdminError {
    AdminError::NotFound("not found")
}

/// Store reads are synchronous; keep them off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AdminError> + Send + 'static,
) -> Result<T, AdminError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(AdminError::Internal(e.to_string())))
}

async fn healthz() -> Response {
    response::ok(Health {
        status: "ok".into(),
    })
}

/// Ready while serving with a working store. Kafka connectivity is reported but
/// does not make the gateway unready: webhooks are still taken (and kept on
/// disk) while the broker is away, which is what a provider needs.
async fn readyz(State(admin): Shared) -> Response {
    let serving = admin.ready.load(Ordering::SeqCst);
    let store = admin.store.healthy();
    let ready = serving && store;
    let kafka = admin.kafka.as_ref().map(|k| KafkaCheck {
        connected: k.connected.load(Ordering::Relaxed),
        pending: admin.store.pending_count().ok(),
        published: kafka_total(&admin, "published"),
        dead_lettered: kafka_total(&admin, "dead_lettered"),
    });
    let body = Ready {
        status: if ready { "ready" } else { "not ready" }.into(),
        checks: ReadyChecks {
            serving,
            store,
            outbox_without_kafka: match kafka {
                None => admin.store.pending_count().ok().filter(|n| *n > 0),
                Some(_) => None,
            },
            kafka,
        },
    };
    response::readiness(body, ready)
}

/// Prometheus text format; state gauges are read from the store when scraped.
async fn metrics(State(admin): Shared) -> Result<Response, AdminError> {
    let text = blocking(move || {
        let endpoints = admin
            .endpoints
            .iter()
            .map(|(e, s)| {
                let snap = s.snapshot.lock().map(|s| s.clone()).unwrap_or_default();
                (e.id.as_str(), snap.breaker, snap.disabled.is_some())
            })
            .collect();
        let observed = crate::metrics::Observed {
            now_ms: admin.clock.now_ms(),
            store: &admin.store,
            ready: admin.ready.load(Ordering::SeqCst) && admin.store.healthy(),
            kafka_connected: admin
                .kafka
                .as_ref()
                .map(|k| k.connected.load(Ordering::Relaxed)),
            endpoints,
        };
        admin.metrics.refresh(&observed)?;
        Ok(admin.metrics.encode())
    })
    .await?;
    Ok(response::text(crate::metrics::CONTENT_TYPE, text))
}

/// Kafka messages with `outcome` since start, all topics.
fn kafka_total(admin: &Admin, outcome: &str) -> u64 {
    Metrics::total(&admin.metrics.kafka_messages, "outcome", outcome)
}

/// Webhooks by outcome (all sources), store and Kafka counters since start.
async fn stats(State(admin): Shared) -> Response {
    let webhooks: BTreeMap<String, u64> = OUTCOMES
        .iter()
        .map(|o| {
            let n = Metrics::total(&admin.metrics.webhooks, "outcome", o);
            (o.to_string(), n)
        })
        .collect();
    let s = admin.store.stats();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    response::ok(Stats {
        webhooks,
        store: StoreStats {
            commits: load(&s.commits),
            events_stored: load(&s.events_stored),
            duplicates: load(&s.duplicates),
            largest_batch: load(&s.largest_batch),
            events_swept: load(&s.events_swept),
        },
        kafka: admin.kafka.as_ref().map(|k| KafkaStats {
            published: kafka_total(&admin, "published"),
            dead_lettered: kafka_total(&admin, "dead_lettered"),
            rewinds: load(&k.rewinds),
        }),
    })
}
