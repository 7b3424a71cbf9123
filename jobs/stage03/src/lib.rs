//! Stage 03: the stream input — bronze rows of a date range written as N
//! Parquet files into `<lake>/stream_input/`, the files a streaming run consumes.
//!
//! **Order.** The files split the range's event time into N consecutive,
//! non-overlapping intervals holding about the same number of rows (cut at
//! whole minutes), numbered in time order (`part-00000-<run>.parquet`, …), and
//! each file is sorted by event time: read in name order they replay the
//! events the way a live feed would have delivered them.
//!
//! **Replacement.** The files are written under `_staging/<run>/` and moved
//! in with the lake's commit journal, replacing the previous files all or
//! nothing; each file appears by a rename, whole.
//!
//! **Generation.** Each run stamps the folder with its run id
//! (`_generation.json`, the journal's first move): a stream that has read
//! files of an earlier run refuses the new ones instead of counting the same
//! events twice (see `funnelpulse_lake::Generation`).

pub mod cuts;

use std::fmt;
use std::time::Duration;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{Case, Expr, cast, col, lit};
use datafusion::prelude::{DataFrame, date_trunc};
use datafusion::scalar::ScalarValue;
use funnelpulse_core::tables::BRONZE_EVENTS;
use funnelpulse_engine::Context;
use funnelpulse_engine::tables::{as_one_task, read_files};
use funnelpulse_engine::{Engine, StageProgress, check};
use funnelpulse_lake::{AsOf, Generation, Lake, TableFiles, new_run_id};
use futures::{StreamExt, TryStreamExt};

/// Where the stream input lives, relative to the lake root.
pub const STREAM_INPUT: &str = "stream_input/";

/// Command-line options of stage 03: the date range and the number of files of the stream input.
#[derive(clap::Args, Debug, Clone)]
pub struct Stage03Args {
    /// First event date (UTC) of the stream input [default: 16 days before --stream-to].
    #[arg(long, env = "FUNNELPULSE_STREAM_FROM")]
    pub stream_from: Option<NaiveDate>,
    /// Last event date (inclusive) [default: the last day of bronze_events].
    #[arg(long, env = "FUNNELPULSE_STREAM_TO")]
    pub stream_to: Option<NaiveDate>,
    /// Number of files to write.
    #[arg(long, env = "FUNNELPULSE_STREAM_FILES", default_value_t = 50, value_parser = at_least_one)]
    pub stream_files: usize,
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number, at least 1".into()),
    }
}

impl Default for Stage03Args {
    fn default() -> Self {
        Self { stream_from: None, stream_to: None, stream_files: 50 }
    }
}

// Semantics: docs/semantics.md#stream-input-stage-03
/// The days to write: the given dates, the rest from the data (`data_days`,
/// bronze's sorted partition values). None when bronze has no dated row and
/// no --stream-to was given.
pub fn date_range(args: &Stage03Args, data_days: &[String]) -> Option<(NaiveDate, NaiveDate)> {
    funnelpulse_core::stream::stream_date_range(args.stream_from, args.stream_to, data_days)
}

/// Why nothing was written, in one line.
fn nothing_written(range: Option<(NaiveDate, NaiveDate)>, data_days: &[String]) -> String {
    let dated: Vec<&String> = data_days.iter().filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()).collect();
    match (range, dated.first(), dated.last()) {
        (Some((from, to)), Some(first), Some(last)) => format!(
            "no bronze rows from {from} to {to} (bronze_events holds {first} … {last}): stream_input is empty; choose \
             days within the data with --stream-from and --stream-to"
        ),
        _ => "bronze_events holds no dated rows (run stage 01 on data with events): stream_input is empty".to_string(),
    }
}

/// What stage 03 wrote to `<lake>/stream_input/`.
#[derive(Debug, Default, Clone)]
pub struct Stage03Report {
    /// The range written (None: bronze had no dated rows).
    pub range: Option<(NaiveDate, NaiveDate)>,
    /// Days of the range that bronze_events holds rows of (its `event_date` partitions read).
    pub days: usize,
    /// Rows written to the stream files (= bronze rows of the range).
    pub rows: u64,
    /// Parquet files written: fewer than `--stream-files` with fewer minutes of rows, more if the writer split one.
    pub files: usize,
    /// Wall time of the whole stage, commit included.
    pub elapsed: Duration,
    /// URL of the stream input folder.
    pub location: String,
    /// The run id stamped on the files (`_generation.json`).
    pub generation: String,
}

impl fmt::Display for Stage03Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = self.range.map(|(from, to)| format!(" ({from} … {to})")).unwrap_or_default();
        writeln!(
            f,
            "stage 03 done in {:.1}s: {} bronze rows of {} days{range} in {} files, in event-time order, at {} (generation {})",
            self.elapsed.as_secs_f64(),
            self.rows,
            self.days,
            self.files,
            self.location,
            self.generation
        )
    }
}

/// Write jobs submitted at once (the cluster runs as many as it has task slots).
const CONCURRENT_JOBS: usize = 4;

/// Rows one write job sorts at most (about 100 MB of bronze rows in memory).
/// Fewer, bigger jobs cost fewer round trips and read each day once; more
/// data makes more jobs, not bigger ones.
const ROWS_PER_WRITE_JOB: u64 = 700_000;

/// Runs stage 03: replaces the stream input with the bronze rows of the chosen range, all or nothing.
pub async fn run(engine: &Engine, lake: &Lake, args: &Stage03Args) -> funnelpulse_engine::Result<Stage03Report> {
    if let (Some(from), Some(to)) = (args.stream_from, args.stream_to) {
        funnelpulse_engine::ensure!(
            from <= to,
            "--stream-from {from} is after --stream-to {to}: give an earlier --stream-from"
        );
    }
    funnelpulse_engine::ensure!(args.stream_files >= 1, "--stream-files must be at least 1");
    let progress = StageProgress::start("03");
    funnelpulse_engine::staged::prepare_lake(lake).await?;
    let run_id = new_run_id();
    // Before anything is staged: the staging of a live run is never taken for a killed run's.
    let marker = funnelpulse_lake::RunMarker::start(lake, &run_id).await?;
    let outcome = replace_stream_input(engine, lake, args, &run_id, &progress).await;
    marker.finish().await;
    let report = outcome?;
    progress.finish();
    Ok(report)
}

/// Writes the stream input under `_staging/<run_id>/` and commits it in place of the old one.
async fn replace_stream_input(
    engine: &Engine,
    lake: &Lake,
    args: &Stage03Args,
    run_id: &str,
    progress: &StageProgress,
) -> funnelpulse_engine::Result<Stage03Report> {
    let bronze = lake
        .snapshot(&BRONZE_EVENTS, &AsOf::Latest)
        .await?
        .with_context(|| format!("no bronze_events in {} (run stage 01 first)", lake.url()))?;
    let data_days = bronze.partitions();
    let range = date_range(args, &data_days);
    let days: Vec<String> = match range {
        Some((from, to)) => {
            let (from, to) = (from.to_string(), to.to_string());
            data_days.iter().filter(|d| **d >= from && **d <= to).cloned().collect()
        }
        None => Vec::new(),
    };
    let mut report = Stage03Report {
        range,
        days: days.len(),
        location: lake.url_of(STREAM_INPUT),
        generation: run_id.to_string(),
        ..Default::default()
    };
    let outcome = async {
        let files = write_files(engine, lake, &bronze, run_id, &days, args.stream_files, &mut report, progress).await?;
        // The marker moves first: see `funnelpulse_lake::Generation`.
        let generation = Generation::new(run_id, files.len(), report.rows);
        let marker = lake.stage_generation(run_id, STREAM_INPUT, &generation).await?;
        Ok::<_, funnelpulse_engine::Error>(std::iter::once(marker).chain(files).collect::<Vec<_>>())
    };
    let moves = match outcome.await {
        Ok(moves) => moves,
        Err(e) => {
            let _ = lake.discard_staging(run_id).await;
            return Err(e);
        }
    };
    if days.is_empty() {
        progress.line(nothing_written(range, &data_days));
    }
    funnelpulse_lake::fault::crash_point("after-staging:stream_input");
    progress.step("committing");
    lake.commit_folder(run_id, STREAM_INPUT, moves).await?;
    report.elapsed = progress.elapsed();
    Ok(report)
}

/// Writes the files under staging, checks them, and returns the moves (staged, final).
#[allow(clippy::too_many_arguments)] // one call site; the stage's pieces, each used
async fn write_files(
    engine: &Engine,
    lake: &Lake,
    bronze_files: &TableFiles,
    run_id: &str,
    days: &[String],
    files: usize,
    report: &mut Stage03Report,
    progress: &StageProgress,
) -> funnelpulse_engine::Result<Vec<(String, String)>> {
    if days.is_empty() {
        return Ok(Vec::new());
    }
    let ctx = &engine.ctx;
    let bronze = read_files(ctx, &bronze_files.only_partitions(days))?;
    progress.step("counting rows per minute");
    let minutes = rows_per_minute(bronze.clone()).await?;
    let intervals = cuts::equal_row_intervals(&minutes, files);

    progress.step(format!("writing {} files", intervals.len()));
    // Each file is the hive partition `part=<k>` of one staged folder: Ballista 55
    // writes nothing for an unpartitioned folder output, and one job writes the
    // files of several consecutive intervals at once.
    let staged_root = format!("_staging/{run_id}/stream_input/");
    let staging = |k: usize| format!("{staged_root}part={k:05}/");
    let expected = minutes.iter().map(|m| m.1).sum::<i64>();
    let jobs = write_jobs(&intervals, expected, engine.aggregate_slice_count());
    let writes = jobs.into_iter().map(|first_files| {
        let dir = lake.url_of(&staged_root);
        let intervals = &intervals;
        async move {
            let job = &intervals[first_files.clone()];
            let (start, end) = (job[0].0, job[job.len() - 1].1);
            let rows = read_files(ctx, &bronze_files.only_partitions(&cuts::days_of(start, end)))?;
            let slice = in_interval(rows, start, end)?
                .with_column("part", part_of(job, first_files.start))?
                .sort(funnelpulse_core::plans::replay_order())?;
            let options = DataFrameWriteOptions::new().with_partition_by(vec!["part".to_string()]);
            as_one_task(slice)
                .write_parquet(&dir, options, None)
                .await
                .with_context(|| format!("writing stream files {first_files:?}"))?;
            Ok::<_, funnelpulse_engine::Error>(())
        }
    });
    futures::stream::iter(writes).buffer_unordered(CONCURRENT_JOBS).try_collect::<Vec<_>>().await?;

    // Every bronze row of the range is in exactly one file (counted from the files' footers).
    let written = lake.parquet_rows_under(&staged_root).await? as i64;
    check("stream input rows = bronze rows of the range", written == expected, || format!("{written} vs {expected}"))?;
    report.rows = written as u64;

    let mut moves = Vec::new();
    for k in 0..intervals.len() {
        let staged = lake.list_rel(&staging(k)).await?;
        let parquet: Vec<&String> = staged.iter().filter(|f| f.ends_with(".parquet")).collect();
        for (j, file) in parquet.iter().enumerate() {
            let name = if parquet.len() == 1 {
                format!("part-{k:05}-{run_id}.parquet")
            } else {
                format!("part-{k:05}-{j:03}-{run_id}.parquet")
            };
            moves.push(((*file).clone(), format!("{STREAM_INPUT}{name}")));
        }
    }
    report.files = moves.len();
    Ok(moves)
}

/// The intervals' indexes grouped into consecutive runs, one per write job:
/// at least `slots` jobs (every task slot busy), more when the rows need them.
fn write_jobs(intervals: &[(i64, i64)], rows: i64, slots: usize) -> Vec<std::ops::Range<usize>> {
    let jobs = ((rows.max(0) as u64).div_ceil(ROWS_PER_WRITE_JOB) as usize).max(slots).clamp(1, intervals.len().max(1));
    let per_job = intervals.len().div_ceil(jobs).max(1);
    (0..intervals.len()).step_by(per_job).map(|first| first..(first + per_job).min(intervals.len())).collect()
}

/// The file number (`part`, zero-padded) of a row of a job whose intervals
/// start with file `first`: the interval its event time falls in (the rows
/// are already limited to the job's intervals).
fn part_of(job: &[(i64, i64)], first: usize) -> Expr {
    let name = |k: usize| Box::new(lit(format!("{:05}", first + k)));
    let last = job.len() - 1;
    if last == 0 {
        return *name(0);
    }
    let branches =
        job[..last].iter().enumerate().map(|(k, &(_, end))| (Box::new(col("event_time").lt(micros(end))), name(k)));
    Expr::Case(Case::new(None, branches.collect(), Some(name(last))))
}

fn micros(v: i64) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(Some(v), None))
}

fn in_interval(df: DataFrame, start: i64, end: i64) -> datafusion::error::Result<DataFrame> {
    df.filter(col("event_time").gt_eq(micros(start)).and(col("event_time").lt(micros(end))))
}

/// Event time, then the row's other fields: a total, deterministic order.
/// (minute start in µs, rows), in time order.
async fn rows_per_minute(bronze: DataFrame) -> funnelpulse_engine::Result<Vec<(i64, i64)>> {
    let minute = cast(date_trunc(lit("minute"), col("event_time")), DataType::Int64);
    // One task: a scan of one column and a small aggregate, not worth a shuffle.
    let batches = as_one_task(bronze)
        .filter(col("event_time").is_not_null())?
        .aggregate(vec![minute.alias("minute")], vec![count(lit(1)).alias("rows")])?
        .sort(vec![col("minute").sort(true, false)])?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in batches {
        let (m, r) = (b.column(0).as_primitive::<Int64Type>(), b.column(1).as_primitive::<Int64Type>());
        for i in 0..b.num_rows() {
            if m.is_valid(i) {
                out.push((m.value(i), r.value(i)));
            }
        }
    }
    Ok(out)
}

/// Bronze rows of a date range → the stream input files.
pub struct Stage03;

impl funnelpulse_engine::Stage for Stage03 {
    const ID: &'static str = "03";
    const ABOUT: &'static str = "bronze rows of a date range → <lake>/stream_input/ as N files in event-time order";
    type Args = Stage03Args;
    type Report = Stage03Report;

    async fn run(engine: &Engine, lake: &Lake, args: &Stage03Args) -> funnelpulse_engine::Result<Stage03Report> {
        run(engine, lake, args).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn args(from: Option<&str>, to: Option<&str>) -> Stage03Args {
        Stage03Args { stream_from: from.map(day), stream_to: to.map(day), stream_files: 1 }
    }

    #[test]
    fn the_default_range_is_the_last_17_days_of_the_data() {
        let data: Vec<String> = ["2024-03-01", "2024-03-30", "2024-04-02", NULL_DAY].map(String::from).to_vec();
        assert_eq!(date_range(&args(None, None), &data), Some((day("2024-03-17"), day("2024-04-02"))));
        assert_eq!(date_range(&args(None, Some("2024-03-10")), &data), Some((day("2024-02-23"), day("2024-03-10"))));
        assert_eq!(date_range(&args(Some("2024-03-31"), None), &data), Some((day("2024-03-31"), day("2024-04-02"))));
        // A start after the data: an empty range at the start, which then says why it is empty.
        assert_eq!(date_range(&args(Some("2025-01-01"), None), &data), Some((day("2025-01-01"), day("2025-01-01"))));
        assert_eq!(date_range(&args(None, None), &[NULL_DAY.to_string()]), None);
    }

    #[test]
    fn writing_nothing_says_why_in_one_line() {
        let data: Vec<String> = ["2024-03-01", "2024-03-30"].map(String::from).to_vec();
        let why = nothing_written(Some((day("2019-10-15"), day("2019-10-31"))), &data);
        assert!(why.contains("2019-10-15 to 2019-10-31") && why.contains("holds 2024-03-01 … 2024-03-30"), "{why}");
        assert!(nothing_written(None, &[]).contains("no dated rows"));
    }

    #[test]
    fn write_jobs_cover_every_file_once_in_order() {
        let intervals: Vec<(i64, i64)> = (0..50).map(|i| (i, i + 1)).collect();
        let jobs = write_jobs(&intervals, 2_400_000, 2);
        assert_eq!(jobs.len(), 4, "{jobs:?}");
        assert_eq!(jobs.iter().flat_map(|j| j.clone()).collect::<Vec<_>>(), (0..50).collect::<Vec<_>>());
        // More rows make more jobs; never more jobs than files, never none.
        assert_eq!(write_jobs(&intervals, 70_000_000, 2).len(), 50);
        assert_eq!(write_jobs(&intervals[..1], 10, 16), vec![0..1]);
        assert_eq!(write_jobs(&intervals[..3], 10, 2).len(), 2);
    }

    const NULL_DAY: &str = "__HIVE_DEFAULT_PARTITION__";
}
