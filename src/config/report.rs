//! The problem report: every configuration problem names the key, what is
//! wrong and the fix, and all of them are reported together. Components that
//! build their run-time form from a config section add their problems here.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use super::RateLimit;

/// A configuration problem: the key, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl Problem {
    pub fn new(
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Problem {
        Problem {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
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
    pub(super) fn one(
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError(vec![Problem::new(key, problem, fix)])
    }
}

/// Problems collected while checking a configuration; each component that
/// builds its run-time form from a config section adds to the same report.
#[derive(Debug, Default)]
pub struct Report(Vec<Problem>, Vec<Problem>);

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    /// A setting that works but is weaker than it should be: `config check`
    /// and the start-up log show it; it does not stop the gateway.
    pub fn warn(
        &mut self,
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.1.push(Problem::new(key, problem, fix));
    }

    /// The warnings so far.
    pub fn warnings(&self) -> &[Problem] {
        &self.1
    }

    pub fn add(
        &mut self,
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Problem::new(key, problem, fix));
    }

    /// How many problems so far (a builder compares before and after).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was reported, else every problem.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError(self.0))
        }
    }

    pub fn positive(&mut self, key: &str, d: Duration) {
        if d.is_zero() {
            self.add(
                key,
                "must be longer than zero",
                "give a duration like \"10s\"",
            );
        }
    }

    /// `key` must not be shorter than `other_key`.
    pub fn not_shorter(
        &mut self,
        key: &str,
        v: Duration,
        other_key: &str,
        other: Duration,
        why: &str,
    ) {
        if v < other {
            self.add(
                key,
                format!("is shorter than {other_key}{why}"),
                format!("make it at least as long as {other_key}"),
            );
        }
    }

    /// `id` (at `{key}.id`) must not repeat an earlier one of its kind.
    pub fn unique(&mut self, seen: &mut HashSet<String>, key: &str, kind: &str, id: &str) {
        if !seen.insert(id.to_owned()) {
            self.add(
                format!("{key}.id"),
                format!("duplicate {kind} id `{id}`"),
                format!("give every {kind} its own id"),
            );
        }
    }

    /// An id that is a URL path segment and a metric label (sources, endpoints).
    pub fn id(&mut self, key: &str, kind: &str, id: &str) {
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid {
            self.add(
                format!("{key}.id"),
                format!("`{id}` is not a valid {kind} id"),
                "use 1-64 of A-Z a-z 0-9 - _ .",
            );
        }
    }

    pub fn rate_limit(&mut self, key: &str, rl: &RateLimit) {
        if !(rl.per_second.is_finite() && rl.per_second >= 0.001 && rl.per_second <= 1e6) {
            self.add(
                format!("{key}.per_second"),
                format!("{} is out of range", rl.per_second),
                "use a rate from 0.001 to 1000000",
            );
        }
        self.range(&format!("{key}.burst"), rl.burst as usize, 1, 1_000_000);
    }

    pub fn range(&mut self, key: &str, v: usize, lo: usize, hi: usize) {
        if v < lo || v > hi {
            self.add(
                key,
                format!("{v} is out of range"),
                format!("use a value from {lo} to {hi}"),
            );
        }
    }

    /// A header name, or a problem at `key`.
    pub fn header_name(&mut self, key: &str, v: &str) -> Option<http::HeaderName> {
        http::HeaderName::from_bytes(v.as_bytes())
            .map_err(|_| {
                self.add(
                    key,
                    format!("`{v}` is not a valid header name"),
                    "use a header name like \"X-Signature\"",
                )
            })
            .ok()
    }
}
