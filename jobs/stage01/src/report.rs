//! What stage 01 did, with its reconciliation.

use std::fmt;
use std::time::Duration;

use funnelpulse_core::plans::BadRows;

/// What stage 01 did: rows of each table, reconciliation figures and timings.
#[derive(Debug, Default, Clone)]
pub struct Stage01Report {
    /// Raw files read (the files of the folder that were not read are in `not_read`).
    pub raw_files: usize,
    /// Files of the raw folder that were not read, with the reason.
    pub not_read: Vec<funnelpulse_rawcsv::NotRead>,
    /// Data lines of the raw files (header and blank lines excluded), from a separate byte scan.
    pub data_lines: u64,
    /// Blank lines skipped in the raw files.
    pub blank_lines: u64,
    /// Raw lines with at least one problem: rows written to bronze_rejects.
    pub problem_rows: u64,
    /// The `--bad-rows` mode the stage ran with.
    pub bad_rows: BadRows,
    /// Rows written to bronze_events.
    pub bronze_rows: u64,
    /// Rows written to silver_events.
    pub silver_rows: u64,
    /// Silver-eligible bronze rows dropped as duplicates (silver-eligible rows − silver rows).
    pub duplicates_removed: u64,
    /// Rows written to gold_funnel_hourly_brand.
    pub gold_rows: u64,
    /// Bronze rows with an event_time later than `future_cutoff` (µs): the
    /// clock plus `max_clock_skew` when the stage started. Kept in every
    /// table, as the original did; a data-quality figure.
    pub future_rows: u64,
    /// Cutoff for `future_rows`, µs since the epoch (UTC); `i64::MAX` when beyond chrono's range.
    pub future_cutoff: i64,
    /// `--max-clock-skew`, as given (e.g. `1h`).
    pub max_clock_skew: String,
    /// Write time of each table, in the order written.
    pub timings: Vec<(&'static str, Duration)>,
    /// Time of the counts and invariant checks around the writes.
    pub checks: Vec<(&'static str, Duration)>,
    /// Wall time of the whole stage, commit included.
    pub elapsed: Duration,
}

impl fmt::Display for Stage01Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(f, "stage 01 done in {:.1}s ({:.0} raw rows/s)", secs, self.data_lines as f64 / secs)?;
        writeln!(f, "  reconciliation ({} raw files, --bad-rows {:?}):", self.raw_files, self.bad_rows)?;
        for skipped in &self.not_read {
            writeln!(f, "    not read: {} ({})", skipped.path, skipped.reason)?;
        }
        writeln!(f, "    raw data lines        {:>12}", self.data_lines)?;
        writeln!(f, "    blank lines skipped   {:>12}", self.blank_lines)?;
        writeln!(f, "    rows with problems    {:>12}  (bronze_rejects)", self.problem_rows)?;
        writeln!(f, "    bronze_events         {:>12}", self.bronze_rows)?;
        writeln!(
            f,
            "    events from the future {:>11}  (event_time > now + {}; kept, as the original did)",
            self.future_rows, self.max_clock_skew
        )?;
        writeln!(
            f,
            "    silver_events         {:>12}  ({} duplicates removed)",
            self.silver_rows, self.duplicates_removed
        )?;
        writeln!(f, "    gold_funnel_hourly_brand {:>9}", self.gold_rows)?;
        write!(f, "  time per table:")?;
        for (table, took) in &self.timings {
            write!(f, " {table} {:.1}s;", took.as_secs_f64())?;
        }
        write!(f, "\n  time per count and check:")?;
        for (check, took) in &self.checks {
            write!(f, " {check} {:.1}s;", took.as_secs_f64())?;
        }
        Ok(())
    }
}
