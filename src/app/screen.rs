//! Loading the plausibility checks and redactions: each source's `schema`
//! file and `require` rules, every `redact` rule (sources, endpoints,
//! routes), and `[privacy] pepper`. Problems name their key.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, RedactMode, RedactRule, Report};
use crate::pipeline::Screen;
use crate::plausibility::Checks;
use crate::privacy::{self, Redactor};

/// Shortest pepper accepted (bytes of the resolved secret).
const MIN_PEPPER: usize = 16;

/// What each part of the gateway hides or checks.
#[derive(Debug, Clone, Default)]
pub struct Screens {
    /// Per source id: checks and redactions before storing.
    pub sources: HashMap<String, Screen>,
    /// Per endpoint id: what it receives (loading moves each onto its
    /// `Endpoint::redact`).
    pub endpoints: HashMap<String, Redactor>,
    /// Per Kafka topic: the rules of every route naming it.
    pub topics: HashMap<String, Redactor>,
}

impl Screens {
    /// Per source (what is stored) and per topic, sorted, the rules it
    /// applies, for `config check` (endpoints carry theirs themselves).
    pub fn describe(&self) -> Vec<(String, Vec<String>)> {
        let sources = (self.sources.iter())
            .filter_map(|(id, s)| Some((format!("source {id} (stored)"), s.redact.as_ref()?)));
        let topics = (self.topics.iter()).map(|(t, r)| (format!("topic {t}"), r));
        let mut out: Vec<(String, &Redactor)> = sources.collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        let mut topics: Vec<_> = topics.collect();
        topics.sort_by(|a, b| a.0.cmp(&b.0));
        out.extend(topics);
        out.into_iter()
            .map(|(what, r)| (what, r.describe()))
            .collect()
    }
}

/// Builds every screen; reports what is wrong.
pub fn build(config: &Config, r: &mut Report) -> Screens {
    let hashes = config
        .sources
        .iter()
        .flat_map(|s| &s.redact)
        .chain(config.endpoints.iter().flat_map(|e| &e.redact))
        .chain(config.routes.iter().flat_map(|x| &x.redact))
        .any(|x| x.mode == RedactMode::Hash);
    let pepper = pepper(config, hashes, r);
    let pepper = pepper.as_deref();
    let mut out = Screens::default();
    for (i, s) in config.sources.iter().enumerate() {
        let key = format!("sources[{i}]");
        let ok = rules(&format!("{key}.redact"), &s.redact, true, r);
        let schema = s
            .schema
            .as_ref()
            .and_then(|p| schema(&format!("{key}.schema"), p, r));
        let checks = match Checks::compile(schema.as_ref(), &s.require) {
            Ok(c) => c.map(Arc::new),
            Err((k, problem, fix)) => {
                r.add(format!("{key}.{k}"), problem, fix);
                None
            }
        };
        let redact = ok.then(|| Redactor::new(&s.redact, pepper)).flatten();
        if checks.is_some() || redact.is_some() {
            out.sources.insert(s.id.clone(), Screen { checks, redact });
        }
    }
    for (i, e) in config.endpoints.iter().enumerate() {
        if rules(&format!("endpoints[{i}].redact"), &e.redact, false, r)
            && let Some(x) = Redactor::new(&e.redact, pepper)
        {
            out.endpoints.insert(e.id.clone(), x);
        }
    }
    let mut by_topic: HashMap<&str, Vec<Redactor>> = HashMap::new();
    for (i, route) in config.routes.iter().enumerate() {
        let key = format!("routes[{i}].redact");
        if !rules(&key, &route.redact, false, r) {
            continue;
        }
        if !route.redact.is_empty() && route.topics.is_empty() {
            r.add(
                key,
                "applies to the route's Kafka topics, but the route names none",
                "name `topics` on the route, or put the rules on the endpoints (`endpoints[].redact`)",
            );
            continue;
        }
        if let Some(x) = Redactor::new(&route.redact, pepper) {
            for t in &route.topics {
                by_topic.entry(t).or_default().push(x.clone());
            }
        }
    }
    for (t, list) in by_topic {
        if let Some(x) = Redactor::union(&list) {
            out.topics.insert(t.to_owned(), x);
        }
    }
    out
}

/// Checks each rule's path; false when any is bad.
fn rules(key: &str, rules: &[RedactRule], on_source: bool, r: &mut Report) -> bool {
    let mut ok = true;
    for (j, rule) in rules.iter().enumerate() {
        if let Err(e) = privacy::check(rule, on_source) {
            ok = false;
            r.add(
                format!("{key}[{j}].path"),
                e.to_string(),
                "write a JSON pointer into the normalized event, e.g. \"/payload/data/signer/email\" or \"/payload/recipients/*/email\"",
            );
        }
    }
    ok
}

/// `[privacy] pepper`, resolved; required when a rule hashes.
fn pepper(config: &Config, needed: bool, r: &mut Report) -> Option<Vec<u8>> {
    let Some(secret) = &config.privacy.pepper else {
        if needed {
            r.add(
                "privacy.pepper",
                "a `redact` rule has mode = \"hash\", which needs a pepper",
                "set [privacy] pepper to a reference (env:/file:) holding at least 16 random bytes, e.g. from `openssl rand -hex 32`",
            );
        }
        return None;
    };
    match secret.resolve() {
        Ok(v) if v.len() >= MIN_PEPPER => Some(v.into_bytes()),
        Ok(_) => {
            r.add(
                "privacy.pepper",
                format!("is shorter than {MIN_PEPPER} bytes"),
                "use at least 16 random bytes, e.g. from `openssl rand -hex 32`",
            );
            None
        }
        Err((problem, fix)) => {
            r.add("privacy.pepper", problem, fix);
            None
        }
    }
}

/// A source's schema file, read and parsed.
fn schema(key: &str, path: &std::path::Path, r: &mut Report) -> Option<serde_json::Value> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            r.add(
                key,
                format!("cannot read {}: {e}", path.display()),
                "give the path of a JSON Schema (2020-12) file",
            );
            return None;
        }
    };
    match serde_json::from_slice(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            r.add(
                key,
                format!(
                    "{} is not JSON: line {}, column {}",
                    path.display(),
                    e.line(),
                    e.column()
                ),
                "fix the file: it must hold one JSON Schema document",
            );
            None
        }
    }
}

#[cfg(test)]
#[path = "screen_tests.rs"]
mod tests;
