//! The circuit breaker of one endpoint, as a pure state machine over clock
//! milliseconds.
//!
//! Closed: deliveries flow. After `failures` consecutive retryable failures it
//! opens: nothing is sent (deliveries wait in the store) until the cool-down has
//! passed. Then it is half-open: one delivery goes as a probe. Success closes it;
//! failure opens it again with twice the cool-down, up to 32 times the configured
//! one. A `Retry-After` from the receiver pauses the endpoint the same way,
//! without counting as a breaker failure.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    Closed,
    Open { until_ms: i64 },
    HalfOpen { probing: bool },
}

/// How much may be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Any,
    /// One probe (half-open).
    One,
    /// Nothing; ask again at `until_ms`, or when a delivery finishes if `None`.
    Wait {
        until_ms: Option<i64>,
    },
}

#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cooldown_ms: i64,
    state: Circuit,
    consecutive: u32,
    /// Openings in a row without a success in between (doubles the cool-down).
    openings: u32,
    paused_until_ms: i64,
}

/// Longest cool-down, as a multiple of the configured one.
const MAX_COOLDOWN_FACTOR: i64 = 32;

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown_ms: cooldown.as_millis() as i64,
            state: Circuit::Closed,
            consecutive: 0,
            openings: 0,
            paused_until_ms: 0,
        }
    }

    #[cfg(test)]
    pub fn state(&self) -> Circuit {
        self.state
    }

    pub fn paused_until_ms(&self) -> i64 {
        self.paused_until_ms
    }

    pub fn permit(&mut self, now_ms: i64, in_flight: usize) -> Permit {
        if now_ms < self.paused_until_ms {
            return Permit::Wait {
                until_ms: Some(self.paused_until_ms),
            };
        }
        if let Circuit::Open { until_ms } = self.state {
            if now_ms < until_ms {
                return Permit::Wait {
                    until_ms: Some(until_ms),
                };
            }
            self.state = Circuit::HalfOpen { probing: false };
        }
        match self.state {
            Circuit::HalfOpen { probing } if probing || in_flight > 0 => {
                Permit::Wait { until_ms: None }
            }
            Circuit::HalfOpen { .. } => Permit::One,
            _ => Permit::Any,
        }
    }

    /// A delivery was sent under `Permit::One`.
    pub fn probe_sent(&mut self) {
        if let Circuit::HalfOpen { .. } = self.state {
            self.state = Circuit::HalfOpen { probing: true };
        }
    }

    /// The receiver answered (2xx, or a permanent 4xx: it is up).
    pub fn on_success(&mut self) {
        self.state = Circuit::Closed;
        self.consecutive = 0;
        self.openings = 0;
    }

    /// A retryable failure (no answer, 5xx, 408, 425, 429).
    pub fn on_failure(&mut self, now_ms: i64) {
        self.consecutive = self.consecutive.saturating_add(1);
        let open = match self.state {
            Circuit::HalfOpen { .. } => true,
            Circuit::Closed => self.consecutive >= self.threshold,
            Circuit::Open { .. } => false,
        };
        if open {
            let factor = 1i64 << self.openings.min(5);
            let cooldown = self.cooldown_ms * factor.min(MAX_COOLDOWN_FACTOR);
            self.openings = self.openings.saturating_add(1);
            self.state = Circuit::Open {
                until_ms: now_ms + cooldown,
            };
        }
    }

    /// The receiver asked for a pause (`Retry-After`).
    pub fn pause_until(&mut self, until_ms: i64) {
        self.paused_until_ms = self.paused_until_ms.max(until_ms);
    }

    pub fn name(&self) -> &'static str {
        match self.state {
            Circuit::Closed => "closed",
            Circuit::Open { .. } => "open",
            Circuit::HalfOpen { .. } => "half_open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(3, Duration::from_secs(10))
    }

    #[test]
    fn opens_after_consecutive_failures_and_a_success_resets_the_count() {
        let mut b = breaker();
        b.on_failure(0);
        b.on_failure(0);
        b.on_success();
        b.on_failure(0);
        b.on_failure(0);
        assert_eq!(b.permit(0, 0), Permit::Any);
        b.on_failure(1_000);
        assert_eq!(
            b.permit(1_000, 0),
            Permit::Wait {
                until_ms: Some(11_000)
            }
        );
    }

    #[test]
    fn half_open_sends_one_probe_then_closes_or_reopens_longer() {
        let mut b = breaker();
        (0..3).for_each(|_| b.on_failure(0));
        assert_eq!(b.permit(10_000, 0), Permit::One);
        b.probe_sent();
        assert_eq!(b.permit(10_000, 1), Permit::Wait { until_ms: None });
        b.on_failure(12_000);
        // Second opening in a row: twice the cool-down.
        assert_eq!(
            b.permit(12_000, 0),
            Permit::Wait {
                until_ms: Some(32_000)
            }
        );
        assert_eq!(b.permit(32_000, 0), Permit::One);
        b.probe_sent();
        b.on_success();
        assert_eq!(b.state(), Circuit::Closed);
        assert_eq!(b.permit(32_000, 0), Permit::Any);
    }

    #[test]
    fn cooldown_growth_is_capped() {
        let mut b = breaker();
        let mut now = 0;
        (0..3).for_each(|_| b.on_failure(now));
        for _ in 0..20 {
            let Permit::Wait {
                until_ms: Some(until),
            } = b.permit(now, 0)
            else {
                panic!("expected open");
            };
            assert!(until - now <= 320_000);
            now = until;
            assert_eq!(b.permit(now, 0), Permit::One);
            b.probe_sent();
            b.on_failure(now);
        }
    }

    #[test]
    fn retry_after_pauses_without_opening() {
        let mut b = breaker();
        b.pause_until(5_000);
        b.pause_until(2_000);
        assert_eq!(
            b.permit(1_000, 0),
            Permit::Wait {
                until_ms: Some(5_000)
            }
        );
        assert_eq!(b.permit(5_000, 0), Permit::Any);
        assert_eq!(b.state(), Circuit::Closed);
    }

    #[test]
    fn failures_arriving_while_open_do_not_extend_it() {
        let mut b = breaker();
        (0..3).for_each(|_| b.on_failure(0));
        b.on_failure(5_000);
        assert_eq!(b.permit(10_000, 0), Permit::One);
    }
}
