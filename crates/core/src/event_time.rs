//! Parsing of the raw `event_time` field.
//!
//! Accepted forms (all read as UTC):
//! `2019-10-01 00:00:03 UTC` (Kaggle), `2019-10-01 00:00:03`,
//! `2019-10-01T00:00:03`, `2019-10-01T00:00:03Z`, `2019-10-01T00:00:03+02:00`,
//! each optionally with fractional seconds.

use chrono::{DateTime, NaiveDateTime};

// Semantics: docs/semantics.md#event-time
/// Microseconds since the Unix epoch, or `None` when the text is not a timestamp.
pub fn parse_event_time_micros(text: &str) -> Option<i64> {
    let text = text.trim_end();
    let naive_part = text.strip_suffix(" UTC").or_else(|| text.strip_suffix('Z')).or_else(|| text.strip_suffix(" Z"));
    if let Some(naive) = naive_part {
        return parse_naive(naive);
    }
    if let Some(micros) = parse_naive(text) {
        return Some(micros);
    }
    // An explicit offset (`+02:00`): convert to UTC.
    DateTime::parse_from_rfc3339(text)
        .ok()
        .or_else(|| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z").ok())
        .map(|t| t.timestamp_micros())
}

fn parse_naive(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    // Fast path for the exact Kaggle shape `YYYY-MM-DD HH:MM:SS`.
    if bytes.len() == 19
        && (bytes[10] == b' ' || bytes[10] == b'T')
        && let Some(micros) = parse_fixed19(bytes)
    {
        return Some(micros);
    }
    let format = if bytes.get(10) == Some(&b'T') { "%Y-%m-%dT%H:%M:%S%.f" } else { "%Y-%m-%d %H:%M:%S%.f" };
    NaiveDateTime::parse_from_str(text, format).ok().map(|t| t.and_utc().timestamp_micros())
}

/// `YYYY-MM-DD?HH:MM:SS` without allocation; validated through chrono.
fn parse_fixed19(b: &[u8]) -> Option<i64> {
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[range] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as u32;
        }
        Some(v)
    };
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
    Some(date.and_time(time).and_utc().timestamp_micros())
}

// Semantics: docs/semantics.md#events-from-the-future
/// True for rows whose `event_time` is later than `cutoff` (µs): the clock
/// plus the skew a source may have (`--max-clock-skew`). Such an event cannot
/// have happened yet; stage 04 keeps it out of its watermark and windows,
/// stage 01 counts it. Never null (a row without a time is not from the
/// future); nothing is from the future without a cutoff.
pub fn is_future(cutoff: Option<i64>) -> datafusion::logical_expr::Expr {
    use datafusion::logical_expr::{cast, col, lit};
    match cutoff {
        Some(c) => {
            let later = cast(col("event_time"), datafusion::arrow::datatypes::DataType::Int64).gt(lit(c));
            datafusion::prelude::coalesce(vec![later, lit(false)])
        }
        None => lit(false),
    }
}

/// Days since the Unix epoch of a timestamp in microseconds (UTC date).
pub fn micros_to_epoch_days(micros: i64) -> i32 {
    micros.div_euclid(86_400_000_000) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(s: &str) -> i64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap().and_utc().timestamp_micros()
    }

    #[test]
    fn kaggle_form_with_utc_suffix() {
        assert_eq!(parse_event_time_micros("2019-10-01 00:00:03 UTC"), Some(micros("2019-10-01 00:00:03")));
    }

    #[test]
    fn without_suffix_and_iso_forms() {
        let want = Some(micros("2019-11-30 23:59:59"));
        assert_eq!(parse_event_time_micros("2019-11-30 23:59:59"), want);
        assert_eq!(parse_event_time_micros("2019-11-30T23:59:59"), want);
        assert_eq!(parse_event_time_micros("2019-11-30T23:59:59Z"), want);
        assert_eq!(parse_event_time_micros("2019-12-01T01:59:59+02:00"), want);
        assert_eq!(parse_event_time_micros("2019-11-30T23:59:59.250Z"), Some(micros("2019-11-30 23:59:59.25")));
    }

    #[test]
    fn rejects_garbage_and_impossible_dates() {
        for bad in ["", "yesterday", "2019-13-01 00:00:00 UTC", "2019-02-30 00:00:00", "2019-10-01"] {
            assert_eq!(parse_event_time_micros(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn epoch_days_floor_before_1970() {
        assert_eq!(micros_to_epoch_days(0), 0);
        assert_eq!(micros_to_epoch_days(-1), -1);
        assert_eq!(micros_to_epoch_days(86_400_000_000), 1);
    }
}
