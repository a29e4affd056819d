//! The webhook worker's hold-back when the store cannot record attempts.

use std::collections::HashMap;

/// What a worker does when the store cannot record attempts: the deliveries
/// whose answers went unrecorded are not sent again before a pause, and the
/// worker sends nothing during it (the pause doubles with each failure in a
/// row, from 1 s to 1 min). Otherwise a broken store would make the worker
/// re-send the same delivery in a tight loop.
#[derive(Debug, Default)]
pub(super) struct Holdback {
    /// seq → held until (unix ms).
    pub(super) held: HashMap<u64, i64>,
    failures: u32,
    until: Option<i64>,
}

impl Holdback {
    const FIRST: i64 = 1_000;
    const MAX: i64 = 60_000;

    /// Recording `seqs` failed at `now`.
    pub(super) fn failed(&mut self, seqs: impl IntoIterator<Item = u64>, now: i64) -> i64 {
        self.failures = self.failures.saturating_add(1);
        let pause = (Self::FIRST << (self.failures - 1).min(16)).min(Self::MAX);
        let until = now + pause;
        self.held.extend(seqs.into_iter().map(|s| (s, until)));
        self.until = Some(until);
        until
    }

    /// Recording succeeded: the store works again.
    pub(super) fn recorded(&mut self, seqs: impl IntoIterator<Item = u64>) {
        self.failures = 0;
        self.until = None;
        for s in seqs {
            self.held.remove(&s);
        }
    }

    /// `Some(until)` while paused at `now`; forgets holds that ran out.
    pub(super) fn paused(&mut self, now: i64) -> Option<i64> {
        self.held.retain(|_, until| *until > now);
        self.until.filter(|u| *u > now)
    }

    #[cfg(test)]
    fn holds(&self, seq: u64) -> bool {
        self.held.contains_key(&seq)
    }
}

#[cfg(test)]
mod tests {
    use super::Holdback;

    #[test]
    fn unrecorded_deliveries_wait_out_a_growing_pause() {
        let mut h = Holdback::default();
        assert_eq!(h.paused(0), None);
        assert_eq!(h.failed([7], 0), 1_000);
        assert!(h.holds(7));
        assert_eq!(h.paused(999), Some(1_000));
        assert_eq!(h.paused(1_000), None);
        assert!(!h.holds(7), "the hold ran out with the pause");
        assert_eq!(h.failed([7], 1_000), 3_000);
        assert_eq!(h.failed([7], 3_000), 7_000);
        for _ in 0..20 {
            h.failed([7], 0);
        }
        assert_eq!(h.paused(0), Some(60_000), "at most a minute");
        h.recorded([7]);
        assert_eq!(h.paused(0), None);
        assert!(!h.holds(7));
        assert_eq!(h.failed([8], 0), 1_000, "a success resets the growth");
    }
}
