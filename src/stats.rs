//! Counters of what happened to webhooks, by outcome, for the admin API's
//! `/v1/stats` (and the Prometheus metrics built on them later).

use std::sync::atomic::{AtomicU64, Ordering};

/// Every outcome a webhook can have, as counted.
pub const OUTCOMES: [&str; 12] = [
    "accepted",
    "duplicate",
    "handshake",
    "unauthorized",
    "invalid",
    "too_large",
    "unknown_source",
    "method_not_allowed",
    "timeout",
    "overloaded",
    "rate_limited",
    "error",
];

#[derive(Debug, Default)]
pub struct IngestStats {
    counts: [AtomicU64; OUTCOMES.len()],
}

impl IngestStats {
    /// Counts one webhook with this outcome (one of [`OUTCOMES`]).
    pub fn record(&self, outcome: &str) {
        let i = OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(OUTCOMES.len() - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, outcome: &str) -> u64 {
        OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .map_or(0, |i| self.counts[i].load(Ordering::Relaxed))
    }

    /// (outcome, count) for every outcome.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        OUTCOMES
            .iter()
            .zip(&self.counts)
            .map(|(o, c)| (*o, c.load(Ordering::Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_outcome_and_files_unknown_labels_under_error() {
        let s = IngestStats::default();
        s.record("accepted");
        s.record("accepted");
        s.record("no-such-outcome");
        assert_eq!(s.get("accepted"), 2);
        assert_eq!(s.get("error"), 1);
        assert_eq!(s.snapshot().len(), OUTCOMES.len());
    }
}
