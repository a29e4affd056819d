//! Configuration: built-in defaults → TOML file → environment (`COUNTERSIGN_`
//! prefix, `__` for nesting), through figment. Unknown keys are errors, and every
//! error names the key and the fix. `Config::default()` is the documented default
//! set (`config.example.toml` mirrors it).

mod dur;
pub mod secret;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::event::Kind;
use crate::providers::{FieldMap, Provider, Source};
use crate::route::RouteConfig;
use crate::verify::{Algorithm, Encoding};
pub use secret::SecretRef;

/// Environment variables with this prefix and a `__` override config keys.
pub const ENV_PREFIX: &str = "COUNTERSIGN_";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub telemetry: TelemetryConfig,
    pub kafka: KafkaConfig,
    pub sources: Vec<SourceConfig>,
    pub endpoints: Vec<EndpointConfig>,
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Public listener for provider webhooks.
    pub listen: SocketAddr,
    /// Admin listener: health, readiness, the events API. Keep it private.
    pub admin_listen: SocketAddr,
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
    /// Webhook requests handled at once at most; beyond it requests get 503 with
    /// `Retry-After` at once (load shedding), so a flood cannot exhaust memory.
    pub max_requests_in_flight: usize,
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
    /// limiter starts afresh (and says so in the log).
    pub max_tracked_clients: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: ([0, 0, 0, 0], 8080).into(),
            admin_listen: ([127, 0, 0, 1], 9090).into(),
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(25),
            max_requests_in_flight: 1024,
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
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("./data"),
            dedup_ttl: Duration::from_secs(7 * 86_400),
            retention: Duration::from_secs(30 * 86_400),
            cache_bytes: 32 * 1024 * 1024,
            max_batch: 512,
            queue_capacity: 8192,
            sweep_interval: Duration::from_secs(60),
            sweep_batch: 10_000,
        }
    }
}

/// The Kafka sink. Off unless `brokers` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`. Unset: the Kafka sink is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<String>,
    /// Where events go that no route sends to a topic.
    pub default_topic: String,
    /// Where events go that can never be published (too large, not authorized,
    /// unknown topic), with headers saying why. They are also kept in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlq_topic: Option<String>,
    /// Messages handed to the producer and not yet acknowledged, at most. The rest
    /// waits on disk, so memory stays bounded during a broker outage.
    pub max_in_flight: usize,
    /// First delay before re-producing a message whose delivery failed retryably.
    #[serde(with = "dur")]
    pub retry_backoff: Duration,
    /// Longest delay between such retries (full jitter below it).
    #[serde(with = "dur")]
    pub retry_backoff_max: Duration,
    /// Any librdkafka producer property, passed through (TLS, SASL, tuning).
    /// String values may be `env:NAME` or `file:/path` references; values of
    /// sensitive keys (passwords, secrets, keys) print as redacted.
    #[serde(serialize_with = "redact_props")]
    pub producer: BTreeMap<String, PropValue>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: None,
            default_topic: "signature.events".into(),
            dlq_topic: None,
            max_in_flight: 10_000,
            retry_backoff: Duration::from_millis(500),
            retry_backoff_max: Duration::from_secs(30),
            producer: BTreeMap::new(),
        }
    }
}

/// A librdkafka property value: written as a string, number or boolean in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PropValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// Whether a librdkafka property holds a credential.
pub fn sensitive_property(key: &str) -> bool {
    ["password", "secret", "key", "token", "jaas"]
        .iter()
        .any(|w| key.contains(w))
        && !key.ends_with(".location")
}

fn redact_props<S: serde::Serializer>(
    props: &BTreeMap<String, PropValue>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(props.len()))?;
    for (k, v) in props {
        match v {
            PropValue::Text(t) if sensitive_property(k) => {
                m.serialize_entry(k, &SecretRef::parse(t).to_string())?
            }
            other => m.serialize_entry(k, other)?,
        }
    }
    m.end()
}

impl PropValue {
    /// The value librdkafka gets: `env:`/`file:` references resolved.
    pub fn resolve(&self) -> Result<String, (String, String)> {
        match self {
            PropValue::Text(t) if t.starts_with("env:") || t.starts_with("file:") => {
                SecretRef::parse(t).resolve()
            }
            other => Ok(other.to_string()),
        }
    }
}

impl fmt::Display for PropValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropValue::Bool(b) => write!(f, "{b}"),
            PropValue::Int(i) => write!(f, "{i}"),
            PropValue::Float(x) => write!(f, "{x}"),
            PropValue::Text(s) => f.write_str(s),
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Path segment: webhooks arrive at `/hooks/{id}`.
    pub id: String,
    pub provider: Provider,
    /// HMAC keys, shared secrets, URL tokens or client ids, per provider. Any one
    /// matching authenticates (rotation).
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    /// Allowed clock difference for schemes with a timestamp.
    #[serde(with = "dur", default = "default_tolerance")]
    pub tolerance: Duration,
    /// Webhooks per second this source may store, and burst. Unset: no limit.
    /// Checked after authentication (forged requests do not use it up); over
    /// it: 429 with `Retry-After`, nothing stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Overrides `server.max_body_bytes` for this source (Adobe Sign can send 10 MB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// Provider event type → kind, overriding the built-in table.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kinds: BTreeMap<String, Kind>,
    /// Where payload-defined providers keep the event's fields (JSON pointers).
    #[serde(default, skip_serializing_if = "is_default")]
    pub fields: FieldMap,
    /// `generic_hmac`: the header carrying the MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `generic_hmac`: text before the encoded MAC, e.g. `sha256=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<Algorithm>,
    /// `generic_hmac`: the signed content, e.g. `{timestamp}.{body}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_header: Option<String>,
}

/// A downstream HTTP endpoint that routed events are POSTed to, signed per
/// Standard Webhooks, with retries, a rate limit and a circuit breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Names the endpoint in routes, the admin API and metrics.
    pub id: String,
    /// `http://` or `https://` URL the events are POSTed to.
    pub url: String,
    /// The `whsec_...` secret deliveries are signed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretRef>,
    /// Time allowed for one attempt: connect, send, and the answer's head and body.
    #[serde(with = "dur", default = "default_endpoint_timeout")]
    pub timeout: Duration,
    /// Extra request headers. Values may be `env:`/`file:` references (e.g. an
    /// `Authorization` token); all values print as redacted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, SecretRef>,
    /// Attempts in all (the first delivery included) before dead-lettering.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Delays before each retry, drawn with full jitter; the last one repeats.
    #[serde(with = "dur::list", default = "default_schedule")]
    pub retry_schedule: Vec<Duration>,
    /// Longest pause a receiver's `Retry-After` (on 429 or 503) is honoured for.
    #[serde(with = "dur", default = "default_retry_after_max")]
    pub retry_after_max: Duration,
    /// Deliveries per second and burst, at most. Unset: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Requests in flight to this endpoint at most.
    #[serde(default = "default_endpoint_in_flight")]
    pub max_in_flight: usize,
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// Allow URLs that resolve to private, loopback or link-local addresses
    /// (refused by default so a config cannot reach internal services by mistake).
    #[serde(default)]
    pub allow_private: bool,
}

/// A rate limit: a sustained rate and a burst (governor's GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained rate; fractions allowed (0.5 = one every two seconds).
    pub per_second: f64,
    /// Requests that may go at once after a quiet period.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

impl RateLimit {
    /// The governor quota: one cell every `1 / per_second`, `burst` at once.
    pub fn quota(&self) -> governor::Quota {
        let burst = std::num::NonZeroU32::new(self.burst).unwrap_or(std::num::NonZeroU32::MIN);
        governor::Quota::with_period(Duration::from_secs_f64(1.0 / self.per_second))
            .unwrap_or_else(|| governor::Quota::per_second(std::num::NonZeroU32::MAX))
            .allow_burst(burst)
    }
}

/// The circuit breaker of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failed attempts that open the breaker.
    pub failures: u32,
    /// How long it stays open before one probe is sent (doubles while probes
    /// fail, up to 32 times this).
    #[serde(with = "dur")]
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

fn default_endpoint_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_attempts() -> u32 {
    11
}

fn default_schedule() -> Vec<Duration> {
    crate::sink::retry::DEFAULT_SCHEDULE.to_vec()
}

fn default_retry_after_max() -> Duration {
    Duration::from_secs(3600)
}

fn default_endpoint_in_flight() -> usize {
    32
}

fn default_burst() -> u32 {
    1
}

fn default_tolerance() -> Duration {
    Duration::from_secs(300)
}

fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

/// A configuration problem: the key, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

/// All problems found while loading, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<Problem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for p in &self.0 {
            writeln!(f, "  `{}`: {}", p.key, p.problem)?;
            if !p.fix.is_empty() {
                writeln!(f, "      fix: {}", p.fix)?;
            }
        }
        Ok(())
    }
}

impl ConfigError {
    fn one(
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError(vec![Problem {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }])
    }
}

/// The loaded configuration with its secrets resolved into run-time sources.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub sources: Vec<Source>,
    pub endpoints: Vec<crate::sink::http::Endpoint>,
}

/// Loads defaults → `path` (if given) → environment, then validates everything and
/// resolves secrets.
pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
    let config = layers(path)?;
    let (sources, endpoints) = validate::check(&config)?;
    Ok(Loaded {
        config,
        sources,
        endpoints,
    })
}

/// The configuration's layers merged, without validation or secret resolution
/// (for tools that only need an address, e.g. `dlq` talking to the admin API).
pub fn layers(path: Option<&Path>) -> Result<Config, ConfigError> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(p) = path {
        if !p.is_file() {
            return Err(ConfigError::one(
                "--config",
                format!("file {} does not exist", p.display()),
                "pass the path of a TOML file, e.g. config.example.toml",
            ));
        }
        fig = fig.merge(Toml::file_exact(p));
    }
    // Only variables with `__` are keys (every key is nested), so variables like
    // COUNTERSIGN_DOCUSIGN_SECRET stay free for `env:` secret references.
    fig = fig.merge(
        Env::prefixed(ENV_PREFIX)
            .filter(|k| k.as_str().contains("__"))
            .split("__"),
    );
    fig.extract().map_err(from_figment)
}

/// Loads from a TOML string (tests and tools), without the environment layer.
pub fn load_str(toml: &str) -> Result<Loaded, ConfigError> {
    let fig = Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml));
    let config: Config = fig.extract().map_err(from_figment)?;
    let (sources, endpoints) = validate::check(&config)?;
    Ok(Loaded {
        config,
        sources,
        endpoints,
    })
}

/// `sources.0.tolerance` → `sources[0].tolerance`.
fn key_path(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if seg.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

fn from_figment(err: figment::Error) -> ConfigError {
    use figment::error::Kind as K;
    let problems = err
        .into_iter()
        .map(|e| {
            let base = key_path(&e.path);
            // Figment's path of a field error already ends with the field.
            let field = |name: &str| match e.path.last() {
                Some(last) if last == name => base.clone(),
                _ if base.is_empty() => name.to_owned(),
                _ => format!("{base}.{name}"),
            };
            let (key, problem, fix) = match &e.kind {
                K::UnknownField(name, expected) => (
                    field(name),
                    "unknown key".to_owned(),
                    format!("remove it, or use one of: {}", expected.join(", ")),
                ),
                K::MissingField(name) => (
                    field(name),
                    "required key is missing".to_owned(),
                    "add it".to_owned(),
                ),
                K::UnknownVariant(v, expected) => (
                    base,
                    format!("unknown value `{v}`"),
                    format!("use one of: {}", expected.join(", ")),
                ),
                K::InvalidType(actual, expected) => (
                    base,
                    format!("expected {expected}, found {actual}"),
                    String::new(),
                ),
                other => (base, other.to_string(), String::new()),
            };
            Problem { key, problem, fix }
        })
        .collect();
    ConfigError(problems)
}

impl Config {
    /// The effective configuration as TOML; secrets show only as references.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

#[cfg(test)]
mod tests;
