//! Configuration: the schema (serde structs), built-in defaults → TOML file →
//! environment (`COUNTERSIGN_` prefix, `__` for nesting) through figment, secret
//! references, and the problem report. Unknown keys are errors, and every error
//! names the key and the fix. `Config::default()` is the documented default set
//! (`config.example.toml` mirrors it).
//!
//! A leaf: `config` knows no provider, sink, store or telemetry. Each component
//! builds its run-time form from its own section and adds its problems to the
//! shared [`Report`] (`Source::from_config`, `Endpoint::from_config`,
//! `kafka::check`); `app::load` wires them.

mod audit;
mod dur;
mod endpoints;
mod envelopes;
mod kafka;
mod privacy;
mod report;
mod routes;
pub mod secret;
mod server;
mod sources;
mod validate;

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use audit::AuditConfig;
pub use endpoints::{BreakerConfig, DEFAULT_SCHEDULE, EndpointConfig, RateLimit};
pub use envelopes::EnvelopesConfig;
pub use kafka::{KafkaConfig, PropValue};
pub use privacy::{PrivacyConfig, RedactMode, RedactRule, Require, RequireRule};
pub use report::{ConfigError, Problem, Report};
pub use routes::{Match, RouteConfig};
pub use secret::SecretRef;
pub use server::{LogFormat, OtlpProtocol, ServerConfig, StoreConfig, TelemetryConfig};
pub use sources::{FieldMap, SourceConfig};
pub use validate::{MAX_BODY_LIMIT, check, valid_topic};

/// Environment variables with this prefix and a `__` override config keys.
pub const ENV_PREFIX: &str = "COUNTERSIGN_";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub telemetry: TelemetryConfig,
    pub kafka: KafkaConfig,
    pub envelopes: EnvelopesConfig,
    #[serde(default, skip_serializing_if = "is_default")]
    pub audit: AuditConfig,
    #[serde(default, skip_serializing_if = "is_default")]
    pub privacy: PrivacyConfig,
    pub sources: Vec<SourceConfig>,
    pub endpoints: Vec<EndpointConfig>,
    pub routes: Vec<RouteConfig>,
}

pub(crate) fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
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

/// Parses a TOML string over the defaults (tests and tools), without the
/// environment layer and without validation.
pub fn from_toml(toml: &str) -> Result<Config, ConfigError> {
    Figment::from(Serialized::defaults(Config::default()))
        .merge(Toml::string(toml))
        .extract()
        .map_err(from_figment)
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
                // No value is ever printed: a secret typed into the wrong
                // shape (`secrets = "whsec_..."`) must not reach the log.
                K::UnknownVariant(_, expected) => (
                    base,
                    "unknown value".to_owned(),
                    format!("use one of: {}", expected.join(", ")),
                ),
                K::InvalidType(actual, expected) => (
                    base,
                    format!("expected {expected}, found {}", shape(actual)),
                    String::new(),
                ),
                K::InvalidValue(actual, expected) => (
                    base,
                    format!("invalid {}: expected {expected}", shape(actual)),
                    String::new(),
                ),
                K::UnsupportedKey(actual, _) | K::Unsupported(actual) => (
                    base,
                    format!("unsupported {}", shape(actual)),
                    String::new(),
                ),
                K::Message(m) => (base, without_source(m), String::new()),
                other => (base, other.to_string(), String::new()),
            };
            Problem { key, problem, fix }
        })
        .collect();
    ConfigError(problems)
}

/// What kind of value was found, never the value.
fn shape(a: &figment::error::Actual) -> &'static str {
    use figment::error::Actual as A;
    match a {
        A::Bool(_) => "a boolean",
        A::Unsigned(_) | A::Signed(_) | A::Float(_) => "a number",
        A::Char(_) | A::Str(_) => "a string",
        A::Bytes(_) => "bytes",
        A::Unit => "an empty value",
        A::Option => "an optional value",
        A::Seq => "a list",
        A::Map => "a table",
        _ => "a value of another type",
    }
}

/// A parser's message without the source line it quotes (TOML syntax errors
/// show the offending line, which may hold a secret) and without quoted
/// values (`invalid duration "..."`).
fn without_source(m: &str) -> String {
    let kept: Vec<&str> = m
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            let numbered = t
                .split_once('|')
                .is_some_and(|(n, _)| n.trim().chars().all(|c| c.is_ascii_digit()));
            !t.is_empty() && !t.starts_with('|') && !t.starts_with('^') && !numbered
        })
        .collect();
    unquoted(&kept.join(": "))
}

/// `text` with every quoted part (`"..."`, `'...'`, `` `...` ``) replaced by `…`.
pub(crate) fn unquoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<char> = None;
    for c in text.chars() {
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if matches!(c, '"' | '\'' | '`') {
                    open = Some(c);
                }
            }
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
}

impl Config {
    /// The effective configuration as TOML; secrets show only as references.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}
