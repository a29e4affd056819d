//! `[kafka]`: the Kafka sink's settings and librdkafka producer properties.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SecretRef;
use super::dur;

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
    /// String values may be `env:NAME` or `file:/path` references; values
    /// print as redacted unless the key is in [`SHOWN_PROPERTIES`].
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

/// librdkafka properties whose values are shown by `config check`: tuning
/// and protocol choices, never credentials. Every other property's value
/// prints as `[redacted]` (or as its `env:`/`file:` reference), since a
/// credential can hide in a free-form one (`sasl.oauthbearer.config`).
pub const SHOWN_PROPERTIES: &[&str] = &[
    "acks",
    "batch.num.messages",
    "batch.size",
    "bootstrap.servers",
    "broker.address.family",
    "client.id",
    "compression.codec",
    "compression.level",
    "compression.type",
    "debug",
    "delivery.timeout.ms",
    "enable.idempotence",
    "linger.ms",
    "max.in.flight.requests.per.connection",
    "message.max.bytes",
    "message.send.max.retries",
    "message.timeout.ms",
    "metadata.max.age.ms",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "queue.buffering.max.ms",
    "request.timeout.ms",
    "retries",
    "retry.backoff.max.ms",
    "retry.backoff.ms",
    "sasl.mechanism",
    "sasl.mechanisms",
    "security.protocol",
    "socket.keepalive.enable",
    "socket.timeout.ms",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.endpoint.identification.algorithm",
    "ssl.key.location",
    "statistics.interval.ms",
    "topic.metadata.refresh.interval.ms",
];

/// Whether a librdkafka property's value may be shown.
pub fn shown_property(key: &str) -> bool {
    SHOWN_PROPERTIES.contains(&key)
}

fn redact_props<S: serde::Serializer>(
    props: &BTreeMap<String, PropValue>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(props.len()))?;
    for (k, v) in props {
        match v {
            _ if shown_property(k) => m.serialize_entry(k, v)?,
            PropValue::Text(t) if t.starts_with("env:") || t.starts_with("file:") => {
                m.serialize_entry(k, &SecretRef::parse(t).to_string())?
            }
            _ => m.serialize_entry(k, "[redacted]")?,
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
