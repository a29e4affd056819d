//! A configured endpoint with its secrets resolved, and the address policy that
//! keeps deliveries off private networks unless an endpoint allows them.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use http::{HeaderMap, Uri};

use crate::config::{BreakerConfig, EndpointConfig, RateLimit, Report};
use crate::sink::retry;
use crate::verify::Key;

/// An endpoint ready to deliver to. Built only by [`Endpoint::from_config`].
#[derive(Clone)]
pub struct Endpoint {
    pub id: String,
    pub url: Uri,
    /// The decoded `whsec_` key deliveries are signed with.
    pub key: Key,
    pub timeout: Duration,
    /// Extra headers, values resolved (they may hold credentials: never logged).
    pub headers: HeaderMap,
    pub max_attempts: u32,
    pub schedule: Vec<Duration>,
    pub retry_after_max: Duration,
    pub rate_limit: Option<RateLimit>,
    pub max_in_flight: usize,
    pub breaker: BreakerConfig,
    pub allow_private: bool,
    /// What this endpoint receives redacted (`endpoints[].redact`).
    pub redact: Option<crate::privacy::Redactor>,
}

impl Endpoint {
    /// The URL without its query (which may carry a token), for display.
    pub fn display_url(&self) -> String {
        let scheme = self.url.scheme_str().unwrap_or("http");
        let authority = self.url.authority().map_or("", |a| a.as_str());
        format!("{scheme}://{authority}{}", self.url.path())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("url", &self.display_url())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
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

impl Endpoint {
    /// The run-time endpoint of `endpoints[i]` (`key`), secrets resolved;
    /// problems go to `r` (and then there is no endpoint).
    pub fn from_config(key: &str, e: &EndpointConfig, r: &mut Report) -> Option<Endpoint> {
        let before = r.len();
        r.id(key, "endpoint", &e.id);
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
            Ok(v) => Key::from_whsec(&v).or_else(|| {
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
        if e.retry_after_max < retry::MIN_RETRY_AFTER {
            r.add(
                format!("{key}.retry_after_max"),
                "is shorter than 1s, the shortest Retry-After honoured",
                "set it to at least \"1s\"",
            );
        }
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
        if r.len() > before {
            return None;
        }
        Some(Endpoint {
            id: e.id.clone(),
            url: url?,
            key: secret?,
            timeout: e.timeout,
            headers,
            max_attempts: e.max_attempts,
            schedule: e.retry_schedule.clone(),
            retry_after_max: e.retry_after_max,
            rate_limit: e.rate_limit,
            max_in_flight: e.max_in_flight,
            breaker: e.breaker,
            allow_private: e.allow_private,
            redact: None,
        })
    }
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
        Ok(ip) => is_private(ip),
        Err(_) => is_local_name(host),
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
        let Some(n) = r.header_name(&k, name) else {
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

/// Addresses a delivery may not reach without `allow_private`: loopback,
/// private (RFC 1918, unique local, deprecated site-local), link-local,
/// carrier-grade NAT, unspecified, multicast, broadcast, documentation and
/// benchmarking ranges; IPv4 addresses embedded in IPv6 (mapped
/// `::ffff:0:0/96`, translated `::ffff:0:0:0/96`, NAT64 `64:ff9b::/96`) that
/// are any of these; and the IPv6 ranges that reach IPv4 in ways a resolver
/// cannot see through (the deprecated IPv4-compatible `::/96`, local-use
/// NAT64 `64:ff9b:1::/48`).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b))
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            let o = v6.octets();
            let embedded = IpAddr::from([o[12], o[13], o[14], o[15]]);
            // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (translated).
            if seg[..4] == [0, 0, 0, 0] && (seg[4..6] == [0, 0xffff] || seg[4..6] == [0xffff, 0]) {
                return is_private(embedded);
            }
            // 64:ff9b::a.b.c.d (well-known NAT64).
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_private(embedded);
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // ::a.b.c.d (IPv4-compatible, deprecated), including :: and ::1.
                || seg[..6] == [0, 0, 0, 0, 0, 0]
                // 64:ff9b:1::/48 (local-use NAT64).
                || seg[..3] == [0x64, 0xff9b, 1]
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                // fec0::/10 (site-local, deprecated).
                || (seg[0] & 0xffc0) == 0xfec0
                || (seg[0] == 0x2001 && seg[1] == 0xdb8)
        }
    }
}

/// Host names that always mean this machine.
pub fn is_local_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_public_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:0:0",
            "::ffff:0:7f00:1",
            "::ffff:0:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "::10.0.0.1",
            "::8.8.8.8",
            "64:ff9b:1::1",
            "64:ff9b:1:ffff::8.8.8.8",
            "fec0::1",
            "feff::1",
        ] {
            assert!(is_private(a.parse().unwrap()), "{a}");
        }
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "::ffff:0:8.8.8.8",
            "64:ff9b::808:808",
            "64:ff9b:2::1",
        ] {
            assert!(!is_private(a.parse().unwrap()), "{a}");
        }
        assert!(is_local_name("localhost"));
        assert!(is_local_name("API.Localhost."));
        assert!(!is_local_name("localhost.example.com"));
    }
}
