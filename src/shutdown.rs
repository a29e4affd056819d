//! Shutdown: one stop signal with one drain deadline, shared by every
//! long-running task (cf. mini-redis `shutdown.rs`, linkerd's drain).
//!
//! `app::run` holds the [`Trigger`]; each task holds a [`Shutdown`]. When the
//! trigger fires, every task sees it at once with the same deadline: the
//! listeners stop accepting and let requests in flight finish, the sinks stop
//! taking new work and settle what is in flight, and whatever is unfinished at
//! the deadline is left (queued work stays on disk for the next start).

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Starts the shutdown of every [`Shutdown`] made from it.
pub struct Trigger {
    tx: watch::Sender<Option<Instant>>,
    drain: Duration,
}

/// A task's view of the shutdown: whether it has begun, and by when work in
/// flight must be done. Cheap to clone.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<Option<Instant>>,
}

impl Trigger {
    /// A trigger whose shutdown allows `drain` for work in flight.
    pub fn new(drain: Duration) -> (Trigger, Shutdown) {
        let (tx, rx) = watch::channel(None);
        (Trigger { tx, drain }, Shutdown { rx })
    }

    /// Begins the shutdown (once; later calls keep the first deadline) and
    /// returns its deadline.
    pub fn begin(&self) -> Instant {
        let mut deadline = Instant::now() + self.drain;
        self.tx.send_if_modified(|d| match d {
            Some(first) => {
                deadline = *first;
                false
            }
            None => {
                *d = Some(deadline);
                true
            }
        });
        deadline
    }
}

impl Shutdown {
    /// Resolves once the shutdown has begun (at once if it has), with its
    /// deadline. Never resolves if the trigger is gone without firing.
    pub async fn begun(&mut self) -> Instant {
        let begun = self
            .rx
            .wait_for(Option::is_some)
            .await
            .map(|d| d.expect("waited for Some"));
        match begun {
            Ok(deadline) => deadline,
            Err(_) => std::future::pending().await,
        }
    }

    /// The deadline, if the shutdown has begun.
    pub fn deadline(&self) -> Option<Instant> {
        *self.rx.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_task_sees_one_deadline() {
        let (trigger, mut a) = Trigger::new(Duration::from_secs(5));
        let mut b = a.clone();
        assert_eq!(a.deadline(), None);
        let waiting = tokio::spawn(async move { b.begun().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let first = trigger.begin();
        assert_eq!(waiting.await.unwrap(), first);
        assert_eq!(a.begun().await, first);
        // A second begin keeps the first deadline.
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(trigger.begin(), first);
        assert_eq!(a.deadline(), Some(first));
    }

    #[tokio::test]
    async fn a_trigger_dropped_unfired_never_begins() {
        let (trigger, mut s) = Trigger::new(Duration::from_secs(5));
        drop(trigger);
        let r = tokio::time::timeout(Duration::from_millis(20), s.begun()).await;
        assert!(r.is_err());
    }
}
