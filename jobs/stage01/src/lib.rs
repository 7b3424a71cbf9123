//! Stage 01: raw CSV → `bronze_events` (+ `bronze_rejects`) → `silver_events`
//! → `gold_funnel_hourly_brand`, committed together.

mod report;

use std::sync::Arc;
use std::time::Instant;

use clap::builder::TypedValueParser as _;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{col, lit, when};
use funnelpulse_core::event_time::is_future;
use funnelpulse_core::plans::{self, BadRows};
use funnelpulse_core::tables::{BRONZE_EVENTS, BRONZE_REJECTS, GOLD_FUNNEL_HOURLY_BRAND, SILVER_EVENTS};
use funnelpulse_engine::Context;
use funnelpulse_engine::{ClockArgs, Engine, StageProgress, StagedRun, check, one_row_i64};
use funnelpulse_lake::Lake;
use funnelpulse_rawcsv::{RawEventsTable, RawFile, RawListing, ScanMode, count_data_lines, list_raw_files};

pub use report::Stage01Report;

/// Command-line options of stage 01: where the raw CSVs are and what to do with rows that have a problem.
#[derive(clap::Args, Debug, Clone)]
pub struct Stage01Args {
    /// Raw Kaggle CSVs: a folder (every *.csv, *.csv.gz, *.csv.zst, *.csv.bz2, *.csv.xz under it, also
    /// *.csv.gzip and *.csv.zstd;
    /// other files are listed as not read) or one file, local or gs://.
    #[arg(long, env = "FUNNELPULSE_RAW")]
    pub raw: Option<String>,
    /// Rows with a problem: keep (in bronze, as Spark did, and in bronze_rejects),
    /// quarantine (only in bronze_rejects) or fail (stop at the first).
    #[arg(long, env = "FUNNELPULSE_BAD_ROWS", default_value_t = BadRows::Keep,
          value_parser = clap::builder::PossibleValuesParser::new(BadRows::NAMES).map(|name| name.parse::<BadRows>().expect("a listed name")))]
    pub bad_rows: BadRows,
}

/// Runs stage 01 and commits its four tables, or leaves the lake as it was.
/// `clock`: events later than the clock plus its skew are counted as from
/// the future (and kept, as the original did).
pub async fn run(
    engine: &Engine,
    lake: &Lake,
    raw: &str,
    bad_rows: BadRows,
    clock: &ClockArgs,
) -> funnelpulse_engine::Result<Stage01Report> {
    let progress = StageProgress::start("01");
    progress.step("listing raw files");
    let RawListing { files, not_read } = find_raw_files(engine, raw).await?;
    for skipped in &not_read {
        progress.line(format!("not read: {} ({})", skipped.path, skipped.reason));
    }
    progress.step(format!("checking headers and counting lines of {} raw files", files.len()));
    let mut report = Stage01Report {
        raw_files: files.len(),
        not_read,
        bad_rows,
        future_cutoff: clock.cutoff_now(),
        max_clock_skew: clock.skew_text(),
        ..Default::default()
    };
    // One byte scan per file, all at once.
    let started = Instant::now();
    let counting = files.iter().map(|file| async move {
        let store = engine.ctx.runtime_env().object_store(file.store_url()?)?;
        count_data_lines(store, file).await.with_context(|| format!("reading {}", file.url))
    });
    let mut without_rows = Vec::new();
    for (file, counts) in files.iter().zip(futures::future::try_join_all(counting).await?) {
        report.data_lines += counts.data_lines;
        report.blank_lines += counts.blank_lines;
        if counts.data_lines == 0 {
            // (0-byte files are listed as not read and never counted.)
            without_rows.push(match counts.blank_lines {
                0 => format!("{} holds no data rows (only a header)", file.name),
                _ => format!("{} holds no data rows (only a header and blank lines)", file.name),
            });
        }
    }
    report.checks.push(("raw line count", started.elapsed()));

    let staged = StagedRun::begin(lake).await?;
    let built = build_tables(engine, &staged, files, bad_rows, &mut report, &progress).await;
    // An empty export is a mistake upstream: never a silently empty lake. (Checked after
    // the scan, which refuses a first line that is not the header.)
    let built = built.and_then(|()| {
        for file in &without_rows {
            progress.line(format!("note: {file}: nothing is read from it"));
        }
        funnelpulse_engine::ensure!(
            report.data_lines > 0,
            "no data rows in {raw}: {}; give --raw the files holding the events",
            without_rows.join(", ")
        );
        Ok(())
    });
    progress.step("committing");
    let started = Instant::now();
    staged.commit_or_abandon(built).await?;
    report.checks.push(("commit", started.elapsed()));
    report.elapsed = progress.elapsed();
    progress.finish();
    Ok(report)
}

async fn find_raw_files(engine: &Engine, raw: &str) -> funnelpulse_engine::Result<RawListing> {
    let url = funnelpulse_lake::to_url(raw)?;
    let store = engine.ctx.runtime_env().object_store_registry.get_store(&url)?;
    let listing = list_raw_files(store.as_ref(), &url).await.with_context(|| format!("listing raw files in {raw}"))?;
    if listing.files.is_empty() {
        let seen = match listing.not_read.len() {
            0 => "it is empty or does not exist".to_string(),
            n => format!("{n} other files, e.g. {} ({})", listing.not_read[0].path, listing.not_read[0].reason),
        };
        funnelpulse_engine::bail!("no raw CSV files ({}) in {raw}: {seen}", funnelpulse_rawcsv::discover::READ_ENDINGS);
    }
    Ok(listing)
}

// Semantics: docs/semantics.md#reconciliation-checks
async fn build_tables(
    engine: &Engine,
    staged: &StagedRun,
    files: Vec<RawFile>,
    bad_rows: BadRows,
    report: &mut Stage01Report,
    progress: &StageProgress,
) -> funnelpulse_engine::Result<()> {
    let ctx = &engine.ctx;

    progress.step("finding rows with problems → bronze_rejects, then parsing raw CSV → bronze_events");
    let problems = ctx.read_table(Arc::new(RawEventsTable::new(files.clone(), ScanMode::ProblemsOnly)))?;
    // One slice per raw file: each is parsed and written by its own job.
    let per_file = files
        .iter()
        .map(|file| {
            plans::bronze(
                ctx.read_table(Arc::new(RawEventsTable::new(vec![file.clone()], ScanMode::AllRows)))?,
                bad_rows,
            )
        })
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    // One after the other (run at once, the two scans of the CSV compete for
    // the same cores and the last bronze file finishes later), and with
    // --bad-rows fail bronze is not parsed at all once a problem is found.
    report.timings.push(("bronze_rejects", staged.write(plans::rejects(problems)?, BRONZE_REJECTS).await?));
    let rejects = staged.read(ctx, BRONZE_REJECTS).await?;
    report.problem_rows = one_row_i64(rejects.clone(), vec![count(lit(1))]).await?[0] as u64;
    if bad_rows == BadRows::Fail && report.problem_rows > 0 {
        return Err(first_problem(rejects).await?);
    }
    progress.line(format!("{} rows with problems", report.problem_rows));
    report.timings.push(("bronze_events", staged.write_slices(per_file, BRONZE_EVENTS).await?));

    let started = Instant::now();
    let bronze = staged.read(ctx, BRONZE_EVENTS).await?;
    let from_future = count(when(is_future(Some(report.future_cutoff)), lit(1)).end()?);
    let bronze_counts = one_row_i64(bronze.clone(), vec![count(lit(1)), from_future]).await?;
    (report.bronze_rows, report.future_rows) = (bronze_counts[0] as u64, bronze_counts[1] as u64);
    let quarantined = if bad_rows == BadRows::Quarantine { report.problem_rows } else { 0 };
    check(
        "raw data lines = bronze rows + quarantined rows",
        report.data_lines == report.bronze_rows + quarantined,
        || format!("{} lines, {} bronze rows, {quarantined} quarantined", report.data_lines, report.bronze_rows),
    )?;
    report.checks.push(("bronze count", started.elapsed()));
    progress.line(format!("bronze_events: {} rows", report.bronze_rows));
    if report.future_rows > 0 {
        progress.line(format!(
            "warning: {} rows have an event_time later than {} UTC (the clock plus --max-clock-skew): kept, as the \
             original did; a stream (stage 04) sets such events aside",
            report.future_rows,
            funnelpulse_core::stream::format_micros(report.future_cutoff)
        ));
    }

    progress.step("filtering, de-duplicating → silver_events");
    // Slices of whole days: duplicates share event_time, so never span two slices.
    let started = std::time::Instant::now();
    let mut bronze_slices = Vec::new();
    let silver_slices = engine.slice_count().max(report.bronze_rows.div_ceil(ROWS_PER_SILVER_SLICE) as usize);
    for days in by_days(staged.partitions(BRONZE_EVENTS).await?, silver_slices) {
        bronze_slices.push(staged.read_partitions(ctx, BRONZE_EVENTS, &days).await?);
    }
    // The eligible rows are counted beside the write (a cheap scan of three columns).
    let eligible = async { one_row_i64(plans::silver_eligible(bronze.clone())?, vec![count(lit(1))]).await };
    let slices = bronze_slices.into_iter().map(plans::silver).collect::<datafusion::error::Result<Vec<_>>>()?;
    let write = staged.write_slices(or_all(slices, plans::silver(bronze.clone())?), SILVER_EVENTS);
    let (eligible, _) = futures::try_join!(eligible, write)?;
    let eligible_rows = eligible[0] as u64;
    report.timings.push(("silver_events", started.elapsed()));
    let started = Instant::now();
    let silver = staged.read(ctx, SILVER_EVENTS).await?;
    let is = |kind: &str| count(when(col("event_type").eq(lit(kind.to_string())), lit(1)).end().unwrap());
    let silver_counts =
        one_row_i64(silver.clone(), vec![count(lit(1)), is("view"), is("cart"), is("purchase")]).await?;
    report.silver_rows = silver_counts[0] as u64;
    check(
        "silver rows ≤ silver-eligible bronze rows ≤ bronze rows",
        report.silver_rows <= eligible_rows && eligible_rows <= report.bronze_rows,
        || format!("{} silver, {eligible_rows} eligible, {} bronze", report.silver_rows, report.bronze_rows),
    )?;
    report.duplicates_removed = eligible_rows - report.silver_rows;
    report.checks.push(("silver counts", started.elapsed()));
    progress
        .line(format!("silver_events: {} rows ({} duplicates removed)", report.silver_rows, report.duplicates_removed));

    progress.step("aggregating → gold_funnel_hourly_brand");
    let mut slices = Vec::new();
    for days in by_days(staged.partitions(SILVER_EVENTS).await?, engine.aggregate_slice_count()) {
        slices.push(plans::gold_hourly_brand(staged.read_partitions(ctx, SILVER_EVENTS, &days).await?)?);
    }
    let all = plans::gold_hourly_brand(silver)?;
    report
        .timings
        .push(("gold_funnel_hourly_brand", staged.write_slices(or_all(slices, all), GOLD_FUNNEL_HOURLY_BRAND).await?));
    let started = Instant::now();
    let gold = staged.read(ctx, GOLD_FUNNEL_HOURLY_BRAND).await?;
    let gold_sums =
        one_row_i64(gold, vec![count(lit(1)), sum(col("views")), sum(col("carts")), sum(col("purchases"))]).await?;
    report.gold_rows = gold_sums[0] as u64;
    check("gold views/carts/purchases = silver events of each type", gold_sums[1..] == silver_counts[1..], || {
        format!("gold {:?}, silver {:?}", &gold_sums[1..], &silver_counts[1..])
    })?;
    report.checks.push(("gold sums", started.elapsed()));
    progress.line(format!("gold_funnel_hourly_brand: {} rows", report.gold_rows));
    Ok(())
}

/// Bronze rows one silver job de-duplicates at most (when the days allow):
/// the memory of a job grows with its rows, so more data makes more jobs, not
/// bigger ones. At the default size (8.7M rows) this keeps the slices the
/// engine asks for (8 embedded).
const ROWS_PER_SILVER_SLICE: u64 = 1_100_000;

/// Day partitions grouped into `count` slices.
fn by_days(days: Vec<String>, count: usize) -> Vec<Vec<String>> {
    funnelpulse_engine::tables::slices(&days, count)
}

/// The slices, or the whole plan when there are none (an empty table).
fn or_all(
    slices: Vec<datafusion::prelude::DataFrame>,
    all: datafusion::prelude::DataFrame,
) -> Vec<datafusion::prelude::DataFrame> {
    if slices.is_empty() { vec![all] } else { slices }
}

/// The error for `--bad-rows fail`: the first problem by file and line.
async fn first_problem(
    rejects: datafusion::prelude::DataFrame,
) -> funnelpulse_engine::Result<funnelpulse_engine::Error> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    let first = rejects
        .sort(vec![col("source_file").sort(true, false), col("source_line").sort(true, false)])?
        .limit(0, Some(1))?
        .collect()
        .await?;
    let batch = first.iter().find(|b| b.num_rows() > 0).context("rejects disappeared")?;
    let text =
        |name: &str| batch.column_by_name(name).map(|c| c.as_string::<i32>().value(0).to_string()).unwrap_or_default();
    let line = batch.column_by_name("source_line").map(|c| c.as_primitive::<Int64Type>().value(0)).unwrap_or(0);
    Ok(funnelpulse_engine::plan_error!(
        "bad row in {} line {line}: {} (--bad-rows fail); no table was replaced",
        text("source_file"),
        text("reason")
    ))
}

/// Stage 01 as the runtime runs it: its arguments with the clock's (`--max-clock-skew`).
#[derive(clap::Args, Debug, Clone)]
pub struct Stage01Inputs {
    /// The stage's own options (`--raw`, `--bad-rows`).
    #[command(flatten)]
    pub stage: Stage01Args,
    /// `--max-clock-skew`: the clock that decides which events are from the future.
    #[command(flatten)]
    pub clock: ClockArgs,
}

/// Raw CSV → bronze → silver → gold_funnel_hourly_brand.
pub struct Stage01;

impl funnelpulse_engine::Stage for Stage01 {
    const ID: &'static str = "01";
    const ABOUT: &'static str = "raw CSV → bronze → silver → gold_funnel_hourly_brand";
    type Args = Stage01Inputs;
    type Report = Stage01Report;

    async fn run(engine: &Engine, lake: &Lake, args: &Stage01Inputs) -> funnelpulse_engine::Result<Stage01Report> {
        let raw = args
            .stage
            .raw
            .as_deref()
            .ok_or_else(|| funnelpulse_engine::plan_error!("--raw is required (folder of Kaggle CSVs)"))?;
        run(engine, lake, raw, args.stage.bad_rows, &args.clock).await
    }
}
