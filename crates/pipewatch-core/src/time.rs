//! Time as pipewatch counts it: milliseconds since the Unix epoch (`i64`), passed in by
//! the caller (nothing here reads a clock); RFC 3339 parsing and formatting, and the
//! config's durations (`"90s"`, `"15m"`, `"8h"`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// A point in time as milliseconds since the epoch (0 before it). The core reads no
/// clock: the callers pass `SystemTime::now()`.
pub fn epoch_millis(t: SystemTime) -> Millis {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

/// Parses a local time without an offset (`2026-12-01 18:00:00`, `2026-12-01T18:00:00`,
/// with a fraction of a second or not) as the wall-clock time of `tz`. A time the zone
/// skips (the hour a daylight-saving change jumps over) is `None`; a time it repeats (the
/// hour it falls back) is the earlier of the two. Allocates nothing.
pub fn parse_local(b: &[u8], tz: chrono_tz::Tz) -> Option<Millis> {
    use chrono::offset::LocalResult;
    use chrono::{NaiveDateTime, TimeZone};
    let text = std::str::from_utf8(b).ok()?;
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.timestamp_millis()),
        LocalResult::None => None,
    }
}

/// Parses an RFC 3339 timestamp (`2026-11-22T19:32:55.123Z`, `…+02:00`; a space or a
/// lowercase `t`/`z` are accepted) into milliseconds, with chrono: impossible dates
/// (`2026-02-30`) and offsets (`+24:00`) are rejected. Fractions finer than a
/// millisecond are truncated. Allocates nothing.
#[inline]
pub fn parse_rfc3339(b: &[u8]) -> Option<Millis> {
    let text = std::str::from_utf8(b).ok()?;
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

/// Formats milliseconds as RFC 3339 in UTC with millisecond precision.
pub fn format_rfc3339(ms: Millis) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => format!("{ms}ms since 1970-01-01T00:00:00Z"),
    }
}

/// Parses a config duration: one or more `<integer><unit>` parts with units `ms`, `s`,
/// `m`, `h`, `d` (`"90s"`, `"15m"`, `"1h30m"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration; write e.g. \"90s\", \"15m\" or \"8h\"".into());
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let n_len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if n_len == 0 {
            return Err(format!("{text:?} is not a duration; write e.g. \"90s\", \"15m\" or \"8h\""));
        }
        let n: u64 = rest[..n_len].parse().map_err(|_| format!("{text:?}: number too large"))?;
        rest = &rest[n_len..];
        let u_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..u_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("{text:?} has no unit; write e.g. \"{n}s\" (units: ms, s, m, h, d)")),
            u => return Err(format!("{text:?} has an unknown unit {u:?} (units: ms, s, m, h, d)")),
        };
        rest = &rest[u_len..];
        total = n
            .checked_mul(unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?}: duration too large"))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats seconds for a person: `"8h 02m"`, `"3m 05s"`, `"42s"`, `"1.5s"`.
pub fn format_human(seconds: f64) -> String {
    let neg = seconds < 0.0;
    let s = seconds.abs();
    let body = if s < 10.0 {
        format!("{:.1}s", s)
    } else if s < 60.0 {
        format!("{}s", s as u64)
    } else if s < 3600.0 {
        let t = s as u64;
        format!("{}m {:02}s", t / 60, t % 60)
    } else if s < 86_400.0 {
        let t = s as u64;
        format!("{}h {:02}m", t / 3600, t % 3600 / 60)
    } else {
        let t = s as u64;
        format!("{}d {:02}h", t / 86_400, t % 86_400 / 3600)
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_are_read_in_their_zone() {
        let shanghai = chrono_tz::Asia::Shanghai;
        let utc_10 = parse_rfc3339(b"2026-12-01T10:00:00Z").unwrap();
        assert_eq!(parse_local(b"2026-12-01 18:00:00", shanghai), Some(utc_10));
        assert_eq!(parse_local(b"2026-12-01T18:00:00", shanghai), Some(utc_10));
        assert_eq!(parse_local(b"2026-12-01 18:00:00.250", shanghai), Some(utc_10 + 250));
        assert_eq!(parse_local(b"2026-12-01 18:00", shanghai), None, "seconds are part of the format");
        assert_eq!(parse_local(b"2026-12-01T18:00:00Z", shanghai), None, "an offset is RFC 3339's to read");
        // Berlin skips 02:00–03:00 on 2026-03-29 and repeats it on 2026-10-25
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(parse_local(b"2026-03-29 02:30:00", berlin), None, "a time that does not exist there");
        let earlier = parse_rfc3339(b"2026-10-25T02:30:00+02:00").unwrap();
        assert_eq!(parse_local(b"2026-10-25 02:30:00", berlin), Some(earlier), "the earlier of the two");
    }

    #[test]
    fn rfc3339_round_trip() {
        let ms = parse_rfc3339(b"2026-11-22T19:32:55.123Z").unwrap();
        assert_eq!(ms, 1_795_375_975_123);
        assert_eq!(format_rfc3339(ms), "2026-11-22T19:32:55.123Z");
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00Z"), Some(0));
    }

    #[test]
    fn rfc3339_offsets_and_fractions() {
        let z = parse_rfc3339(b"2026-11-22T19:32:55Z").unwrap();
        assert_eq!(parse_rfc3339(b"2026-11-22T21:32:55+02:00"), Some(z));
        assert_eq!(parse_rfc3339(b"2026-11-22T18:02:55-01:30"), Some(z));
        assert_eq!(parse_rfc3339(b"2026-11-22 19:32:55.5z"), Some(z + 500));
        assert_eq!(parse_rfc3339(b"2026-11-22T19:32:55.123456789Z"), Some(z + 123));
    }

    #[test]
    fn rfc3339_rejects() {
        for bad in [
            &b"2026-11-22"[..],
            b"2026-11-22T19:32:55",
            b"2026-13-22T19:32:55Z",
            b"2026-11-22T19:32:55.Z",
            b"2026-11-22T19:32:55Zjunk",
            b"yesterday",
            // impossible dates, times and offsets
            b"2026-02-30T10:00:00Z",
            b"2025-02-29T10:00:00Z",
            b"2026-04-31T10:00:00Z",
            b"2026-11-22T24:00:00Z",
            b"2026-11-22T19:60:00Z",
            b"2026-11-22T19:32:55+24:00",
            b"2026-11-22T19:32:55+99:99",
            b"2026-11-22T19:32:55+02:60",
            b"2026-11-22T19:32:55\xffZ",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(parse_rfc3339(b"2024-02-29T10:00:00Z").is_some(), "a leap day");
        assert!(parse_rfc3339(b"2026-11-22T19:32:55+23:59").is_some(), "the largest offset");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("8h").unwrap(), Duration::from_secs(28_800));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("15").unwrap_err().contains("no unit"));
        assert!(parse_duration("15 minutes").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5y").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn human() {
        assert_eq!(format_human(28_920.0), "8h 02m");
        assert_eq!(format_human(185.0), "3m 05s");
        assert_eq!(format_human(42.0), "42s");
        assert_eq!(format_human(-1.25), "-1.2s");
    }
}
