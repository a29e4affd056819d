//! The producer's settings: countersign's defaults, then `kafka.producer` on
//! top, with `env:`/`file:` references resolved once, at start-up, and checked
//! by librdkafka's own property parser (no producer is created to check them).

use rdkafka::ClientConfig;

use crate::config::{KafkaConfig, Report};

/// Checks `[kafka]` against librdkafka and resolves its secret references.
/// `Some` when Kafka is on (`kafka.brokers` set) and the settings are valid.
pub fn check(k: &KafkaConfig, r: &mut Report) -> Option<ClientConfig> {
    let before = r.len();
    let mut c = defaults(k.brokers.as_deref().unwrap_or_default());
    for (key, value) in &k.producer {
        match value.resolve() {
            Ok(v) => {
                c.set(key, v);
            }
            Err((problem, fix)) => r.add(format!("kafka.producer.\"{key}\""), problem, fix),
        }
    }
    if k.brokers.is_none() || r.len() > before {
        return None;
    }
    if let Err(e) = c.create_native_config() {
        // librdkafka names the property; the value it quotes is cut out.
        r.add(
            "kafka.producer",
            format!("librdkafka refuses the settings: {}", describe(&e)),
            "fix or remove the named property",
        );
        return None;
    }
    Some(c)
}

/// librdkafka's message without the value it quotes: `Invalid value "…" for
/// configuration property "sasl.kerberos.min.time.before.relogin"` keeps the
/// property's name (the last quoted part) and drops the value.
fn scrub(msg: &str) -> String {
    match msg.split_once("Invalid value \"") {
        Some((before, rest)) => match rest.split_once("\" for ") {
            Some((_, after)) => format!("{before}invalid value for {after}"),
            None => format!("{before}invalid value"),
        },
        None => msg.to_owned(),
    }
}

/// What librdkafka refused, without the value: rdkafka's own `Display` of a
/// config error appends the property's value.
fn describe(e: &rdkafka::error::KafkaError) -> String {
    match e {
        rdkafka::error::KafkaError::ClientConfig(_, desc, key, _) => {
            format!("{} (property \"{key}\")", scrub(desc))
        }
        other => scrub(&other.to_string()),
    }
}

/// countersign's producer defaults.
fn defaults(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("client.id", "countersign")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        // Queue length and broker round trips for the metrics.
        .set("statistics.interval.ms", "5000")
        // No local give-up: librdkafka retries until the broker takes the message.
        .set("message.timeout.ms", "0");
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PropValue;

    fn kafka() -> KafkaConfig {
        KafkaConfig {
            brokers: Some("h:1".into()),
            ..KafkaConfig::default()
        }
    }

    #[test]
    fn user_properties_override_defaults() {
        let mut k = kafka();
        k.producer
            .insert("compression.type".into(), PropValue::Text("zstd".into()));
        k.producer.insert("linger.ms".into(), PropValue::Int(20));
        let c = check(&k, &mut Report::new()).unwrap();
        assert_eq!(c.get("compression.type"), Some("zstd"));
        assert_eq!(c.get("linger.ms"), Some("20"));
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("bootstrap.servers"), Some("h:1"));
    }

    #[test]
    fn librdkafka_refuses_unknown_properties_without_a_producer() {
        let mut k = kafka();
        k.producer
            .insert("no.such.property".into(), PropValue::Text("1".into()));
        let mut r = Report::new();
        assert!(check(&k, &mut r).is_none());
        let e = r.finish(()).unwrap_err().to_string();
        assert!(
            e.contains("kafka.producer") && e.contains("no.such.property"),
            "{e}"
        );
    }

    #[test]
    fn kafka_off_builds_nothing() {
        let mut r = Report::new();
        assert!(check(&KafkaConfig::default(), &mut r).is_none());
        assert!(r.is_empty());
    }
}
