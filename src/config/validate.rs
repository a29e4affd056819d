//! Start-up validation: every rule names the key it checks and the fix, and all
//! problems are reported at once. Builds the run-time [`Source`]s (secrets resolved).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use base64::Engine as _;
use http::HeaderName;

use super::{Config, ConfigError, EndpointConfig, Problem, RateLimit, SourceConfig};
use crate::providers::{Provider, Source};
use crate::sink::http::Endpoint;
use crate::verify::{HeaderMac, Key, Scheme, Template};

/// Largest body limit accepted (per request, held in memory while verified).
pub const MAX_BODY_LIMIT: usize = 256 * 1024 * 1024;

struct Report(Vec<Problem>);

impl Report {
    fn add(&mut self, key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    fn positive(&mut self, key: &str, d: Duration) {
        if d.is_zero() {
            self.add(
                key,
                "must be longer than zero",
                "give a duration like \"10s\"",
            );
        }
    }

    /// `key` must not be shorter than `other_key`.
    fn not_shorter(&mut self, key: &str, v: Duration, other_key: &str, other: Duration, why: &str) {
        if v < other {
            self.add(
                key,
                format!("is shorter than {other_key}{why}"),
                format!("make it at least as long as {other_key}"),
            );
        }
    }

    /// `id` (at `{key}.id`) must not repeat an earlier one of its kind.
    fn unique(&mut self, seen: &mut HashSet<String>, key: &str, kind: &str, id: &str) {
        if !seen.insert(id.to_owned()) {
            self.add(
                format!("{key}.id"),
                format!("duplicate {kind} id `{id}`"),
                format!("give every {kind} its own id"),
            );
        }
    }

    fn rate_limit(&mut self, key: &str, rl: &RateLimit) {
        if !(rl.per_second.is_finite() && rl.per_second >= 0.001 && rl.per_second <= 1e6) {
            self.add(
                format!("{key}.per_second"),
                format!("{} is out of range", rl.per_second),
                "use a rate from 0.001 to 1000000",
            );
        }
        self.range(&format!("{key}.burst"), rl.burst as usize, 1, 1_000_000);
    }

    fn range(&mut self, key: &str, v: usize, lo: usize, hi: usize) {
        if v < lo || v > hi {
            self.add(
                key,
                format!("{v} is out of range"),
                format!("use a value from {lo} to {hi}"),
            );
        }
    }
}

pub(super) fn check(c: &Config) -> Result<(Vec<Source>, Vec<Endpoint>), ConfigError> {
    let mut r = Report(Vec::new());
    server(c, &mut r);
    store(c, &mut r);
    telemetry(c, &mut r);
    kafka(c, &mut r);
    let mut seen = HashSet::new();
    let sources: Vec<Source> = c
        .sources
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let key = format!("sources[{i}]");
            r.unique(&mut seen, &key, "source", &s.id);
            source(&key, s, c.server.max_body_bytes, &mut r)
        })
        .collect();
    let endpoints = endpoints(c, &mut r);
    routes(c, &seen, &mut r);
    if r.0.is_empty() {
        Ok((sources, endpoints))
    } else {
        Err(ConfigError(r.0))
    }
}

/// Kafka's own rule for topic names.
fn valid_topic(t: &str) -> bool {
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
    for (prop, value) in &k.producer {
        if let Err((problem, fix)) = value.resolve() {
            r.add(format!("kafka.producer.\"{prop}\""), problem, fix);
        }
    }
    for (prop, owner) in OWNED_PROPERTIES {
        if k.producer.contains_key(*prop) {
            r.add(
                format!("kafka.producer.\"{prop}\""),
                "is set by countersign",
                format!("use {owner} instead"),
            );
        }
    }
    if k.brokers.is_some()
        && let Err(e) =
            crate::sink::kafka::producer_config(k).create::<rdkafka::producer::BaseProducer>()
    {
        r.add(
            "kafka.producer",
            format!("librdkafka refuses the settings: {e}"),
            "fix or remove the named property",
        );
    }
}

fn routes(c: &Config, sources: &HashSet<String>, r: &mut Report) {
    for (i, route) in c.routes.iter().enumerate() {
        for s in route.when.sources.iter().filter(|s| !sources.contains(*s)) {
            r.add(
                format!("routes[{i}].match.sources"),
                format!("no source `{s}`"),
                "name a configured [[sources]] id",
            );
        }
        for p in &route.when.providers {
            if serde_json::from_value::<Provider>(serde_json::Value::String(p.clone())).is_err() {
                r.add(
                    format!("routes[{i}].match.providers"),
                    format!("no provider `{p}`"),
                    "use a provider id such as \"docusign\"",
                );
            }
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
        "server.max_requests_in_flight",
        s.max_requests_in_flight,
        1,
        1_000_000,
    );
    if let Some(rl) = &s.client_rate_limit {
        r.rate_limit("server.client_rate_limit", rl);
    }
    if let Some(h) = &s.client_ip_header {
        header_name("server.client_ip_header", h, r);
    }
    r.range(
        "server.max_tracked_clients",
        s.max_tracked_clients,
        1,
        10_000_000,
    );
}

fn telemetry(c: &Config, r: &mut Report) {
    let t = &c.telemetry;
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&t.log_level) {
        r.add(
            "telemetry.log_level",
            format!("invalid filter: {e}"),
            "use e.g. \"info\" or \"countersign=debug,info\"",
        );
    }
    if let Some(url) = &t.otlp_endpoint {
        let ok = url
            .parse::<http::Uri>()
            .ok()
            .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
        if ok.is_none() {
            r.add(
                "telemetry.otlp_endpoint",
                format!("{url:?} is not an http(s) URL"),
                "give the collector's OTLP/HTTP address, e.g. \"http://otel-collector:4318\"",
            );
        }
    }
    for (name, value) in &t.otlp_headers {
        let k = format!("telemetry.otlp_headers.\"{name}\"");
        header_name(&k, name, r);
        if let Err((problem, fix)) = value.resolve() {
            r.add(k, problem, fix);
        }
    }
    r.positive("telemetry.otlp_timeout", t.otlp_timeout);
    if !(0.0..=1.0).contains(&t.trace_sample_ratio) {
        r.add(
            "telemetry.trace_sample_ratio",
            format!("{} is out of range", t.trace_sample_ratio),
            "use a share from 0.0 (none) to 1.0 (all)",
        );
    }
    if t.service_name.trim().is_empty() {
        r.add(
            "telemetry.service_name",
            "is empty",
            "name the service, e.g. \"countersign\"",
        );
    }
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
}

/// A source id is a URL path segment.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn source(key: &str, s: &SourceConfig, default_body: usize, r: &mut Report) -> Option<Source> {
    let before = r.0.len();
    if !valid_id(&s.id) {
        r.add(
            format!("{key}.id"),
            format!("`{}` is not a valid source id", s.id),
            "use 1-64 of A-Z a-z 0-9 - _ .",
        );
    }
    if s.secrets.is_empty() {
        r.add(
            format!("{key}.secrets"),
            "no secret given",
            secrets_hint(s.provider),
        );
    }
    if let Some(rl) = &s.rate_limit {
        r.rate_limit(&format!("{key}.rate_limit"), rl);
    }
    if let Some(b) = s.max_body_bytes {
        r.range(&format!("{key}.max_body_bytes"), b, 1, MAX_BODY_LIMIT);
    }
    for (k, p) in s.fields.pointers() {
        if !p.is_empty() && !p.starts_with('/') {
            r.add(
                format!("{key}.fields.{k}"),
                format!("`{p}` is not a JSON pointer"),
                "write it like \"/data/envelope_id\"",
            );
        }
    }
    let keys = resolve_keys(key, s, r);
    let scheme = scheme(key, s, r);
    if r.0.len() > before {
        return None;
    }
    Some(Source {
        id: s.id.clone(),
        provider: s.provider,
        scheme: scheme?,
        keys,
        tolerance_secs: s.tolerance.as_secs() as i64,
        max_body_bytes: s.max_body_bytes.unwrap_or(default_body),
        rate_limit: s.rate_limit,
        kinds: s
            .kinds
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect::<HashMap<_, _>>(),
        fields: s.fields.clone(),
    })
}

fn secrets_hint(p: Provider) -> &'static str {
    match p {
        Provider::AdobeSign => "list the Adobe Sign client id(s) in secrets",
        Provider::Skribble | Provider::Signius => {
            "list the URL token(s) in secrets; callbacks go to /hooks/{id}/{token}"
        }
        Provider::Documenso => "list the Documenso webhook secret in secrets",
        Provider::DropboxSign => "list the Dropbox Sign API key in secrets",
        Provider::StandardWebhooks => "list the whsec_... signing secret(s) in secrets",
        _ => "list the webhook signing secret(s) in secrets, e.g. [\"env:NAME\"]",
    }
}

fn resolve_keys(key: &str, s: &SourceConfig, r: &mut Report) -> Vec<Key> {
    let mut keys = Vec::new();
    for (j, sref) in s.secrets.iter().enumerate() {
        let k = format!("{key}.secrets[{j}]");
        match sref.resolve() {
            Ok(v) if s.provider.uses_whsec_keys() => match whsec_key(&v) {
                Some(bytes) => keys.push(Key::new(bytes)),
                None => r.add(
                    k,
                    "not a Standard Webhooks secret",
                    "use the whsec_<base64> secret as issued",
                ),
            },
            Ok(v) => keys.push(Key::new(v.into_bytes())),
            Err((problem, fix)) => r.add(k, problem, fix),
        }
    }
    keys
}

/// `whsec_<base64>` → the decoded key bytes.
fn whsec_key(v: &str) -> Option<Vec<u8>> {
    let b64 = v.strip_prefix("whsec_").unwrap_or(v);
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .filter(|k| !k.is_empty())
}

fn header_name(key: &str, v: &str, r: &mut Report) -> Option<HeaderName> {
    HeaderName::from_bytes(v.as_bytes())
        .map_err(|_| {
            r.add(
                key,
                format!("`{v}` is not a valid header name"),
                "use a header name like \"X-Signature\"",
            )
        })
        .ok()
}

/// The scheme: built in, or assembled from the `generic_hmac` keys.
fn scheme(key: &str, s: &SourceConfig, r: &mut Report) -> Option<Scheme> {
    let generic_keys = [
        ("header", s.header.is_some()),
        ("prefix", s.prefix.is_some()),
        ("encoding", s.encoding.is_some()),
        ("algorithm", s.algorithm.is_some()),
        ("template", s.template.is_some()),
        ("timestamp_header", s.timestamp_header.is_some()),
        ("id_header", s.id_header.is_some()),
    ];
    if let Some(builtin) = s.provider.scheme() {
        for (k, _) in generic_keys.iter().filter(|(_, set)| *set) {
            r.add(
                format!("{key}.{k}"),
                format!(
                    "only applies to provider = \"generic_hmac\", not \"{}\"",
                    s.provider.as_str()
                ),
                "remove it",
            );
        }
        return Some(builtin);
    }
    let Some(header) = &s.header else {
        r.add(
            format!("{key}.header"),
            "generic_hmac needs the signature header",
            "set header = \"X-Signature\" (or the provider's)",
        );
        return None;
    };
    let header = header_name(&format!("{key}.header"), header, r)?;
    let template = Template::parse(s.template.as_deref().unwrap_or("{body}"))
        .map_err(|e| {
            r.add(
                format!("{key}.template"),
                e,
                "e.g. template = \"{timestamp}.{body}\"",
            )
        })
        .ok()?;
    let opt_header = |name: &str, v: &Option<String>, r: &mut Report| match v {
        Some(v) => header_name(&format!("{key}.{name}"), v, r).map(Some),
        None => Some(None),
    };
    let timestamp_header = opt_header("timestamp_header", &s.timestamp_header, r)?;
    let id_header = opt_header("id_header", &s.id_header, r)?;
    let needs = |part| template.0.contains(&part);
    if needs(crate::verify::TemplatePart::Timestamp) && timestamp_header.is_none() {
        r.add(
            format!("{key}.timestamp_header"),
            "template uses {timestamp} but no timestamp header is set",
            "set timestamp_header",
        );
        return None;
    }
    if needs(crate::verify::TemplatePart::Id) && id_header.is_none() {
        r.add(
            format!("{key}.id_header"),
            "template uses {id} but no id header is set",
            "set id_header",
        );
        return None;
    }
    Some(Scheme::HeaderMac(HeaderMac {
        header,
        prefix: s.prefix.clone().unwrap_or_default(),
        encoding: s.encoding.unwrap_or_default(),
        algorithm: s.algorithm.unwrap_or_default(),
        template,
        timestamp_header,
        id_header,
    }))
}

/// Header names countersign sets on deliveries itself.
const OWNED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "traceparent",
];

fn endpoints(c: &Config, r: &mut Report) -> Vec<Endpoint> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, e) in c.endpoints.iter().enumerate() {
        let key = format!("endpoints[{i}]");
        r.unique(&mut seen, &key, "endpoint", &e.id);
        if let Some(ep) = endpoint(&key, e, r) {
            out.push(ep);
        }
    }
    out
}

fn endpoint(key: &str, e: &EndpointConfig, r: &mut Report) -> Option<Endpoint> {
    let before = r.0.len();
    if !valid_id(&e.id) {
        r.add(
            format!("{key}.id"),
            format!("`{}` is not a valid endpoint id", e.id),
            "use 1-64 of A-Z a-z 0-9 - _ .",
        );
    }
    let url = endpoint_url(key, e, r);
    let secret = match &e.secret {
        None => {
            r.add(
                format!("{key}.secret"),
                "no secret given (deliveries are signed per Standard Webhooks)",
                "set secret = \"env:NAME\" holding whsec_<base64>, e.g. from `echo whsec_$(openssl rand -base64 32)`",
            );
            None
        }
        Some(s) => match s.resolve() {
            Ok(v) => whsec_key(&v).or_else(|| {
                r.add(
                    format!("{key}.secret"),
                    "not a Standard Webhooks secret",
                    "use whsec_ followed by base64, e.g. from `echo whsec_$(openssl rand -base64 32)`",
                );
                None
            }),
            Err((problem, fix)) => {
                r.add(format!("{key}.secret"), problem, fix);
                None
            }
        },
    };
    let headers = endpoint_headers(key, e, r);
    r.positive(&format!("{key}.timeout"), e.timeout);
    if e.timeout > Duration::from_secs(300) {
        r.add(
            format!("{key}.timeout"),
            "is longer than 5m",
            "use at most \"5m\"; slow receivers should answer first and work later",
        );
    }
    r.range(
        &format!("{key}.max_attempts"),
        e.max_attempts as usize,
        1,
        1000,
    );
    if e.retry_schedule.is_empty() {
        r.add(
            format!("{key}.retry_schedule"),
            "is empty",
            "list the delays before each retry, e.g. [\"5s\", \"1m\", \"30m\"]",
        );
    }
    for (j, d) in e.retry_schedule.iter().enumerate() {
        r.positive(&format!("{key}.retry_schedule[{j}]"), *d);
    }
    r.positive(&format!("{key}.retry_after_max"), e.retry_after_max);
    if let Some(rl) = &e.rate_limit {
        r.rate_limit(&format!("{key}.rate_limit"), rl);
    }
    r.range(&format!("{key}.max_in_flight"), e.max_in_flight, 1, 10_000);
    r.range(
        &format!("{key}.breaker.failures"),
        e.breaker.failures as usize,
        1,
        1_000_000,
    );
    r.positive(&format!("{key}.breaker.cooldown"), e.breaker.cooldown);
    if r.0.len() > before {
        return None;
    }
    Some(Endpoint {
        id: e.id.clone(),
        url: url?,
        key: Key::new(secret?),
        timeout: e.timeout,
        headers,
        max_attempts: e.max_attempts,
        schedule: e.retry_schedule.clone(),
        retry_after_max: e.retry_after_max,
        rate_limit: e.rate_limit,
        max_in_flight: e.max_in_flight,
        breaker: e.breaker,
        allow_private: e.allow_private,
    })
}

fn endpoint_url(key: &str, e: &EndpointConfig, r: &mut Report) -> Option<http::Uri> {
    let k = format!("{key}.url");
    let url: http::Uri = match e.url.parse() {
        Ok(u) => u,
        Err(err) => {
            r.add(
                k,
                format!("not a URL: {err}"),
                "write it like \"https://billing.internal/hooks\"",
            );
            return None;
        }
    };
    if !matches!(url.scheme_str(), Some("http" | "https")) {
        r.add(
            k,
            "must start with http:// or https://",
            "give the full URL",
        );
        return None;
    }
    let Some(authority) = url.authority() else {
        r.add(k, "has no host", "give the full URL");
        return None;
    };
    if authority.as_str().contains('@') {
        r.add(
            k,
            "carries credentials",
            "remove user:password@ and send credentials in [endpoints.headers], e.g. Authorization = \"env:TOKEN\"",
        );
        return None;
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let private = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => crate::sink::http::is_private(ip),
        Err(_) => crate::sink::http::is_local_name(host),
    };
    if private && !e.allow_private {
        r.add(
            k,
            format!("`{host}` is a private, loopback or link-local address"),
            "use a public address, or set allow_private = true for this endpoint (sidecars, internal services)",
        );
        return None;
    }
    Some(url)
}

fn endpoint_headers(key: &str, e: &EndpointConfig, r: &mut Report) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &e.headers {
        let k = format!("{key}.headers.\"{name}\"");
        let Some(n) = header_name(&k, name, r) else {
            continue;
        };
        if OWNED_HEADERS.contains(&n.as_str()) {
            r.add(k, "is set by countersign", "remove it");
            continue;
        }
        match value.resolve() {
            Ok(v) => match http::HeaderValue::from_str(&v) {
                Ok(mut hv) => {
                    hv.set_sensitive(true);
                    headers.append(n, hv);
                }
                Err(_) => r.add(
                    k,
                    "value is not a valid header value",
                    "remove line breaks and control characters",
                ),
            },
            Err((problem, fix)) => r.add(k, problem, fix),
        }
    }
    headers
}
