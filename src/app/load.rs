//! Loading: the configuration's layers, then every component builds its
//! run-time form from its own section (sources, endpoints, Kafka, telemetry)
//! and reports its problems into one report, so all of them are shown at once.

use crate::config::{Config, ConfigError, Report};
use crate::providers::Source;
use crate::sink::webhook::Endpoint;

/// The configuration with every component's run-time form built from its
/// section, secrets resolved once.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub sources: Vec<Source>,
    pub endpoints: Vec<Endpoint>,
    /// The Kafka producer's settings, when Kafka is on.
    pub kafka: Option<rdkafka::ClientConfig>,
    pub telemetry: crate::telemetry::Settings,
    /// The admin listener's token and host rules.
    pub admin: crate::admin::Guard,
    /// The routes' `when` conditions, compiled once (one per route).
    pub(crate) conditions: crate::route::Conditions,
    /// Each source's envelope timer policy (`expire_after`, `reminders`,
    /// `escalate_after`), by source id; sources without one are left out.
    pub(crate) timer_policies: std::collections::HashMap<String, crate::envelope::timers::Policy>,
    /// The audit log's checkpoint key (`audit.signing_key`), when the audit
    /// log is on.
    pub(crate) audit_key: Option<ed25519_dalek::SigningKey>,
    /// Plausibility checks and redactions (sources, endpoints, topics).
    pub(crate) screens: super::screen::Screens,
    /// Settings that work but are weaker than they should be (shown by
    /// `config check` and logged at start-up).
    pub warnings: Vec<crate::config::Problem>,
}

/// Loads defaults → `path` (if given) → environment, then checks everything
/// and builds each component's run-time form.
pub fn load(path: Option<&std::path::Path>) -> Result<Loaded, ConfigError> {
    build(crate::config::layers(path)?)
}

/// [`load`] from a TOML string (tests and tools), without the environment layer.
pub fn load_str(toml: &str) -> Result<Loaded, ConfigError> {
    build(crate::config::from_toml(toml)?)
}

/// Checks `config` and builds the run-time sources, endpoints, Kafka and
/// telemetry settings; every problem of every component is reported at once.
pub fn build(config: Config) -> Result<Loaded, ConfigError> {
    let mut r = Report::new();
    crate::config::check(&config, &mut r);
    let default_body = config.server.max_body_bytes;
    let sources = (config.sources.iter().enumerate())
        .filter_map(|(i, s)| Source::from_config(&format!("sources[{i}]"), s, default_body, &mut r))
        .collect();
    let mut screens = super::screen::build(&config, &mut r);
    let endpoints = (config.endpoints.iter().enumerate())
        .filter_map(|(i, e)| Endpoint::from_config(&format!("endpoints[{i}]"), e, &mut r))
        .map(|mut e: Endpoint| {
            e.redact = screens.endpoints.remove(&e.id);
            e
        })
        .collect();
    let timer_policies = (config.sources.iter().enumerate())
        .map(|(i, s)| {
            let p =
                crate::envelope::timers::Policy::from_source(&format!("sources[{i}]"), s, &mut r);
            (s.id.clone(), p)
        })
        .filter(|(_, p)| !p.is_empty() || p.escalate_after_ms.is_some())
        .collect();
    let conditions = crate::route::compile(&config, &mut r);
    let audit_key = audit_key(&config, &mut r);
    let kafka = crate::sink::kafka::check(&config.kafka, &mut r);
    let telemetry = crate::telemetry::Settings::from_config(&config.telemetry, &mut r);
    let admin = crate::admin::Guard::from_config(&config.server, &mut r);
    let warnings = r.warnings().to_vec();
    r.finish(Loaded {
        config,
        sources,
        endpoints,
        kafka,
        telemetry,
        admin,
        conditions,
        audit_key,
        screens,
        timer_policies,
        warnings,
    })
}

impl Loaded {
    /// Per destination, the fields it receives redacted, as `config check`
    /// prints them (empty when nothing is redacted).
    pub fn redaction_report(&self) -> String {
        let mut all = self.screens.describe();
        all.extend(
            self.endpoints.iter().filter_map(|e| {
                Some((format!("endpoint {}", e.id), e.redact.as_ref()?.describe()))
            }),
        );
        if all.is_empty() {
            return String::new();
        }
        let mut out = String::from("redacted fields, per destination:\n");
        for (dest, rules) in all {
            out.push_str(&format!("  {dest}: {}\n", rules.join(", ")));
        }
        out
    }

    /// The audit key's public half (hex) and key id, when the audit log is on.
    pub fn audit_public_key(&self) -> Option<(String, String)> {
        let k = self.audit_key.as_ref()?.verifying_key();
        Some((
            hex::encode(k.as_bytes()),
            crate::audit::checkpoint::key_id(&k),
        ))
    }
}

/// `audit.signing_key`, resolved and parsed, when the audit log is on.
fn audit_key(config: &Config, r: &mut Report) -> Option<ed25519_dalek::SigningKey> {
    let a = &config.audit;
    if !a.enabled {
        return None;
    }
    if a.checkpoint_every == 0 {
        r.add(
            "audit.checkpoint_every",
            "is 0",
            "sign a checkpoint every N >= 1 entries",
        );
    }
    if a.checkpoint_interval < std::time::Duration::from_secs(1) {
        r.add(
            "audit.checkpoint_interval",
            "is shorter than 1s",
            "sign at most once a second, e.g. \"60s\"",
        );
    }
    if a.retention < std::time::Duration::from_secs(86_400) {
        r.add(
            "audit.retention",
            "is shorter than one day",
            "keep the audit log at least as long as its evidence is needed (default \"3652d\", 10 years)",
        );
    }
    if let Some(topic) = &a.kafka_topic {
        if config.kafka.brokers.is_none() {
            r.add(
                "audit.kafka_topic",
                "needs the Kafka sink, but kafka.brokers is not set",
                "set kafka.brokers, or remove audit.kafka_topic",
            );
        }
        if topic.trim().is_empty() {
            r.add(
                "audit.kafka_topic",
                "is empty",
                "name a topic, or remove the key",
            );
        }
    }
    let Some(secret) = &a.signing_key else {
        r.add(
            "audit.signing_key",
            "the audit log needs a key to sign its checkpoints",
            "set it to a reference (env:/file:) holding 64 hex digits, e.g. from `openssl rand -hex 32`",
        );
        return None;
    };
    let value = match secret.resolve() {
        Ok(v) => v,
        Err((problem, fix)) => {
            r.add("audit.signing_key", problem, fix);
            return None;
        }
    };
    match crate::audit::checkpoint::signing_key(&value) {
        Ok(k) => Some(k),
        Err(e) => {
            r.add(
                "audit.signing_key",
                e,
                "give 64 hex digits, e.g. from `openssl rand -hex 32`",
            );
            None
        }
    }
}

/// Every problem of a config that must be rejected (tests of loading).
#[cfg(test)]
pub(super) fn problems(toml: &str) -> Vec<crate::config::Problem> {
    load_str(toml).expect_err("config should be rejected").0
}

/// Whether `ps` has a problem at `key` whose text or fix says `words`.
#[cfg(test)]
pub(super) fn has(ps: &[crate::config::Problem], key: &str, words: &str) -> bool {
    ps.iter()
        .any(|p| p.key == key && (p.problem.contains(words) || p.fix.contains(words)))
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
