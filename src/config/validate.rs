//! The checks of the configuration that need nothing but the configuration:
//! ranges, durations, names, and references between sections (a route naming a
//! source or an endpoint). What needs a component (secrets, schemes, URLs,
//! librdkafka's own checks) is checked where that component builds itself.

use std::collections::HashSet;
use std::time::Duration;

use super::{Config, Report};

/// Largest body limit accepted (per request, held in memory while verified).
pub const MAX_BODY_LIMIT: usize = 256 * 1024 * 1024;

/// Checks everything in `c` that needs nothing else, adding problems to `r`.
pub fn check(c: &Config, r: &mut Report) {
    server(c, r);
    store(c, r);
    envelopes(c, r);
    kafka(c, r);
    let mut seen = HashSet::new();
    for (i, s) in c.sources.iter().enumerate() {
        r.unique(&mut seen, &format!("sources[{i}]"), "source", &s.id);
        for (ty, kind) in s.kinds.iter().filter(|(_, k)| k.is_derived()) {
            r.add(
                format!("sources[{i}].kinds.{ty}"),
                format!("`{kind}` is derived by countersign from envelope state; no provider event may have it"),
                "map the event type to a provider kind (e.g. \"completed\"); countersign emits envelope.* itself",
            );
        }
        let timed =
            s.expire_after.is_some() || !s.reminders.is_empty() || s.escalate_after.is_some();
        if timed && !c.envelopes.enabled {
            r.add(
                format!("sources[{i}]"),
                "expire_after, reminders and escalate_after time envelopes, but envelope tracking is off",
                "set [envelopes] enabled = true, or remove them",
            );
        }
    }
    let mut seen = HashSet::new();
    for (i, e) in c.endpoints.iter().enumerate() {
        r.unique(&mut seen, &format!("endpoints[{i}]"), "endpoint", &e.id);
    }
    routes(c, r);
}

/// Kafka's own rule for topic names.
pub fn valid_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Producer properties countersign sets itself.
const OWNED_PROPERTIES: &[(&str, &str)] = &[("bootstrap.servers", "kafka.brokers")];

fn kafka(c: &Config, r: &mut Report) {
    let k = &c.kafka;
    let topic_fix = "use 1-249 of A-Z a-z 0-9 . _ -";
    if !valid_topic(&k.default_topic) {
        r.add(
            "kafka.default_topic",
            format!("`{}` is not a valid topic name", k.default_topic),
            topic_fix,
        );
    }
    if let Some(t) = k.dlq_topic.as_deref().filter(|t| !valid_topic(t)) {
        r.add(
            "kafka.dlq_topic",
            format!("`{t}` is not a valid topic name"),
            topic_fix,
        );
    }
    if k.brokers.as_deref().is_some_and(|b| b.trim().is_empty()) {
        r.add(
            "kafka.brokers",
            "is empty",
            "give host:port[,host:port], or remove the key to turn Kafka off",
        );
    }
    r.range("kafka.max_in_flight", k.max_in_flight, 1, 1_000_000);
    r.positive("kafka.retry_backoff", k.retry_backoff);
    r.not_shorter(
        "kafka.retry_backoff_max",
        k.retry_backoff_max,
        "kafka.retry_backoff",
        k.retry_backoff,
        "",
    );
    for (prop, owner) in OWNED_PROPERTIES {
        if k.producer.contains_key(*prop) {
            r.add(
                format!("kafka.producer.\"{prop}\""),
                "is set by countersign",
                format!("use {owner} instead"),
            );
        }
    }
}

fn routes(c: &Config, r: &mut Report) {
    for (i, route) in c.routes.iter().enumerate() {
        for s in route
            .filter
            .sources
            .iter()
            .filter(|s| !c.sources.iter().any(|x| &x.id == *s))
        {
            r.add(
                format!("routes[{i}].match.sources"),
                format!("no source `{s}`"),
                "name a configured [[sources]] id",
            );
        }
        for e in route.endpoints.iter() {
            if !c.endpoints.iter().any(|x| &x.id == e) {
                r.add(
                    format!("routes[{i}].endpoints"),
                    format!("no endpoint `{e}`"),
                    "name a configured [[endpoints]] id",
                );
            }
        }
        for t in route.topics.iter().filter(|t| !valid_topic(t)) {
            r.add(
                format!("routes[{i}].topics"),
                format!("`{t}` is not a valid topic name"),
                "use 1-249 of A-Z a-z 0-9 . _ -",
            );
        }
        let names: Vec<_> = c.routes.iter().filter_map(|r| r.name.as_ref()).collect();
        if let Some(name) = &route.name
            && names.iter().filter(|n| **n == name).count() > 1
        {
            r.add(
                format!("routes[{i}].name"),
                format!("route name `{name}` is used more than once"),
                "give each route its own name",
            );
        }
        if route.topics.is_empty() && route.endpoints.is_empty() {
            r.add(
                format!("routes[{i}]"),
                "route sends nowhere",
                "list at least one topic or endpoint",
            );
        }
    }
}

fn server(c: &Config, r: &mut Report) {
    let s = &c.server;
    if s.listen == s.admin_listen && s.listen.port() != 0 {
        r.add(
            "server.admin_listen",
            "same address as server.listen",
            "give the admin listener its own port",
        );
    }
    if !s.admin_listen.ip().is_loopback() && s.admin_token.is_none() && !s.admin_insecure {
        r.add(
            "server.admin_token",
            format!(
                "not set, and server.admin_listen ({}) is reachable from other machines: anyone there could read every event and replay or discard deliveries",
                s.admin_listen
            ),
            "set admin_token = \"env:COUNTERSIGN_ADMIN_TOKEN\" (clients send Authorization: Bearer <token>), or admin_listen = \"127.0.0.1:9090\", or admin_insecure = true behind a network policy",
        );
    }
    r.range(
        "server.admin_max_response_bytes",
        s.admin_max_response_bytes,
        4 * 1024,
        1 << 30,
    );
    r.range("server.admin_threads", s.admin_threads, 1, 64);
    r.range("server.max_body_bytes", s.max_body_bytes, 1, MAX_BODY_LIMIT);
    r.range(
        "server.max_header_bytes",
        s.max_header_bytes,
        8192,
        1024 * 1024,
    );
    r.range("server.max_connections", s.max_connections, 1, 1_000_000);
    r.positive("server.header_read_timeout", s.header_read_timeout);
    r.positive("server.body_read_timeout", s.body_read_timeout);
    r.positive("server.shutdown_timeout", s.shutdown_timeout);
    r.range(
        "server.max_requests_per_client",
        s.max_requests_per_client,
        1,
        1_000_000,
    );
    r.range(
        "server.max_requests_in_flight",
        s.max_requests_in_flight,
        1,
        1_000_000,
    );
    if let Some(rl) = &s.client_rate_limit {
        r.rate_limit("server.client_rate_limit", rl);
    }
    if let Some(h) = &s.client_ip_header {
        r.header_name("server.client_ip_header", h);
    }
    r.range(
        "server.max_tracked_clients",
        s.max_tracked_clients,
        1,
        10_000_000,
    );
}

fn store(c: &Config, r: &mut Report) {
    let s = &c.store;
    if s.path.as_os_str().is_empty() {
        r.add(
            "store.path",
            "is empty",
            "give a directory, e.g. \"./data\"",
        );
    }
    r.positive("store.dedup_ttl", s.dedup_ttl);
    r.positive("store.retention", s.retention);
    r.positive("store.sweep_interval", s.sweep_interval);
    r.not_shorter(
        "store.retention",
        s.retention,
        "store.dedup_ttl",
        s.dedup_ttl,
        " (a dedup claim lives with its event)",
    );
    r.range("store.max_batch", s.max_batch, 1, 100_000);
    r.range(
        "store.cache_bytes",
        s.cache_bytes,
        1024 * 1024,
        64 * 1024 * 1024 * 1024,
    );
    r.range("store.queue_capacity", s.queue_capacity, 1, 10_000_000);
    r.range("store.sweep_batch", s.sweep_batch, 1, 10_000_000);
    r.positive("store.wal_checkpoint_interval", s.wal_checkpoint_interval);
    r.not_shorter(
        "store.wal_checkpoint_interval",
        s.wal_checkpoint_interval,
        "store.wal_checkpoint_idle",
        s.wal_checkpoint_idle,
        " (the idle checkpoint comes sooner, never later)",
    );
    r.range(
        "store.wal_max_bytes",
        s.wal_max_bytes,
        1024 * 1024,
        16 * 1024 * 1024 * 1024,
    );
}

fn envelopes(c: &Config, r: &mut Report) {
    let e = &c.envelopes;
    r.not_shorter(
        "envelopes.retention",
        e.retention,
        "store.retention",
        c.store.retention,
        " (an envelope outlives its events)",
    );
    r.range("envelopes.max_signers", e.max_signers, 1, 1_000);
    r.positive("envelopes.timer_interval", e.timer_interval);
    r.range("envelopes.timer_batch", e.timer_batch, 1, 100_000);
    r.range("envelopes.max_history", e.max_history, 16, 1_000_000);
    r.range(
        "envelopes.cache_envelopes",
        e.cache_envelopes,
        1,
        10_000_000,
    );
    r.range(
        "envelopes.max_registration_bytes",
        e.max_registration_bytes,
        1024,
        16 * 1024 * 1024,
    );
    r.range(
        "envelopes.stream_max_subscribers",
        e.stream_max_subscribers,
        0,
        1_000_000,
    );
    r.range("envelopes.stream_buffer", e.stream_buffer, 16, 1_000_000);
    r.range(
        "envelopes.stream_max_replay",
        e.stream_max_replay,
        0,
        100_000_000,
    );
    r.positive("envelopes.stream_keepalive", e.stream_keepalive);
    if e.stream_coalesce > Duration::from_secs(1) {
        r.add(
            "envelopes.stream_coalesce",
            "is longer than 1s (every change would wait that long)",
            "use at most \"1s\"; \"10ms\" is the default, \"0s\" sends each commit's changes at once",
        );
    }
}
