//! Time: the one [`Clock`] every component reads (the system clock, or a
//! manual one tests move), RFC 3339 formatting, and lenient parsing of the
//! timestamp shapes providers send.
//!
//! Times are unix milliseconds, as the store keeps them. Nothing outside this
//! file reads the wall clock: ingest stamps `received_at`, the store writer
//! stamps its records, the sweeper expires keys and the sinks schedule retries,
//! pauses and rate limits by the `Clock` `app::run` hands them, so a test that
//! moves a manual clock moves all of them together.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// The system clock's reading, in milliseconds since the unix epoch.
fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<Manual>),
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Clock::System => f.write_str("Clock::System"),
            Clock::Manual(m) => write!(f, "Clock::Manual({})", m.now.load(Ordering::SeqCst)),
        }
    }
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
            Clock::System => wall_ms(),
            Clock::Manual(m) => m.now.load(Ordering::SeqCst),
        }
    }

    /// The reading as a `SystemTime` (for APIs that take one).
    pub fn system_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms().max(0) as u64)
    }

    /// Resolves once the clock reads `at_ms` or later.
    pub async fn sleep_until(&self, at_ms: i64) {
        match self {
            Clock::System => {
                let wait = at_ms.saturating_sub(wall_ms()).max(0) as u64;
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

/// The latest time shown or accepted: 9999-12-31T23:59:59.999Z. Times
/// before 1970 or after it (from a provider's payload) are not times
/// countersign can show: they read as unknown.
pub const MAX_MS: i64 = 253_402_300_799_999;

/// `ms` if it is within 1970-01-01 .. [`MAX_MS`].
pub fn in_range(ms: i64) -> Option<i64> {
    (0..=MAX_MS).contains(&ms).then_some(ms)
}

/// `2026-11-23T16:55:49.123Z`. Times outside the range are shown at its
/// nearest end (never a panic: the formatter cannot show year 10000).
pub fn format_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.clamp(0, MAX_MS) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses RFC 3339 with `Z`, a numeric offset, or no zone (read as UTC), with up to
/// nine fractional digits. Returns unix milliseconds, `None` for anything
/// unparsable or outside 1970 .. 9999.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (base, offset_secs) = split_offset(s)?;
    let t = humantime::parse_rfc3339_weak(base).ok()?;
    let ms = i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    in_range(ms.checked_sub(offset_secs.checked_mul(1000)?)?)
}

/// Splits a trailing `+hh:mm` / `-hh:mm` / `Z` off a timestamp.
fn split_offset(s: &str) -> Option<(&str, i64)> {
    if let Some(base) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        return Some((base, 0));
    }
    let tpos = s.find(['T', 't', ' '])?;
    match s[tpos..].rfind(['+', '-']) {
        Some(rel) => {
            let pos = tpos + rel;
            let (h, m) = s[pos + 1..].split_once(':').unwrap_or((&s[pos + 1..], "0"));
            let (h, m) = (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?);
            if !(0..24).contains(&h) || !(0..60).contains(&m) {
                return None;
            }
            let secs = h * 3600 + m * 60;
            let sign = if &s[pos..pos + 1] == "-" { -1 } else { 1 };
            Some((&s[..pos], sign * secs))
        }
        None => Some((s, 0)),
    }
}

/// Unix seconds or milliseconds (values above 10^11 are milliseconds) to ms;
/// `None` outside 1970 .. 9999.
pub fn unix_to_ms(v: i64) -> Option<i64> {
    in_range(if v > 100_000_000_000 {
        v
    } else {
        v.checked_mul(1000)?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_provider_shapes() {
        let z = parse_rfc3339_ms("2019-01-09T12:41:39Z").unwrap();
        assert_eq!(format_ms(z), "2019-01-09T12:41:39.000Z");
        assert_eq!(parse_rfc3339_ms("2019-01-09T14:41:39+02:00"), Some(z));
        assert_eq!(parse_rfc3339_ms("2019-01-09T10:41:39-02:00"), Some(z));
        assert_eq!(parse_rfc3339_ms("2019-01-09T12:41:39"), Some(z));
        assert_eq!(
            parse_rfc3339_ms("2020-01-16T16:13:45.4770000Z").map(format_ms),
            Some("2020-01-16T16:13:45.477Z".into())
        );
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn unix_units() {
        assert_eq!(unix_to_ms(1348177752), Some(1348177752000));
        assert_eq!(unix_to_ms(1555062604837), Some(1555062604837));
    }

    /// Times a provider may send that no formatter can show, or whose
    /// arithmetic overflows: unknown, never a panic.
    #[test]
    fn out_of_range_times_read_as_unknown() {
        assert_eq!(unix_to_ms(253_402_300_800_000), None);
        assert_eq!(unix_to_ms(i64::MAX), None);
        assert_eq!(unix_to_ms(-1), None);
        assert_eq!(unix_to_ms(99_999_999_999), Some(99_999_999_999_000));
        assert_eq!(unix_to_ms(MAX_MS), Some(MAX_MS));
        assert_eq!(parse_rfc3339_ms("9999-12-31T23:59:59-05:00"), None);
        assert_eq!(
            parse_rfc3339_ms("9999-12-31T23:59:59+05:00").map(format_ms),
            Some("9999-12-31T18:59:59.000Z".into())
        );
        assert_eq!(
            parse_rfc3339_ms("2020-01-01T00:00:00+99999999999999:00"),
            None
        );
        assert_eq!(parse_rfc3339_ms("2020-01-01T00:00:00+24:00"), None);
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00+01:00"), None);
        assert_eq!(format_ms(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_ms(-5), "1970-01-01T00:00:00.000Z");
    }

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
