//! Ingress limits of the public listener: a cap on requests handled at once
//! (load shedding: 503 at once beyond it) and a rate limit per client address
//! (checked before anything is read). Over it the answer is 429 with
//! `Retry-After`; nothing is stored. The per-client states are bounded by
//! `server.max_tracked_clients`, the least recently seen evicted first. The per-source limit lives in the
//! [`Pipeline`](crate::pipeline::Pipeline): it is checked after authentication,
//! so forged requests cannot use up a provider's budget.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use governor::RateLimiter;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed, StateStore};
use hashlink::LruCache;
use http::{HeaderMap, HeaderName};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ServerConfig;
use crate::time::Clock;

/// The limits, shared by all connections of the public listener.
pub struct Ingress {
    in_flight: Arc<Semaphore>,
    /// Open requests per client (limit key), bodies being read included.
    busy: Arc<Busy>,
    max_per_client: usize,
    clients: Option<ClientLimiter>,
    client_ip_header: Option<HeaderName>,
}

type ClientLimiter = RateLimiter<IpAddr, Recent, Clock, NoOpMiddleware<std::time::Duration>>;

/// The per-client rate states of the `server.max_tracked_clients` most
/// recently seen clients. A new client beyond that evicts the one seen least
/// recently (whose state is the most likely to be back to fresh), so a
/// stream of new addresses cannot reset everyone's limit.
pub struct Recent {
    states: Mutex<LruCache<IpAddr, InMemoryState>>,
}

impl Recent {
    fn new(max: usize) -> Recent {
        Recent {
            states: Mutex::new(LruCache::new(max.max(1))),
        }
    }
}

impl StateStore for Recent {
    type Key = IpAddr;

    fn measure_and_replace<T, F, E>(&self, key: &IpAddr, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut states = self
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if states.get(key).is_none() {
            // Inserting beyond the capacity evicts the least recently used.
            states.insert(*key, InMemoryState::default());
        }
        let state = states.get(key).expect("inserted above");
        state.measure_and_replace(&NotKeyed::NonKey, f)
    }
}

impl Ingress {
    pub fn new(cfg: &ServerConfig, clock: Clock) -> Ingress {
        Ingress {
            in_flight: Arc::new(Semaphore::new(cfg.max_requests_in_flight)),
            busy: Arc::new(Busy::new()),
            max_per_client: cfg.max_requests_per_client,
            clients: cfg.client_rate_limit.map(|rl| {
                RateLimiter::new(
                    crate::ratelimit::quota(&rl),
                    Recent::new(cfg.max_tracked_clients),
                    clock,
                )
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
    /// holds one (`ip`, `ip:port`, `[v6]` or `[v6]:port`), else the peer's.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        self.client_ip_header
            .as_ref()
            .and_then(|h| headers.get_all(h).iter().next_back())
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| parse_client(v.trim()))
            .unwrap_or_else(|| peer.ip())
    }

    /// A place for one more open request of `client` (IPv6: its /64), or
    /// `None` when it has `server.max_requests_per_client` open already.
    pub fn client_slot(&self, client: IpAddr) -> Option<ClientSlot> {
        let idx = self.busy.slots(limit_key(client));
        let counts = &self.busy.counts;
        let a = counts[idx[0]].fetch_add(1, Ordering::AcqRel);
        let b = counts[idx[1]].fetch_add(1, Ordering::AcqRel);
        let slot = ClientSlot {
            busy: self.busy.clone(),
            idx,
        };
        // Both counters count this client (and whoever shares a bucket):
        // the smaller is the closer count.
        (a.min(b) < self.max_per_client as u32).then_some(slot)
    }

    /// `Err(seconds to wait)` when `client` is over its rate.
    pub fn check_client(&self, client: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.clients else {
            return Ok(());
        };
        limiter
            .check_key(&limit_key(client))
            .map_err(|n| crate::ratelimit::retry_after(&n, limiter.clock()))
    }
}

/// Open requests per client, counted lock-free in a count-min sketch: two
/// rows of atomic counters, each indexed by its own hash of the client. A
/// client's count is the smaller of its two counters; sharing a counter with
/// another client can only make it look busier, and only when both of its
/// counters are shared. Fixed memory, however many clients.
pub struct Busy {
    counts: Box<[AtomicU32]>,
    hashers: [RandomState; 2],
}

/// Counters per row.
const BUCKETS: usize = 4096;

impl Busy {
    fn new() -> Busy {
        Busy {
            counts: (0..2 * BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            hashers: [RandomState::new(), RandomState::new()],
        }
    }

    fn slots(&self, key: IpAddr) -> [usize; 2] {
        let [a, b] = &self.hashers;
        [
            (a.hash_one(key) as usize) % BUCKETS,
            BUCKETS + (b.hash_one(key) as usize) % BUCKETS,
        ]
    }
}

/// One open request of a client; freed when dropped.
pub struct ClientSlot {
    busy: Arc<Busy>,
    idx: [usize; 2],
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        for i in self.idx {
            self.busy.counts[i].fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:5678`.
fn parse_client(v: &str) -> Option<IpAddr> {
    v.parse::<IpAddr>()
        .ok()
        .or_else(|| v.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            v.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse().ok())
        })
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
        Ingress::new(&loaded.config.server, Clock::System)
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
        let first = IpAddr::from([10, 0, 1, 0]);
        assert!(i.check_client(first).is_ok());
        assert!(i.check_client(first).is_err());
        // Ten newer clients push the first out: its state is forgotten.
        for n in 1..=10u8 {
            assert!(i.check_client(IpAddr::from([10, 0, 1, n])).is_ok());
        }
        assert!(i.check_client(first).is_ok(), "forgotten, so fresh");
    }

    /// A stream of new addresses (an attacker cycling IPv6 /64s) evicts only
    /// the least recently seen clients: a client seen recently keeps its
    /// state, so it stays limited.
    #[test]
    fn new_clients_beyond_the_bound_evict_the_least_recent_not_everyone() {
        let i = ingress(
            "[server]\nclient_rate_limit = { per_second = 0.01, burst = 1 }\nmax_tracked_clients = 10\n",
        );
        let busy: IpAddr = "203.0.113.5".parse().unwrap();
        assert!(i.check_client(busy).is_ok());
        assert!(i.check_client(busy).is_err());
        for n in 0..1000u16 {
            let attacker = IpAddr::from([0x2001, 0xdb8, n, 0, 0, 0, 0, 1]);
            let _ = i.check_client(attacker);
            // The busy client keeps sending, so it stays among the recent.
            assert!(i.check_client(busy).is_err(), "reset after {n} new clients");
        }
    }

    #[test]
    fn client_addresses_with_ports_are_read() {
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        for (text, ip) in [
            ("198.51.100.7", v4),
            ("198.51.100.7:5678", v4),
            ("2001:db8::7", v6),
            ("[2001:db8::7]", v6),
            ("[2001:db8::7]:5678", v6),
        ] {
            assert_eq!(parse_client(text), Some(ip), "{text}");
        }
        assert_eq!(parse_client("unknown"), None);
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7:5678".parse().unwrap(),
        );
        let i = ingress("[server]\nclient_ip_header = \"x-forwarded-for\"\n");
        assert_eq!(i.client(peer, &h), v4);
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
    fn one_client_has_at_most_its_share_of_open_requests() {
        let i = ingress("[server]\nmax_requests_per_client = 2\n");
        let a: IpAddr = "203.0.113.5".parse().unwrap();
        let b: IpAddr = "203.0.113.6".parse().unwrap();
        let s1 = i.client_slot(a).unwrap();
        let _s2 = i.client_slot(a).unwrap();
        assert!(i.client_slot(a).is_none());
        assert!(i.client_slot(b).is_some(), "others are not held up");
        drop(s1);
        assert!(i.client_slot(a).is_some());
        // IPv6 clients share their /64.
        let _v1 = i.client_slot("2001:db8::1".parse().unwrap()).unwrap();
        let _v2 = i.client_slot("2001:db8::2".parse().unwrap()).unwrap();
        assert!(i.client_slot("2001:db8::3".parse().unwrap()).is_none());
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
