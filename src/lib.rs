//! countersign: a webhook gateway for electronic-signature events.
//!
//! The data path is one line: **edge → verify → normalize → dedup + durable
//! commit + outbox → sinks**. The components:
//!
//! - [`app`]: wiring; `run(config, listeners, shutdown)` for `main` and tests.
//! - [`config`]: figment layers, secret references, validation naming the key.
//! - [`ingress`]: the public listener (`/hooks/...`), on hyper directly.
//! - [`admin`]: the admin listener (health, metrics, events, dead letters,
//!   endpoints), on axum; [`admin::api`] is its bodies as types.
//! - [`listener`]: the accept loop both listeners share.
//! - [`outbound`]: the one place hyper's HTTP client is built.
//! - [`pipeline`]: authenticate → normalize → store, independent of HTTP.
//! - [`providers`]: one file per provider with its whole behaviour (pure).
//! - [`verify`]: the signature schemes providers share (pure).
//! - [`envelope`]: envelope state, registration and derived events (pure).
//! - [`event`]: the normalized `SignatureEvent` v1 and its id newtypes.
//! - [`store`]: embedded redb store with group commit, dedup, the Kafka outbox,
//!   the HTTP delivery queue and dead letters, and sweeping.
//! - [`ratelimit`]: governor quotas and `Retry-After` for every rate limit.
//! - [`route`]: which Kafka topics and HTTP endpoints an event goes to.
//! - [`condition`]: `[[routes]] when`, CEL conditions compiled at load.
//! - [`sink`]: workers draining the store to Kafka and to HTTP endpoints.
//! - [`metrics`]: the Prometheus registry behind `/metrics`.
//! - [`telemetry`]: logs and OTLP trace export.
//! - [`time`]: the one clock every component reads, and timestamp parsing.
//! - [`shutdown`]: one stop signal with one drain deadline for every task.
//! - [`supervise`]: long-running tasks restarted (and counted) after a panic.
//! - [`cli`]: the `config check` and `sign` subcommands' logic.
//! - [`dlq`]: the `dlq` subcommands, a client of the admin API.
//! - [`audit`]: the tamper-evident audit trail's hash chain and checkpoints.
//!
//! Modules are `pub(crate)` unless the binary, the integration tests or the
//! load-test tool use them: the boundary of the library is the list of `pub
//! mod` below, and the compiler reports what inside the crate goes unused.

pub mod admin;
pub mod app;
pub mod audit;
pub mod cli;
pub(crate) mod condition;
pub mod config;
pub mod dlq;
pub(crate) mod envelope;
pub(crate) mod event;
#[doc(hidden)]
pub mod fuzz;
pub(crate) mod ingress;
pub(crate) mod listener;
pub(crate) mod metrics;
pub(crate) mod outbound;
pub(crate) mod pipeline;
pub(crate) mod plausibility;
pub(crate) mod privacy;
pub(crate) mod providers;
pub(crate) mod ratelimit;
pub(crate) mod route;
pub(crate) mod shutdown;
pub(crate) mod sink;
pub mod store;
pub(crate) mod supervise;
pub mod telemetry;
pub mod time;
pub mod verify;
