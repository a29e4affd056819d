//! Rate limits (governor's GCRA) from their config shape, and the
//! `Retry-After` a refused request is told. One module for the ingress limits
//! (per client, per source) and the HTTP sink's per-endpoint limit, all on
//! the gateway's [`Clock`].

use std::num::NonZeroU32;
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};

use crate::config::RateLimit;
use crate::time::Clock;

/// One limit (a source's, an endpoint's) on the gateway's clock.
pub type Direct = RateLimiter<NotKeyed, InMemoryState, Clock, NoOpMiddleware<Duration>>;

/// A limit of `rl` on `clock`.
pub fn direct(rl: &RateLimit, clock: Clock) -> Direct {
    RateLimiter::direct_with_clock(quota(rl), clock)
}

/// The governor quota: one cell every `1 / per_second`, `burst` at once.
pub fn quota(rl: &RateLimit) -> Quota {
    let burst = NonZeroU32::new(rl.burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(Duration::from_secs_f64(1.0 / rl.per_second))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(burst)
}

/// Whole seconds until `n` allows a request at `clock`'s reading, at least 1
/// (for `Retry-After`).
pub fn retry_after(n: &NotUntil<Duration>, clock: &Clock) -> u64 {
    let wait = n.wait_time_from(governor::clock::Clock::now(clock));
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0 || wait.is_zero())
}
