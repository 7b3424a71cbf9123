//! Per-batch progress, like Spark's `StreamingQueryProgress`: printed after
//! each batch and appended to `<checkpoint>/progress/<first id>.jsonl`
//! (segments of the checkpoint's retained batches); `funnelpulse stream
//! status` shows the totals of the last commit and the latest batches.

use std::fmt;

use funnelpulse_core::stream::format_micros;
use serde::{Deserialize, Serialize};

use funnelpulse_kafka::source::PartitionRange;

use crate::checkpoint::Quarantined;

/// Milliseconds spent in each phase of a batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Durations {
    /// Listing and checking new files, writing the offsets.
    pub plan_ms: u64,
    /// The Ballista job that counts the batch and finds its latest event time.
    pub aggregate_ms: u64,
    /// The Ballista jobs writing open windows, closed windows and late events.
    pub write_ms: u64,
    /// Reconciling the written files with the batch's counts.
    pub check_ms: u64,
    /// Commit record and moves into the tables.
    pub commit_ms: u64,
    /// The whole batch, planning included.
    pub total_ms: u64,
}

/// One committed batch, like Spark's query progress: printed, and a line of the progress log.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BatchProgress {
    /// Id of the batch (from 0).
    pub batch_id: u64,
    /// When the batch was committed (UTC, RFC 3339).
    pub timestamp: String,
    /// Files read (relative to the source folder, or staged in the checkpoint for Kafka).
    pub files: Vec<String>,
    /// Files set aside instead of read, with the reason.
    pub quarantined: Vec<Quarantined>,
    /// Rows in the batch's files, before any filter.
    pub input_rows: u64,
    /// Input rows that pass the silver filters.
    pub silver_rows: u64,
    /// Silver rows whose window had already closed: counted and kept in late_events, not added.
    pub late_rows: u64,
    /// Windows (hour, brand) the batch closed and wrote to the output table.
    pub emitted_windows: u64,
    /// Windows (hour, brand) still open after the batch.
    pub open_windows: u64,
    /// Watermark after the batch (`YYYY-MM-DD HH:MM:SS`), none before any event.
    pub watermark: Option<String>,
    /// Latest event time of the batch's silver rows (`YYYY-MM-DD HH:MM:SS`); none without any.
    pub max_event_time: Option<String>,
    /// Input rows over the batch's total time.
    pub input_rows_per_second: f64,
    /// Time per phase; zero in the commit record, which is written before the batch ends.
    pub durations: Durations,
    /// The flush at the end of a bounded run (`--flush-at-end`): no input, every open window emitted.
    pub flush: bool,
    /// Kafka source: the offset ranges read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kafka_ranges: Vec<PartitionRange>,
    /// Kafka source: records that were not events (in the dead-letter table).
    #[serde(default)]
    pub dead_letters: u64,
    /// Events from the future (later than the clock plus `--max-clock-skew`),
    /// in `future_events`, in no window and not in the watermark.
    #[serde(default)]
    pub future_rows: u64,
}

/// Sums over every committed batch, carried by each commit: `stream status`
/// reads them from the last commit, whatever the progress log still holds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Totals {
    /// Batches committed.
    pub batches: u64,
    /// Source files read.
    pub files: u64,
    /// Rows read, before any filter.
    pub input_rows: u64,
    /// Late silver rows (kept in late_events, in no window).
    pub late_rows: u64,
    /// Windows written to the output table.
    pub emitted_windows: u64,
    /// Files quarantined.
    pub quarantined: u64,
    /// Kafka records that were not events.
    pub dead_letters: u64,
    /// Events from the future (0 in commits written before they were counted).
    #[serde(default)]
    pub future_rows: u64,
}

impl Totals {
    /// Adds one batch's counts.
    pub fn add(&mut self, batch: &BatchProgress) {
        self.batches += 1;
        self.files += batch.files.len() as u64;
        self.input_rows += batch.input_rows;
        self.late_rows += batch.late_rows;
        self.emitted_windows += batch.emitted_windows;
        self.quarantined += batch.quarantined.len() as u64;
        self.dead_letters += batch.dead_letters;
        self.future_rows += batch.future_rows;
    }
}

impl BatchProgress {
    /// Sets the watermark and latest event time from µs, as UTC text (`YYYY-MM-DD HH:MM:SS`).
    pub fn set_watermark(&mut self, watermark: Option<i64>, max_event_time: Option<i64>) {
        self.watermark = watermark.map(format_micros);
        self.max_event_time = max_event_time.map(format_micros);
    }
}

impl fmt::Display for BatchProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.durations;
        let what = if self.flush {
            "flush".to_string()
        } else if !self.kafka_ranges.is_empty() {
            let ranges: Vec<String> =
                self.kafka_ranges.iter().map(|r| format!("p{} {}..{}", r.partition, r.start, r.end)).collect();
            format!(
                "{} records ({}), {} dead letters",
                self.input_rows + self.dead_letters,
                ranges.join(" "),
                self.dead_letters
            )
        } else {
            format!("{} files", self.files.len())
        };
        write!(
            f,
            "batch {}: {what}, {} rows ({:.0} rows/s), late {}, future {}, emitted {} windows, open {}, watermark {}; \
             {} ms (plan {}, aggregate {}, write {}, check {}, commit {})",
            self.batch_id,
            self.input_rows,
            self.input_rows_per_second,
            self.late_rows,
            self.future_rows,
            self.emitted_windows,
            self.open_windows,
            self.watermark.as_deref().unwrap_or("none"),
            d.total_ms,
            d.plan_ms,
            d.aggregate_ms,
            d.write_ms,
            d.check_ms,
            d.commit_ms,
        )?;
        for q in &self.quarantined {
            write!(f, "\n  quarantined {}: {}", q.path, q.reason)?;
        }
        Ok(())
    }
}

/// What `funnelpulse stream status` prints.
pub struct Status {
    /// URL of the checkpoint folder.
    pub checkpoint: String,
    /// The source as the checkpoint names it: the folder's URL, or `kafka:<topic>`.
    pub source: String,
    /// URL of the output table.
    pub output: String,
    /// The checkpoint's `--watermark`, for people (`2h`).
    pub watermark_delay: String,
    /// Every committed batch.
    pub totals: Totals,
    /// The latest committed batches, oldest first.
    pub recent: Vec<BatchProgress>,
    /// Files quarantined by committed batches.
    pub quarantined: Vec<Quarantined>,
    /// What waits in the source (files, or records in a topic).
    pub waiting: String,
    /// File source: why the next run will refuse the source (stage 03 rebuilt it).
    pub rebuilt: Option<String>,
    /// A batch logged but not committed, which the next run re-runs first.
    pub pending_batch: Option<u64>,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "checkpoint {}", self.checkpoint)?;
        writeln!(f, "  source {}  →  output {}", self.source, self.output)?;
        writeln!(f, "  watermark delay {}", self.watermark_delay)?;
        let t = &self.totals;
        writeln!(
            f,
            "  {} batches committed: {} files, {} input rows, {} late rows, {} windows emitted, {} files quarantined, \
             {} dead letters, {} events from the future",
            t.batches,
            t.files,
            t.input_rows,
            t.late_rows,
            t.emitted_windows,
            t.quarantined,
            t.dead_letters,
            t.future_rows
        )?;
        if let Some(last) = self.recent.last() {
            writeln!(
                f,
                "  last batch {} at {}: watermark {}, {} open windows",
                last.batch_id,
                last.timestamp,
                last.watermark.as_deref().unwrap_or("none"),
                last.open_windows
            )?;
        }
        if let Some(id) = self.pending_batch {
            writeln!(f, "  batch {id} was started and not committed: the next run re-runs it first")?;
        }
        writeln!(f, "  {}", self.waiting)?;
        if let Some(rebuilt) = &self.rebuilt {
            writeln!(f, "  {rebuilt}")?;
        }
        for q in &self.quarantined {
            writeln!(f, "  quarantined {}: {}", q.path, q.reason)?;
        }
        if !self.recent.is_empty() {
            writeln!(f, "  recent batches:")?;
            for b in &self.recent {
                writeln!(f, "    {b}")?;
            }
        }
        Ok(())
    }
}
