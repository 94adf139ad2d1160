//! Human units on the command line: durations (`90s`, `30m`, `6h`, `1d`,
//! `2w`), rates (`500/s`, `30k/s`, `2M`), and times (`2024-03-04T06:00`,
//! `2024-03-04 06:00:00`, nfdump's `2024/03/04.06:00:00`, epoch seconds).
//! All times are UTC unless they carry an offset.

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Parses a duration into milliseconds. A bare number is seconds.
pub fn parse_duration_ms(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid duration '{s}': expected e.g. 90s, 30m, 6h, 1d"))?;
    let mult = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1_000.0,
        "ms" => 1.0,
        "m" | "min" | "mins" => 60_000.0,
        "h" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        "w" | "week" | "weeks" => 604_800_000.0,
        u => bail!("invalid duration '{s}': unknown unit '{u}' (use ms, s, m, h, d or w)"),
    };
    let ms = n * mult;
    if !ms.is_finite() || !(0.0..=1e15).contains(&ms) {
        bail!("invalid duration '{s}': out of range");
    }
    Ok(ms.round() as u64)
}

/// Parses a rate in events per second: `500`, `500/s`, `30k/s`, `2M/s`,
/// `60/m`. Suffixes k/M/G are decimal, as in nfdump.
pub fn parse_rate(s: &str) -> anyhow::Result<f64> {
    let t = s.trim();
    let (num, per) = match t.split_once('/') {
        Some((n, p)) => (n, p),
        None => (t, "s"),
    };
    let (digits, mult) = match num.chars().last() {
        Some('k' | 'K') => (&num[..num.len() - 1], 1e3),
        Some('M') => (&num[..num.len() - 1], 1e6),
        Some('G') => (&num[..num.len() - 1], 1e9),
        _ => (num, 1.0),
    };
    let n: f64 = digits
        .parse()
        .with_context(|| format!("invalid rate '{s}': expected e.g. 500/s or 30k/s"))?;
    let per_s = match per {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        p => bail!("invalid rate '{s}': unknown period '/{p}' (use /s, /m or /h)"),
    };
    let r = n * mult / per_s;
    if !r.is_finite() || r < 0.0 {
        bail!("invalid rate '{s}'");
    }
    Ok(r)
}

/// Parses a point in time into milliseconds since the epoch.
pub fn parse_time_ms(s: &str) -> anyhow::Result<i64> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(t.parse::<i64>()? * 1000);
    }
    let norm = t.replace('/', "-").replacen('.', "T", 1).replacen(' ', "T", 1);
    let norm = if t.contains('/') { norm } else { t.replacen(' ', "T", 1) };
    let hour_only = format!("{norm}:00");
    for (text, fmt) in [
        (&norm, "%Y-%m-%dT%H:%M:%S%.f"),
        (&norm, "%Y-%m-%dT%H:%M:%S"),
        (&norm, "%Y-%m-%dT%H:%M"),
        (&hour_only, "%Y-%m-%dT%H:%M"),
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, fmt) {
            return Ok(dt.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(&norm, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis());
    }
    bail!(
        "invalid time '{s}': expected e.g. 2024-03-04T06:00, 2024-03-04 06:00:00 or 2024/03/04.06:00:00 (UTC)"
    )
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `YYYY-MM-DD hh:mm:ss` (UTC) for seconds since the epoch.
pub fn fmt_time_s(s: i64) -> String {
    DateTime::<Utc>::from_timestamp(s, 0)
        .map_or_else(|| s.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// `YYYY-MM-DD hh:mm:ss.mmm` (UTC) for milliseconds since the epoch.
pub fn fmt_time_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_and_reject() {
        for (s, ms) in [
            ("90", 90_000),
            ("90s", 90_000),
            ("30m", 1_800_000),
            ("6h", 21_600_000),
            ("1d", 86_400_000),
            ("1.5h", 5_400_000),
            ("250ms", 250),
            ("2w", 1_209_600_000),
        ] {
            assert_eq!(parse_duration_ms(s).unwrap(), ms, "{s}");
        }
        for bad in ["", "h", "6x", "-1h", "1e400s", "six hours"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_accept_and_reject() {
        for (s, r) in [
            ("500", 500.0),
            ("500/s", 500.0),
            ("30k/s", 30_000.0),
            ("2M", 2e6),
            ("60/m", 1.0),
            ("3600/h", 1.0),
        ] {
            assert_eq!(parse_rate(s).unwrap(), r, "{s}");
        }
        for bad in ["", "fast", "5/y", "-3/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_accept_and_reject() {
        let t = 1_709_532_000_000; // 2024-03-04 06:00:00 UTC
        for s in [
            "2024-03-04T06:00",
            "2024-03-04T06:00:00",
            "2024-03-04 06:00:00",
            "2024/03/04.06:00:00",
            "2024/03/04.06:00",
            "2024-03-04T06:00:00Z",
            "2024-03-04T07:00:00+01:00",
            "1709532000",
            "2024-03-04T06",
        ] {
            assert_eq!(parse_time_ms(s).unwrap(), t, "{s}");
        }
        assert_eq!(parse_time_ms("2024-03-04").unwrap(), t - 6 * 3_600_000);
        for bad in ["", "yesterday", "2024-13-01T00:00", "2024-03-04T25:00"] {
            assert!(parse_time_ms(bad).is_err(), "{bad}");
        }
        assert_eq!(fmt_time_ms(t + 5), "2024-03-04 06:00:00.005");
    }
}
