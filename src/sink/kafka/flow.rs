//! The Kafka sink's flow control, as a state machine without I/O: how many
//! outbox entries may be read now, where reading resumes, when a failure
//! rewinds to the start of the outbox, and how long the sink pauses first.
//!
//! The run loop (`mod.rs`) reads the outbox, hands messages to librdkafka and
//! reports back here; every decision is a method on [`Flow`], unit-tested
//! below without a broker (like [`breaker`](crate::sink::breaker)).
//!
//! - Up to `max_in_flight` messages are with the producer at a time; reading
//!   resumes after the last one handed over (the cursor).
//! - A retryable failure stops reading; once nothing is in flight the cursor
//!   goes back to the start of the outbox (everything not yet acknowledged is
//!   sent again, in order) after a jittered backoff that grows with each
//!   rewind in a row and resets on the next acknowledgement.
//! - A producer-fatal failure does the same and asks for a new producer.
//! - The brokers coming back ends a pause at once.
//! - Once stopping, nothing new is read; the sink is finished when nothing is
//!   in flight.

use std::time::Duration;

use crate::sink::backoff::Backoff;

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Acknowledged by the broker.
    Published,
    /// Refused for good; recorded as a dead letter.
    DeadLettered,
    /// Failed in a way a later attempt may not.
    Retryable,
    /// The producer itself is broken: replace it, then retry.
    ProducerFatal,
}

/// A rewind that is due now: go back to the start of the outbox after `pause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewind {
    pub pause: Duration,
    /// Rewinds in a row, this one included.
    pub failures: u32,
    pub replace_producer: bool,
}

/// A pending rewind, waiting for the messages in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rewinding {
    replace_producer: bool,
}

#[derive(Debug)]
pub struct Flow {
    max_in_flight: usize,
    backoff: Backoff,
    in_flight: usize,
    /// (seq, topic) of the last entry handed over: reading resumes after it.
    cursor: Option<(u64, String)>,
    /// Rewinds since the last acknowledgement.
    failures: u32,
    rewinding: Option<Rewinding>,
    /// Unix ms until which nothing is read.
    paused_until: Option<i64>,
    stopping: bool,
}

/// Pause after the outbox could not be read.
pub const READ_RETRY: Duration = Duration::from_secs(1);

impl Flow {
    pub fn new(max_in_flight: usize, backoff: Backoff) -> Flow {
        Flow {
            max_in_flight,
            backoff,
            in_flight: 0,
            cursor: None,
            failures: 0,
            rewinding: None,
            paused_until: None,
            stopping: false,
        }
    }

    /// How many entries to read from the outbox at `now` (0: none).
    pub fn room(&mut self, now_ms: i64) -> usize {
        if self.rewinding.is_some() || self.stopping {
            return 0;
        }
        if self.paused_until.is_some_and(|t| now_ms < t) {
            return 0;
        }
        self.paused_until = None;
        self.max_in_flight.saturating_sub(self.in_flight)
    }

    /// Where reading resumes: after this (seq, topic).
    pub fn cursor(&self) -> Option<(u64, &str)> {
        self.cursor.as_ref().map(|(s, t)| (*s, t.as_str()))
    }

    /// The entry was read: reading resumes after it, whether or not the
    /// producer took it.
    pub fn read(&mut self, seq: u64, topic: &str) {
        self.cursor = Some((seq, topic.to_owned()));
    }

    /// The producer took a message.
    pub fn handed(&mut self) {
        self.in_flight += 1;
    }

    /// A message handed to the producer came back.
    pub fn returned(&mut self, s: Settled) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.settled(s);
    }

    /// What became of a message, whether or not it was in flight (one the
    /// producer refused at hand-off never was).
    pub fn settled(&mut self, s: Settled) {
        match s {
            Settled::Published => self.failures = 0,
            Settled::DeadLettered => {}
            Settled::Retryable | Settled::ProducerFatal => {
                let replace = s == Settled::ProducerFatal
                    || self.rewinding.is_some_and(|r| r.replace_producer);
                self.rewinding = Some(Rewinding {
                    replace_producer: replace,
                });
            }
        }
    }

    /// Whether reading must stop (a rewind is pending).
    pub fn rewinding(&self) -> bool {
        self.rewinding.is_some()
    }

    /// The outbox could not be read: try again after [`READ_RETRY`].
    pub fn read_failed(&mut self, now_ms: i64) {
        self.paused_until = Some(now_ms + READ_RETRY.as_millis() as i64);
    }

    /// A pending rewind whose messages are all back: the cursor goes to the
    /// start and reading pauses for a backoff drawn with `unit` in `[0, 1)`.
    pub fn rewind(&mut self, now_ms: i64, unit: f64) -> Option<Rewind> {
        if self.in_flight > 0 {
            return None;
        }
        let r = self.rewinding.take()?;
        self.failures = self.failures.saturating_add(1);
        let pause = self.backoff.delay_with(self.failures - 1, unit);
        self.cursor = None;
        self.paused_until = Some(now_ms + pause.as_millis() as i64);
        Some(Rewind {
            pause,
            failures: self.failures,
            replace_producer: r.replace_producer,
        })
    }

    /// The brokers are reachable again: end a pause now.
    pub fn reconnected(&mut self) {
        self.paused_until = None;
    }

    /// Until when the sink waits before reading again (while not rewinding).
    pub fn paused_until(&self) -> Option<i64> {
        self.paused_until.filter(|_| self.rewinding.is_none())
    }

    /// Whether news in the outbox should wake the sink.
    pub fn wants_news(&self) -> bool {
        self.rewinding.is_none()
            && !self.stopping
            && self.in_flight < self.max_in_flight
            && self.paused_until().is_none()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Stop reading; finish what is in flight.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    pub fn stopping(&self) -> bool {
        self.stopping
    }

    /// Stopping, and nothing left in flight.
    pub fn finished(&self) -> bool {
        self.stopping && self.in_flight == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_millis(500),
        max: Duration::from_secs(30),
    };

    fn hand(f: &mut Flow, seq: u64) {
        f.read(seq, "t");
        f.handed();
    }

    #[test]
    fn fills_up_to_max_in_flight_and_resumes_after_the_cursor() {
        let mut f = Flow::new(3, B);
        assert_eq!(f.room(0), 3);
        for seq in 1..=3 {
            hand(&mut f, seq);
        }
        assert_eq!(f.room(0), 0);
        assert!(!f.wants_news());
        f.returned(Settled::Published);
        assert_eq!(f.room(0), 1);
        assert!(f.wants_news());
        assert_eq!(f.cursor(), Some((3, "t")));
    }

    #[test]
    fn a_retryable_failure_rewinds_once_the_rest_is_back_with_growing_pauses() {
        let mut f = Flow::new(4, B);
        hand(&mut f, 1);
        hand(&mut f, 2);
        f.returned(Settled::Retryable);
        // No more reading, no rewind while one is still in flight.
        assert_eq!(f.room(0), 0);
        assert!(f.rewinding());
        assert_eq!(f.rewind(0, 1.0), None);
        f.returned(Settled::Published);
        // An acknowledgement during the rewind resets the count, not the rewind.
        let r = f.rewind(1_000, 1.0).unwrap();
        assert_eq!(
            r,
            Rewind {
                pause: Duration::from_millis(500),
                failures: 1,
                replace_producer: false
            }
        );
        assert_eq!(f.cursor(), None);
        assert_eq!(f.paused_until(), Some(1_500));
        assert_eq!(f.room(1_499), 0);
        assert_eq!(f.room(1_500), 4);
        // A second failure in a row pauses twice as long (ceiling), a third four times.
        hand(&mut f, 1);
        f.returned(Settled::Retryable);
        assert_eq!(f.rewind(2_000, 1.0).unwrap().pause, Duration::from_secs(1));
        f.read(1, "t");
        f.settled(Settled::Retryable);
        let r = f.rewind(4_000, 1.0).unwrap();
        assert_eq!((r.pause, r.failures), (Duration::from_secs(2), 3));
        // An acknowledgement resets the growth.
        assert_eq!(f.room(6_000), 4);
        hand(&mut f, 1);
        f.returned(Settled::Published);
        hand(&mut f, 2);
        f.returned(Settled::Retryable);
        assert_eq!(f.rewind(7_000, 1.0).unwrap().failures, 1);
    }

    #[test]
    fn a_producer_fatal_failure_asks_for_a_new_producer() {
        let mut f = Flow::new(4, B);
        hand(&mut f, 1);
        hand(&mut f, 2);
        f.returned(Settled::ProducerFatal);
        f.returned(Settled::Retryable);
        assert!(f.rewind(0, 0.5).unwrap().replace_producer);
        hand(&mut f, 1);
        f.returned(Settled::Retryable);
        assert!(!f.rewind(0, 0.5).unwrap().replace_producer);
    }

    #[test]
    fn dead_letters_neither_rewind_nor_reset_the_failures() {
        let mut f = Flow::new(2, B);
        hand(&mut f, 1);
        f.returned(Settled::DeadLettered);
        assert!(!f.rewinding());
        assert_eq!(f.room(0), 2);
        // A refusal at hand-off was never in flight.
        f.read(2, "t");
        f.settled(Settled::DeadLettered);
        assert_eq!(f.in_flight(), 0);
        assert_eq!(f.cursor(), Some((2, "t")));
    }

    #[test]
    fn reconnecting_ends_a_pause_and_a_read_failure_starts_one() {
        let mut f = Flow::new(2, B);
        f.read_failed(10_000);
        assert_eq!(f.room(10_500), 0);
        assert!(!f.wants_news());
        assert_eq!(f.paused_until(), Some(11_000));
        f.reconnected();
        assert_eq!(f.room(10_500), 2);
        hand(&mut f, 1);
        f.returned(Settled::Retryable);
        f.rewind(0, 1.0).unwrap();
        f.reconnected();
        assert_eq!(f.room(1), 2);
    }

    #[test]
    fn stopping_reads_nothing_and_finishes_when_nothing_is_in_flight() {
        let mut f = Flow::new(2, B);
        hand(&mut f, 1);
        f.stop();
        assert_eq!(f.room(0), 0);
        assert!(!f.wants_news());
        assert!(!f.finished());
        f.returned(Settled::Published);
        assert!(f.finished());
    }
}
