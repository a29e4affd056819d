//! What the webhook sink does after an attempt: the one place that decides
//! what is retried, and when ([`verdict`] reads the answer, [`next`] decides
//! what follows; both pure).
//!
//! - 2xx: delivered.
//! - 410 Gone: the endpoint is disabled (its deliveries wait; nothing is lost).
//! - 408, 425, 429, 5xx, timeouts, connection and TLS errors: retried after the
//!   endpoint's `retry_schedule` (full jitter), or after `Retry-After` on 429/503
//!   (clamped to `[1s, retry_after_max]`).
//! - Any other status (other 4xx, 1xx, 3xx: redirects are not followed):
//!   permanent, dead-lettered at once.
//! - A retry past the endpoint's `max_attempts` dead-letters instead.

use std::time::{Duration, SystemTime};

use crate::store::Next;

/// How an attempt ended: the receiver's answer, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The receiver answered with this status.
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// No answer: connect error, timeout, reset, refused address.
    Failed(String),
}

/// What to do with the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again; `after` overrides the schedule (a clamped `Retry-After`).
    Retry {
        after: Option<Duration>,
    },
    /// The endpoint said it is gone: disable it, keep the delivery waiting.
    Gone,
    /// No retry can succeed.
    Permanent,
}

/// The shortest `Retry-After` honoured (a shorter one, or 0, waits this long).
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What an answer means for the delivery. A `Retry-After` is kept within
/// `[1s, retry_after_max]` (config keeps the maximum at 1s or more; a smaller
/// one here still cannot panic: the maximum wins).
pub fn verdict(o: &Answer, retry_after_max: Duration) -> Verdict {
    let (code, retry_after) = match o {
        Answer::Failed(_) => return Verdict::Retry { after: None },
        Answer::Status { code, retry_after } => (*code, *retry_after),
    };
    match code {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        429 | 503 => Verdict::Retry {
            after: retry_after.map(|d| d.max(MIN_RETRY_AFTER).min(retry_after_max)),
        },
        408 | 425 | 500..=599 => Verdict::Retry { after: None },
        _ => Verdict::Permanent,
    }
}

/// How an endpoint retries: its attempt limit and delay schedule.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub max_attempts: u32,
    pub schedule: &'a [Duration],
}

/// What follows an attempt that got `verdict`, after `tries` earlier attempts,
/// at `now_ms`: delivered; retried (at a clamped `Retry-After`, or after the
/// schedule's delay jittered by `unit` in `[0, 1)`); retried at once without
/// counting the attempt (410 Gone: the endpoint is disabled, the delivery
/// waits for it); or dead-lettered with the reason (`error` describes the
/// last attempt).
pub fn next(
    verdict: &Verdict,
    tries: u32,
    policy: Policy<'_>,
    now_ms: i64,
    error: &str,
    unit: f64,
) -> Next {
    let after = match verdict {
        Verdict::Delivered => return Next::Delivered,
        Verdict::Gone => {
            return Next::Retry {
                due_ms: now_ms,
                counts: false,
            };
        }
        Verdict::Permanent => {
            return Next::DeadLetter {
                reason: format!("permanent failure: {error}"),
            };
        }
        Verdict::Retry { after } => after,
    };
    let attempts = tries + 1;
    if attempts >= policy.max_attempts {
        return Next::DeadLetter {
            reason: format!("gave up after {attempts} attempts; last: {error}"),
        };
    }
    let delay = after.unwrap_or_else(|| delay_with(policy.schedule, tries, unit));
    Next::Retry {
        due_ms: now_ms + delay.as_millis() as i64,
        counts: true,
    }
}

/// The ceiling of the delay before retry number `retry` (0 = the first retry).
pub fn ceiling(schedule: &[Duration], retry: u32) -> Duration {
    let last = schedule.len().saturating_sub(1);
    schedule
        .get((retry as usize).min(last))
        .copied()
        .unwrap_or_default()
}

/// The jittered delay before retry number `retry`, drawn with `unit` in `[0, 1)`.
pub fn delay_with(schedule: &[Duration], retry: u32, unit: f64) -> Duration {
    ceiling(schedule, retry).mul_f64(unit.clamp(0.0, 1.0))
}

/// `Retry-After` as delta-seconds or an HTTP date, relative to `now`.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(3600);

    fn status(code: u16) -> Verdict {
        verdict(
            &Answer::Status {
                code,
                retry_after: None,
            },
            MAX,
        )
    }

    #[test]
    fn statuses_are_classified() {
        for c in [200, 201, 204, 299] {
            assert_eq!(status(c), Verdict::Delivered, "{c}");
        }
        for c in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert_eq!(status(c), Verdict::Retry { after: None }, "{c}");
        }
        for c in [100, 301, 302, 400, 401, 403, 404, 405, 409, 413, 422] {
            assert_eq!(status(c), Verdict::Permanent, "{c}");
        }
        assert_eq!(status(410), Verdict::Gone);
        assert_eq!(
            verdict(&Answer::Failed("timeout".into()), MAX),
            Verdict::Retry { after: None }
        );
    }

    #[test]
    fn retry_after_is_honoured_within_bounds_on_429_and_503_only() {
        let with = |code, secs| {
            verdict(
                &Answer::Status {
                    code,
                    retry_after: Some(Duration::from_secs(secs)),
                },
                MAX,
            )
        };
        let after = |s| Verdict::Retry {
            after: Some(Duration::from_secs(s)),
        };
        assert_eq!(with(429, 30), after(30));
        assert_eq!(with(503, 0), after(1));
        assert_eq!(with(429, 86_400 * 365), after(3600));
        assert_eq!(with(500, 30), Verdict::Retry { after: None });
        // A maximum below the minimum (config refuses it) wins instead of
        // panicking in `clamp`.
        let half = Duration::from_millis(500);
        assert_eq!(
            verdict(
                &Answer::Status {
                    code: 429,
                    retry_after: Some(Duration::from_secs(5))
                },
                half
            ),
            Verdict::Retry { after: Some(half) }
        );
    }

    #[test]
    fn next_delivers_retries_gives_up_and_waits_out_gone() {
        let schedule = [Duration::from_secs(10), Duration::from_secs(60)];
        let policy = Policy {
            max_attempts: 3,
            schedule: &schedule,
        };
        let retry = |after| Verdict::Retry { after };
        let at = |due_ms| Next::Retry {
            due_ms,
            counts: true,
        };
        let n = |v: &Verdict, tries| next(v, tries, policy, 1_000, "503", 0.5);
        assert_eq!(n(&Verdict::Delivered, 0), Next::Delivered);
        // Full jitter: half the schedule's ceiling at unit 0.5.
        assert_eq!(n(&retry(None), 0), at(6_000));
        assert_eq!(n(&retry(None), 1), at(31_000));
        // Retry-After replaces the schedule.
        assert_eq!(n(&retry(Some(Duration::from_secs(7))), 1), at(8_000));
        // The third attempt was the last.
        assert_eq!(
            n(&retry(Some(Duration::from_secs(7))), 2),
            Next::DeadLetter {
                reason: "gave up after 3 attempts; last: 503".into()
            }
        );
        assert_eq!(
            n(&Verdict::Permanent, 0),
            Next::DeadLetter {
                reason: "permanent failure: 503".into()
            }
        );
        // Gone: due again at once, the attempt not counted, even past the limit.
        for tries in [0, 2, 9] {
            assert_eq!(
                n(&Verdict::Gone, tries),
                Next::Retry {
                    due_ms: 1_000,
                    counts: false
                }
            );
        }
    }

    #[test]
    fn schedule_repeats_its_last_delay_and_jitter_stays_below_the_ceiling() {
        let s = [Duration::from_secs(5), Duration::from_secs(60)];
        assert_eq!(ceiling(&s, 0), Duration::from_secs(5));
        assert_eq!(ceiling(&s, 1), Duration::from_secs(60));
        assert_eq!(ceiling(&s, 9), Duration::from_secs(60));
        assert_eq!(ceiling(&[], 3), Duration::ZERO);
        for retry in 0..20 {
            for i in 0..=100 {
                let d = delay_with(&s, retry, i as f64 / 100.0);
                assert!(d <= ceiling(&s, retry));
            }
        }
        assert_eq!(delay_with(&s, 0, 2.0), Duration::from_secs(5));
    }

    #[test]
    fn default_schedule_spans_about_a_day_on_average() {
        // 10 retries (max_attempts 11): mean of full jitter is half the ceiling.
        let total: Duration = (0..10)
            .map(|r| ceiling(crate::config::DEFAULT_SCHEDULE, r))
            .sum();
        let mean_hours = total.as_secs_f64() / 2.0 / 3600.0;
        assert!((20.0..30.0).contains(&mean_hours), "{mean_hours}");
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        // Wed, 21 Oct 2015 07:28:00 GMT is 1_445_412_480.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
