//! Cutting a time range into intervals of about equal row counts.

use chrono::DateTime;

const MINUTE_MICROS: i64 = 60_000_000;

// Semantics: docs/semantics.md#stream-input-stage-03
/// Splits minutes (start µs, rows; sorted) into at most `files` consecutive
/// intervals `[start, end)` of whole minutes with about equal rows. Fewer
/// intervals when there are fewer minutes than files; never an empty one.
pub fn equal_row_intervals(minutes: &[(i64, i64)], files: usize) -> Vec<(i64, i64)> {
    let total: i64 = minutes.iter().map(|m| m.1).sum();
    if minutes.is_empty() || total == 0 {
        return Vec::new();
    }
    let files = files.clamp(1, minutes.len()) as i64;
    let mut intervals = Vec::new();
    let (mut start, mut seen, mut k) = (minutes[0].0, 0i64, 1i64);
    for (i, &(minute, rows)) in minutes.iter().enumerate() {
        seen += rows;
        let last = i + 1 == minutes.len();
        // Close interval k once it holds its share of the rows (k·total/files).
        if last || (seen * files >= k * total && k < files) {
            // Up to the next minute with rows: consecutive intervals, no gaps.
            let end = if last { minute + MINUTE_MICROS } else { minutes[i + 1].0 };
            intervals.push((start, end));
            start = end;
            k += 1;
        }
    }
    intervals
}

/// The `YYYY-MM-DD` dates that `[start, end)` (µs) touches.
pub fn days_of(start: i64, end: i64) -> Vec<String> {
    let day = |us: i64| DateTime::from_timestamp_micros(us).expect("time in range").date_naive();
    let (first, last) = (day(start), day(end - 1));
    first.iter_days().take_while(|d| *d <= last).map(|d| d.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_cover_every_minute_once_with_equal_shares() {
        let minutes: Vec<(i64, i64)> = (0..100).map(|i| (i * MINUTE_MICROS, 10)).collect();
        let cuts = equal_row_intervals(&minutes, 4);
        assert_eq!(cuts.len(), 4);
        assert_eq!(cuts[0], (0, 25 * MINUTE_MICROS));
        for w in cuts.windows(2) {
            assert_eq!(w[0].1, w[1].0, "consecutive");
        }
        assert_eq!(cuts[3].1, 100 * MINUTE_MICROS);
    }

    #[test]
    fn fewer_minutes_than_files_gives_one_interval_per_minute() {
        let minutes = vec![(0, 5), (3 * MINUTE_MICROS, 1)];
        assert_eq!(
            equal_row_intervals(&minutes, 50),
            vec![(0, 3 * MINUTE_MICROS), (3 * MINUTE_MICROS, 4 * MINUTE_MICROS)]
        );
        assert!(equal_row_intervals(&[], 3).is_empty());
    }

    #[test]
    fn a_busy_minute_is_never_split() {
        let minutes = vec![(0, 1), (MINUTE_MICROS, 100), (2 * MINUTE_MICROS, 1)];
        let cuts = equal_row_intervals(&minutes, 3);
        assert!(cuts.iter().all(|c| c.0 < c.1));
        assert_eq!(cuts.last().unwrap().1, 3 * MINUTE_MICROS);
    }

    #[test]
    fn days_of_an_interval() {
        let day = 86_400_000_000i64;
        let oct1 = chrono::NaiveDate::from_ymd_opt(2019, 10, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros();
        assert_eq!(days_of(oct1, oct1 + day), vec!["2019-10-01"]);
        assert_eq!(days_of(oct1 + day - 60_000_000, oct1 + day + 60_000_000), vec!["2019-10-01", "2019-10-02"]);
    }
}
