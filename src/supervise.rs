//! Supervision of the long-running tasks (the sinks' workers, the Kafka
//! health check, the sweeper, housekeeping): a task that panics is started
//! again after a growing pause and counted in
//! `countersign_task_restarts_total{task}`, so one bad input cannot stop an
//! endpoint's deliveries for good without anyone seeing it. A task that
//! returns (at shutdown) is not restarted.

use std::future::Future;
use std::time::Duration;

use prometheus::IntCounter;

use crate::shutdown::Shutdown;
use crate::sink::backoff::Backoff;

/// Pauses before restarts: 100 ms doubling up to 30 s (no jitter needed: one
/// task restarts alone).
const PAUSES: Backoff = Backoff {
    base: Duration::from_millis(100),
    max: Duration::from_secs(30),
};

/// Runs `make()` until it returns, starting it again each time it panics.
/// `task` names it in logs; `restarts` counts the restarts.
pub async fn supervise<F, Fut>(
    task: String,
    restarts: IntCounter,
    mut shutdown: Shutdown,
    mut make: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut panics = 0u32;
    loop {
        match tokio::spawn(make()).await {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                panics = panics.saturating_add(1);
                restarts.inc();
                let pause = PAUSES.ceiling(panics - 1);
                tracing::error!(task, panics, ?pause, "task panicked; starting it again");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.begun() => return,
                }
            }
            // Cancelled: the runtime is shutting down.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::shutdown::Trigger;

    #[tokio::test]
    async fn a_panicking_task_is_restarted_and_counted_until_it_returns() {
        let (_trigger, shutdown) = Trigger::new(Duration::from_secs(1));
        let restarts = IntCounter::new("r", "r").unwrap();
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        supervise("t".into(), restarts.clone(), shutdown, move || {
            let r = r.clone();
            async move {
                if r.fetch_add(1, Ordering::SeqCst) < 3 {
                    panic!("bad input");
                }
            }
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        assert_eq!(restarts.get(), 3);
    }

    #[tokio::test]
    async fn a_shutdown_ends_the_pause_before_a_restart() {
        let (trigger, shutdown) = Trigger::new(Duration::from_secs(1));
        let restarts = IntCounter::new("r", "r").unwrap();
        trigger.begin();
        supervise("t".into(), restarts.clone(), shutdown, || async {
            panic!("always")
        })
        .await;
        assert_eq!(restarts.get(), 1);
    }
}
