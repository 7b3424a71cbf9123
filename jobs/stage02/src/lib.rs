//! Stage 02: from `silver_events`, the daily brand, daily category and hourly
//! price-band funnels, committed together.

use std::fmt;
use std::time::Duration;

use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{col, lit, when};
use funnelpulse_core::TableSpec;
use funnelpulse_core::plans;
use funnelpulse_core::tables::{
    GOLD_FUNNEL_DAILY_BRAND, GOLD_FUNNEL_DAILY_CATEGORY, GOLD_FUNNEL_HOURLY_PRICE_BAND, SILVER_EVENTS,
};
use funnelpulse_engine::Context;
use funnelpulse_engine::tables::read_files;
use funnelpulse_engine::{Engine, StageProgress, StagedRun, check, one_row_i64};
use funnelpulse_lake::{Lake, TableFiles};

/// What stage 02 did: the silver rows read and each table written.
#[derive(Debug, Default, Clone)]
pub struct Stage02Report {
    /// Rows of silver_events read.
    pub silver_rows: u64,
    /// Per table: name, rows written, write time.
    pub tables: Vec<(&'static str, u64, Duration)>,
    /// Wall time of the whole stage, commit included.
    pub elapsed: Duration,
}

impl fmt::Display for Stage02Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(f, "stage 02 done in {secs:.1}s ({:.0} silver rows/s)", self.silver_rows as f64 / secs)?;
        for (name, rows, took) in &self.tables {
            writeln!(f, "    {name:<30} {rows:>9} rows  ({:.1}s)", took.as_secs_f64())?;
        }
        Ok(())
    }
}

type Plan = fn(datafusion::prelude::DataFrame) -> datafusion::error::Result<datafusion::prelude::DataFrame>;

// Semantics: docs/semantics.md#gold_funnel_daily_brand
const TABLES: [(TableSpec, Plan); 3] = [
    (GOLD_FUNNEL_DAILY_BRAND, plans::gold_daily_brand),
    (GOLD_FUNNEL_DAILY_CATEGORY, plans::gold_daily_category),
    (GOLD_FUNNEL_HOURLY_PRICE_BAND, plans::gold_hourly_price_band),
];

/// Runs stage 02 on the latest silver_events and commits its three tables, or leaves the lake as it was.
pub async fn run(engine: &Engine, lake: &Lake) -> funnelpulse_engine::Result<Stage02Report> {
    let progress = StageProgress::start("02");
    let staged = StagedRun::begin(lake).await?;
    let mut report = Stage02Report::default();
    let built = build_tables(engine, &staged, &mut report, &progress).await;
    progress.step("committing");
    staged.commit_or_abandon(built).await?;
    report.elapsed = progress.elapsed();
    Ok(report)
}

async fn build_tables(
    engine: &Engine,
    staged: &StagedRun,
    report: &mut Stage02Report,
    progress: &StageProgress,
) -> funnelpulse_engine::Result<()> {
    let ctx = &engine.ctx;
    let silver_files = staged
        .read_committed(SILVER_EVENTS)
        .await?
        .context("table silver_events does not exist (run stage 01 first)")?;
    let silver = read_files(ctx, &silver_files)?;
    let is = |kind: &str| count(when(col("event_type").eq(lit(kind.to_string())), lit(1)).end().unwrap());
    let silver_counts =
        one_row_i64(silver.clone(), vec![count(lit(1)), is("view"), is("cart"), is("purchase")]).await?;
    report.silver_rows = silver_counts[0] as u64;

    // Every table groups by day or by hour: whole-day slices never split a group.
    let days = silver_files.partitions();
    let day_slices = funnelpulse_engine::tables::slices(&days, engine.aggregate_slice_count());
    progress.step(format!("aggregating → {}", TABLES.map(|(table, _)| table.name).join(", ")));
    // The three tables at once: each is a few small jobs, and their fixed
    // costs (planning, scheduling, commit of the files) overlap.
    let silver_slices = SilverSlices { all: &silver, files: &silver_files, days: &day_slices, counts: &silver_counts };
    let builds = TABLES.map(|(table, plan)| build_table(engine, staged, &silver_slices, table, plan, progress));
    report.tables = futures::future::try_join_all(builds).await?;
    Ok(())
}

/// Silver as the three tables read it: whole, or by slices of days; and
/// its event counts, which every table must reproduce.
struct SilverSlices<'a> {
    all: &'a datafusion::prelude::DataFrame,
    files: &'a TableFiles,
    days: &'a [Vec<String>],
    counts: &'a [i64],
}

/// Writes one table (one job per slice of days) and checks its sums;
/// returns its name, rows and write time for the report.
async fn build_table(
    engine: &Engine,
    staged: &StagedRun,
    silver: &SilverSlices<'_>,
    table: TableSpec,
    plan: Plan,
    progress: &StageProgress,
) -> funnelpulse_engine::Result<(&'static str, u64, Duration)> {
    let ctx = &engine.ctx;
    let mut slices = Vec::new();
    for days in silver.days {
        slices.push(plan(read_files(ctx, &silver.files.only_partitions(days))?)?);
    }
    if slices.is_empty() {
        slices.push(plan(silver.all.clone())?);
    }
    let took = staged.write_slices(slices, table).await?;
    let written = staged.read(ctx, table).await?;
    let sums =
        one_row_i64(written, vec![count(lit(1)), sum(col("views")), sum(col("carts")), sum(col("purchases"))]).await?;
    check(
        &format!("{} views/carts/purchases = silver events of each type", table.name),
        sums[1..] == silver.counts[1..],
        || format!("{:?} vs silver {:?}", &sums[1..], &silver.counts[1..]),
    )?;
    progress.line(format!("{}: {} rows", table.name, sums[0]));
    Ok((table.name, sums[0] as u64, took))
}

/// Silver → the other gold tables.
pub struct Stage02;

impl funnelpulse_engine::Stage for Stage02 {
    const ID: &'static str = "02";
    const ABOUT: &'static str = "silver_events → the other gold tables";
    type Args = funnelpulse_engine::NoArgs;
    type Report = Stage02Report;

    async fn run(
        engine: &Engine,
        lake: &Lake,
        _: &funnelpulse_engine::NoArgs,
    ) -> funnelpulse_engine::Result<Stage02Report> {
        run(engine, lake).await
    }
}
