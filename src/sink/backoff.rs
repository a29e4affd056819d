//! Exponential backoff with full jitter: the n-th retry waits a uniformly random
//! time in `[0, min(max, base * 2^n)]` (AWS's "full jitter"), so retries of many
//! messages spread out instead of arriving together.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The ceiling of the delay before retry number `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A delay for retry number `attempt`, drawn with `unit` in `[0, 1)`.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        self.ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_millis(500),
        max: Duration::from_secs(30),
    };

    #[test]
    fn ceiling_doubles_then_caps() {
        assert_eq!(B.ceiling(0), Duration::from_millis(500));
        assert_eq!(B.ceiling(1), Duration::from_secs(1));
        assert_eq!(B.ceiling(5), Duration::from_secs(16));
        assert_eq!(B.ceiling(6), Duration::from_secs(30));
        assert_eq!(B.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn delays_stay_within_the_ceiling_for_any_draw() {
        for attempt in 0..64 {
            for i in 0..=100 {
                let unit = i as f64 / 100.0;
                let d = B.delay_with(attempt, unit);
                assert!(
                    d <= B.ceiling(attempt),
                    "attempt {attempt} unit {unit}: {d:?}"
                );
            }
        }
        assert_eq!(B.delay_with(3, 0.0), Duration::ZERO);
        assert_eq!(B.delay_with(3, 2.0), B.ceiling(3));
    }
}
