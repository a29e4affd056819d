//! A configured endpoint with its secrets resolved, and the address policy that
//! keeps deliveries off private networks unless an endpoint allows them.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use http::{HeaderMap, Uri};

use crate::config::{BreakerConfig, RateLimit};
use crate::verify::Key;

/// An endpoint ready to deliver to. Built only by config validation.
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

/// Addresses a delivery may not reach without `allow_private`: loopback,
/// private (RFC 1918, unique local), link-local, carrier-grade NAT, unspecified,
/// multicast, broadcast, documentation and benchmarking ranges, and IPv4
/// addresses embedded in IPv6 (mapped, NAT64) that are any of these.
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
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
                let o = v6.octets();
                return is_private(IpAddr::from([o[12], o[13], o[14], o[15]]));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
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
            "64:ff9b::a9fe:a9fe",
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
        ] {
            assert!(!is_private(a.parse().unwrap()), "{a}");
        }
        assert!(is_local_name("localhost"));
        assert!(is_local_name("API.Localhost."));
        assert!(!is_local_name("localhost.example.com"));
    }
}
