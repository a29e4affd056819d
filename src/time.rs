//! Wall-clock helpers: unix time, RFC 3339 formatting and lenient parsing of the
//! timestamp shapes providers send.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `2026-11-23T16:55:49.123Z`.
pub fn format_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses RFC 3339 with `Z`, a numeric offset, or no zone (read as UTC), with up to
/// nine fractional digits. Returns unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (base, offset_secs) = split_offset(s)?;
    let t = humantime::parse_rfc3339_weak(base).ok()?;
    let ms = t.duration_since(UNIX_EPOCH).ok()?.as_millis() as i64;
    Some(ms - offset_secs * 1000)
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
            let secs = h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60;
            let sign = if &s[pos..pos + 1] == "-" { -1 } else { 1 };
            Some((&s[..pos], sign * secs))
        }
        None => Some((s, 0)),
    }
}

/// Unix seconds or milliseconds (values above 10^11 are milliseconds) to ms.
pub fn unix_to_ms(v: i64) -> i64 {
    if v > 100_000_000_000 { v } else { v * 1000 }
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
        assert_eq!(unix_to_ms(1348177752), 1348177752000);
        assert_eq!(unix_to_ms(1555062604837), 1555062604837);
    }
}
