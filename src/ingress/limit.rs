//! Ingress limits of the public listener: a cap on requests handled at once
//! (load shedding: 503 at once beyond it) and a rate limit per client address
//! (checked before anything is read). Over it the answer is 429 with
//! `Retry-After`; nothing is stored. The per-source limit lives in the
//! [`Pipeline`](crate::pipeline::Pipeline): it is checked after authentication,
//! so forged requests cannot use up a provider's budget.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, HeaderName};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{RateLimit, ServerConfig};

/// The limits, shared by all connections of the public listener.
pub struct Ingress {
    in_flight: Arc<Semaphore>,
    clients: Option<Clients>,
    client_ip_header: Option<HeaderName>,
}

/// The per-client limiter; replaced by a fresh one when it tracks too many.
struct Clients {
    quota: Quota,
    max: usize,
    limiter: Mutex<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

impl Ingress {
    pub fn new(cfg: &ServerConfig) -> Ingress {
        Ingress {
            in_flight: Arc::new(Semaphore::new(cfg.max_requests_in_flight)),
            clients: cfg.client_rate_limit.map(|rl: RateLimit| Clients {
                quota: crate::ratelimit::quota(&rl),
                max: cfg.max_tracked_clients,
                limiter: Mutex::new(Arc::new(RateLimiter::keyed(crate::ratelimit::quota(&rl)))),
            }),
            client_ip_header: cfg
                .client_ip_header
                .as_deref()
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
        }
    }

    /// A slot for one request, or `None` when `max_requests_in_flight` are
    /// being handled.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().ok()
    }

    /// The client's address: the last entry of the configured header when it
    /// holds one, else the peer's.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        self.client_ip_header
            .as_ref()
            .and_then(|h| headers.get_all(h).iter().next_back())
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
            .unwrap_or_else(|| peer.ip())
    }

    /// `Err(seconds to wait)` when `client` is over its rate.
    pub fn check_client(&self, client: IpAddr) -> Result<(), u64> {
        let Some(c) = &self.clients else {
            return Ok(());
        };
        let key = limit_key(client);
        let limiter = c.limiter.lock().map(|l| l.clone());
        let Ok(limiter) = limiter else {
            return Ok(());
        };
        let r = limiter
            .check_key(&key)
            .map_err(|n| crate::ratelimit::retry_after(&n));
        if limiter.len() > c.max {
            limiter.retain_recent();
            if limiter.len() > c.max {
                tracing::warn!(
                    tracked = limiter.len(),
                    max = c.max,
                    "server.max_tracked_clients reached; the per-client rate limiter starts afresh"
                );
                if let Ok(mut l) = c.limiter.lock() {
                    *l = Arc::new(RateLimiter::keyed(c.quota));
                }
            }
        }
        r
    }

    /// Forgets clients whose state is back to fresh; run every `every`.
    pub async fn tidy(&self, every: Duration, mut shutdown: crate::shutdown::Shutdown) {
        let Some(c) = &self.clients else { return };
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.begun() => return,
            }
            if let Ok(l) = c.limiter.lock().map(|l| l.clone()) {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
    }
}

/// IPv4 addresses as they are; IPv6 by /64 (one client usually holds a whole
/// /64, so limiting single addresses would be no limit).
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(toml: &str) -> Ingress {
        let loaded = crate::app::load_str(toml).unwrap();
        Ingress::new(&loaded.config.server)
    }

    #[test]
    fn clients_over_their_burst_wait_a_whole_second_at_least() {
        let i = ingress("[server]\nclient_rate_limit = { per_second = 1, burst = 2 }\n");
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(i.check_client(a).is_ok());
        assert!(i.check_client(a).is_ok());
        assert_eq!(i.check_client(a), Err(1));
        assert!(i.check_client(b).is_ok(), "clients are limited apart");
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let i = ingress("[server]\nclient_rate_limit = { per_second = 0.01, burst = 1 }\n");
        assert!(i.check_client("2001:db8::1".parse().unwrap()).is_ok());
        assert_eq!(i.check_client("2001:db8::2".parse().unwrap()), Err(100));
        assert!(i.check_client("2001:db8:0:1::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn the_tracked_client_count_is_bounded() {
        let i = ingress(
            "[server]\nclient_rate_limit = { per_second = 0.01, burst = 1 }\nmax_tracked_clients = 10\n",
        );
        for n in 0..100u8 {
            let _ = i.check_client(IpAddr::from([10, 0, 1, n]));
            let len = i.clients.as_ref().unwrap().limiter.lock().unwrap().len();
            assert!(len <= 10, "{len}");
        }
    }

    #[test]
    fn the_client_address_comes_from_the_last_header_entry_when_configured() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        assert_eq!(ingress("").client(peer, &h), peer.ip());
        let i = ingress("[server]\nclient_ip_header = \"x-forwarded-for\"\n");
        assert_eq!(
            i.client(peer, &h),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        h.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(i.client(peer, &h), peer.ip());
    }

    #[test]
    fn the_in_flight_cap_sheds() {
        let i = ingress("[server]\nmax_requests_in_flight = 2\n");
        let a = i.admit().unwrap();
        let _b = i.admit().unwrap();
        assert!(i.admit().is_none());
        drop(a);
        assert!(i.admit().is_some());
    }
}
