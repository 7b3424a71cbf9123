//! What one run of stage 04 did, printed when it ends.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::progress::{BatchProgress, Totals};

/// Batch durations kept for the run's p50: a stream that runs for days keeps
/// its sums, its last batch and this many durations, not every batch.
const RECENT_DURATIONS: usize = 10_000;

/// What one run of stage 04 did, printed when it ends.
#[derive(Debug, Default)]
pub struct Stage04Report {
    /// Sums over this run's batches.
    pub totals: Totals,
    /// This run's last batch.
    pub last: Option<BatchProgress>,
    /// The durations of this run's latest batches (flushes aside), oldest first.
    recent_ms: VecDeque<u64>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// URL of the output table (gold_stream_funnel_hourly_brand).
    pub output: String,
}

impl Stage04Report {
    /// An empty report of a run writing to `output`.
    pub(crate) fn new(output: String) -> Self {
        Self { output, ..Default::default() }
    }

    pub(crate) fn add(&mut self, batch: BatchProgress) {
        self.totals.add(&batch);
        if !batch.flush {
            if self.recent_ms.len() == RECENT_DURATIONS {
                self.recent_ms.pop_front();
            }
            self.recent_ms.push_back(batch.durations.total_ms);
        }
        self.last = Some(batch);
    }

    /// The median duration of the latest batches, in ms.
    fn p50_ms(&self) -> u64 {
        let mut sorted: Vec<u64> = self.recent_ms.iter().copied().collect();
        sorted.sort_unstable();
        sorted.get(sorted.len().saturating_sub(1) / 2).copied().unwrap_or(0)
    }
}

impl fmt::Display for Stage04Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.totals;
        let seconds = self.elapsed.as_secs_f64().max(1e-3);
        write!(
            f,
            "stage 04 done in {:.1}s: {} batches, {} files, {} rows ({:.0} rows/s), {} windows emitted, {} late rows, \
             {} files quarantined, {} dead letters, {} events from the future; batch p50 {} ms; ",
            seconds,
            t.batches,
            t.files,
            t.input_rows,
            t.input_rows as f64 / seconds,
            t.emitted_windows,
            t.late_rows,
            t.quarantined,
            t.dead_letters,
            t.future_rows,
            self.p50_ms(),
        )?;
        match &self.last {
            Some(last) => writeln!(
                f,
                "watermark {}, {} windows open; output at {}",
                last.watermark.as_deref().unwrap_or("none"),
                last.open_windows,
                self.output
            ),
            None => writeln!(f, "nothing new; output at {}", self.output),
        }
    }
}
