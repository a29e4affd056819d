//! The time the HTTP sink schedules by: the system clock, or a manual clock that
//! tests move forward, so retry spacing, breaker cool-downs and rate limits are
//! checked without sleeping through them.
//!
//! Times are unix milliseconds, as the store keeps them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

#[derive(Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<Manual>),
}

/// A clock that moves only when told. `sleep_until` wakes when `advance` passes
/// the target.
pub struct Manual {
    now: AtomicI64,
    /// Bumped on every `advance`, so sleepers re-check the time.
    moved: watch::Sender<i64>,
}

impl Manual {
    pub fn advance(&self, by: Duration) {
        let now =
            self.now.fetch_add(by.as_millis() as i64, Ordering::SeqCst) + by.as_millis() as i64;
        self.moved.send_replace(now);
    }
}

impl Clock {
    /// A manual clock reading `start_ms`.
    pub fn manual(start_ms: i64) -> (Clock, Arc<Manual>) {
        let m = Arc::new(Manual {
            now: AtomicI64::new(start_ms),
            moved: watch::channel(start_ms).0,
        });
        (Clock::Manual(m.clone()), m)
    }

    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => crate::time::now_ms(),
            Clock::Manual(m) => m.now.load(Ordering::SeqCst),
        }
    }

    /// Resolves once the clock reads `at_ms` or later.
    pub async fn sleep_until(&self, at_ms: i64) {
        match self {
            Clock::System => {
                let wait = at_ms.saturating_sub(crate::time::now_ms()).max(0) as u64;
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            Clock::Manual(m) => {
                let mut rx = m.moved.subscribe();
                while m.now.load(Ordering::SeqCst) < at_ms {
                    if rx.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }
}

/// governor reads time through this: the same clock as everything else here.
impl governor::clock::Clock for Clock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_millis(self.now_ms().max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleep_wakes_only_when_advanced_past_the_target() {
        let (clock, m) = Clock::manual(1_000);
        let c = clock.clone();
        let sleeper = tokio::spawn(async move { c.sleep_until(1_500).await });
        tokio::task::yield_now().await;
        m.advance(Duration::from_millis(499));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        m.advance(Duration::from_millis(1));
        sleeper.await.unwrap();
        assert_eq!(clock.now_ms(), 1_500);
    }
}
