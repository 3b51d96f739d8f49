//! Time as pipewatch counts it: milliseconds since the Unix epoch (`i64`), passed in by
//! the caller (nothing here reads a clock); RFC 3339 parsing and formatting, and the
//! config's durations (`"90s"`, `"15m"`, `"8h"`).

use std::time::Duration;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// Days since the epoch of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[inline]
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let s = b.get(at..at + n)?;
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Parses an RFC 3339 timestamp (`2026-11-22T19:32:55.123Z`, `…+02:00`; a space or a
/// lowercase `t`/`z` are accepted) into milliseconds. Fractions finer than a
/// millisecond are truncated.
pub fn parse_rfc3339(b: &[u8]) -> Option<Millis> {
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(c - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let offset_min = match b.get(i) {
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let h = digits(b, i + 1, 2)?;
            if b.get(i + 3) != Some(&b':') {
                return None;
            }
            let m = digits(b, i + 4, 2)?;
            i += 6;
            let off = h * 60 + m;
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    if i != b.len() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// Formats milliseconds as RFC 3339 in UTC with millisecond precision.
pub fn format_rfc3339(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", sod / 3600, sod % 3600 / 60, sod % 60)
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
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{:?}", std::str::from_utf8(bad));
        }
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
