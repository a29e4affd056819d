//! `[[endpoints]]`: downstream HTTP endpoints, and the rate-limit and breaker
//! shapes they share with sources.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{SecretRef, dur};

/// The default delays before each retry of a delivery (full jitter below each).
/// With the default `max_attempts` (11) the retries span about a day on average
/// and two days at most, like the schedules of mature webhook senders.
pub const DEFAULT_SCHEDULE: &[Duration] = &[
    Duration::from_secs(5),
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
];

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
    /// Redactions of what this endpoint receives (the stored event stays
    /// complete).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<super::RedactRule>,
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
    DEFAULT_SCHEDULE.to_vec()
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
