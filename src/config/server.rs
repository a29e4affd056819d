//! `[server]`, `[store]` and `[telemetry]`: the listeners and their limits, the
//! embedded store, logs and trace export.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::dur;
use super::{RateLimit, SecretRef};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Public listener for provider webhooks.
    pub listen: SocketAddr,
    /// Admin listener: health, readiness, the events API. Keep it private.
    pub admin_listen: SocketAddr,
    /// Bearer token the admin API requires (every route but `/healthz`,
    /// `/readyz` and `/metrics`): `Authorization: Bearer <token>`. A secret
    /// reference like the others. Required when `admin_listen` is not a
    /// loopback address, unless `admin_insecure = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<SecretRef>,
    /// Serve the admin API without a token on a non-loopback address (only
    /// behind a network policy that admits nobody else).
    pub admin_insecure: bool,
    /// Host names the admin listener answers to besides IP addresses and
    /// `localhost` (e.g. a Service name); other `Host` headers get 403, so a
    /// web page cannot reach the API through DNS rebinding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_hosts: Vec<String>,
    /// Largest body one admin answer (an events page) is built to; a page
    /// stops early (and says where to continue) rather than exceed it.
    pub admin_max_response_bytes: usize,
    /// Worker threads of the admin listener's own runtime. The admin API,
    /// the status panel and the live streams run there, never on the
    /// threads that answer webhooks: however busy they get (1 000 stream
    /// subscribers), webhooks still get their turn of the CPU.
    pub admin_threads: usize,
    /// Largest accepted webhook body; sources may raise or lower it.
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers).
    pub max_header_bytes: usize,
    /// Open connections at most; further connections wait in the accept backlog.
    pub max_connections: usize,
    /// Time allowed to receive a request's head.
    #[serde(with = "dur")]
    pub header_read_timeout: Duration,
    /// Time allowed to receive a request's body.
    #[serde(with = "dur")]
    pub body_read_timeout: Duration,
    /// Time allowed for shutdown: in-flight requests finish, the sinks settle
    /// what they have in flight and the store closes, all within it.
    #[serde(with = "dur")]
    pub shutdown_timeout: Duration,
    /// Webhook requests processed at once at most (counted once their body
    /// is in); beyond it requests get 503 with `Retry-After` at once (load
    /// shedding), so a flood cannot exhaust memory.
    pub max_requests_in_flight: usize,
    /// Open webhook requests per client address (IPv6: per /64), bodies
    /// being read included; beyond it 429 with `Retry-After`. Clients that
    /// trickle their bodies use up their own share, not everyone's.
    pub max_requests_per_client: usize,
    /// Webhook requests per client address. Unset: no per-client limit. Over
    /// it: 429 with `Retry-After`, nothing read or stored. IPv6 clients are
    /// limited per /64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_rate_limit: Option<RateLimit>,
    /// Take the client address from this header (its last entry: the address
    /// the nearest proxy saw), e.g. `x-forwarded-for`. Set it only behind a
    /// proxy that sets the header; unset, the peer address is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip_header: Option<String>,
    /// Client addresses the per-client limiter tracks at most; past it the
    /// least recently seen client is forgotten.
    pub max_tracked_clients: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: ([0, 0, 0, 0], 8080).into(),
            admin_listen: ([127, 0, 0, 1], 9090).into(),
            admin_token: None,
            admin_insecure: false,
            admin_hosts: Vec::new(),
            admin_max_response_bytes: 16 * 1024 * 1024,
            admin_threads: 1,
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(25),
            max_requests_in_flight: 1024,
            max_requests_per_client: 64,
            client_rate_limit: None,
            client_ip_header: None,
            max_tracked_clients: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory of the embedded database (created if missing).
    pub path: PathBuf,
    /// How long a (source, event id) pair is remembered to refuse duplicates.
    /// Default 7 days: beyond Yousign's ~4 days, the longest documented window.
    #[serde(with = "dur")]
    pub dedup_ttl: Duration,
    /// How long accepted events are kept for the admin API.
    #[serde(with = "dur")]
    pub retention: Duration,
    /// Memory redb may use to cache database pages (its default is 1 GiB).
    pub cache_bytes: usize,
    /// Most events one group commit takes.
    pub max_batch: usize,
    /// Requests waiting for the writer at most; beyond it webhooks get 503.
    pub queue_capacity: usize,
    /// How often events past retention are swept.
    #[serde(with = "dur")]
    pub sweep_interval: Duration,
    /// Most entries one sweep deletes (sweeps repeat until done).
    pub sweep_batch: usize,
    /// Acknowledge webhooks once their batch is synced to a sequential
    /// write-ahead log, and write the database's pages at checkpoints;
    /// `false`: every group commit syncs the database itself.
    pub wal: bool,
    /// A checkpoint follows a logged commit once the log's oldest record is
    /// this old.
    #[serde(with = "dur")]
    pub wal_checkpoint_interval: Duration,
    /// ... or sooner, once it is this old, when the writer has nothing
    /// waiting after a commit (short checkpoints in the gaps between
    /// requests keep each stall short).
    #[serde(with = "dur")]
    pub wal_checkpoint_idle: Duration,
    /// ... or once the log holds this many bytes.
    pub wal_max_bytes: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("./data"),
            dedup_ttl: Duration::from_secs(7 * 86_400),
            retention: Duration::from_secs(30 * 86_400),
            cache_bytes: 16 * 1024 * 1024,
            max_batch: 512,
            queue_capacity: 8192,
            sweep_interval: Duration::from_secs(60),
            sweep_batch: 10_000,
            wal: true,
            wal_checkpoint_interval: Duration::from_millis(50),
            wal_checkpoint_idle: Duration::from_millis(10),
            wal_max_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

/// The OTLP encoding traces are exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OtlpProtocol {
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "http/json")]
    HttpJson,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// A `tracing` filter, e.g. `info` or `countersign=debug,info`.
    pub log_level: String,
    pub log_format: LogFormat,
    /// OTLP/HTTP collector URL, e.g. `http://otel-collector:4318` (`/v1/traces`
    /// is added when the URL has no path). Unset: no traces are exported, and
    /// a webhook's `traceparent` is passed on as it came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    pub otlp_protocol: OtlpProtocol,
    /// Headers sent with each export (e.g. an API key); values may be
    /// `env:`/`file:` references and print as redacted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub otlp_headers: BTreeMap<String, SecretRef>,
    /// Time allowed for one export request.
    #[serde(with = "dur")]
    pub otlp_timeout: Duration,
    /// Share of new traces recorded (0.0 to 1.0); a webhook arriving with a
    /// `traceparent` follows its caller's sampling decision.
    pub trace_sample_ratio: f64,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_level: "info".into(),
            log_format: LogFormat::Json,
            otlp_endpoint: None,
            otlp_protocol: OtlpProtocol::HttpProtobuf,
            otlp_headers: BTreeMap::new(),
            otlp_timeout: Duration::from_secs(10),
            trace_sample_ratio: 1.0,
            service_name: "countersign".into(),
        }
    }
}
