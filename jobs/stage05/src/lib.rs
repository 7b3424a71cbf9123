//! Stage 05: conversion anomalies per brand-hour, from `gold_funnel_hourly_brand`.
//!
//! Writes `gold_anomalies_hourly_brand` (the classic detector,
//! docs/semantics.md#classic-detector) and `gold_anomalies_hourly_brand_v2`
//! (a count-aware rate test, docs/semantics.md#rate-test-v2), committed together.
//! [`evaluate`] scores both against planted truth.

pub mod alerts;
pub mod evaluate;

use std::fmt;
use std::time::Duration;

use datafusion::functions_aggregate::expr_fn::{count, max, min};
use datafusion::logical_expr::{Expr, col, lit, when};
use funnelpulse_core::anomaly::classic::{ClassicThresholds, classic_anomalies};
use funnelpulse_core::anomaly::rate_test::{RateTestOptions, rate_test_anomalies};
use funnelpulse_core::tables::{GOLD_ANOMALIES_HOURLY_BRAND, GOLD_ANOMALIES_HOURLY_BRAND_V2, GOLD_FUNNEL_HOURLY_BRAND};
use funnelpulse_engine::Context;
use funnelpulse_engine::tables::read_files;
use funnelpulse_engine::{Engine, StageProgress, StagedRun, check, one_row_i64};
use funnelpulse_lake::{AsOf, Lake};

// Semantics: docs/semantics.md#anomalies-stage-05
/// Command-line options of stage 05: both detectors' thresholds and the alerts.
#[derive(clap::Args, Debug, Clone)]
pub struct Stage05Args {
    /// Classic detector: brand-hours with at least this many views form the baselines.
    #[arg(long, env = "FUNNELPULSE_BASELINE_MIN_VIEWS", default_value_t = 20)]
    pub baseline_min_views: i64,
    /// Classic detector: brand-hours need at least this many views to be flagged.
    #[arg(long, env = "FUNNELPULSE_ANOMALY_MIN_VIEWS", default_value_t = 50)]
    pub anomaly_min_views: i64,
    /// Classic detector: flag when |z| reaches this.
    #[arg(long, env = "FUNNELPULSE_Z_THRESHOLD", default_value_t = 2.0, value_parser = positive)]
    pub z_threshold: f64,
    /// v2 detector: brand-hours with fewer views are not tested.
    #[arg(long, env = "FUNNELPULSE_V2_MIN_VIEWS", default_value_t = 20)]
    pub v2_min_views: i64,
    /// v2 detector: weight, in views, of the brand's all-day rate in its hour-of-day baseline.
    #[arg(long, env = "FUNNELPULSE_V2_PRIOR_VIEWS", default_value_t = 500.0, value_parser = not_negative)]
    pub v2_prior_views: f64,
    /// v2 detector: false discovery rate (flag when the Benjamini–Hochberg q-value is at most this).
    #[arg(long, env = "FUNNELPULSE_V2_FDR", default_value_t = 0.05, value_parser = fraction)]
    pub v2_fdr: f64,
    /// v2 detector: smallest relative gap between observed and expected purchases to flag (0.25 = 25%).
    #[arg(long, env = "FUNNELPULSE_V2_MIN_CHANGE", default_value_t = 0.25, value_parser = not_negative)]
    pub v2_min_change: f64,
    /// Where and how new anomalies are posted once the tables are committed.
    #[command(flatten)]
    pub alerts: alerts::AlertArgs,
}

// Checked while parsing, so that an invalid value names its source (flag, variable or file).
fn number(text: &str) -> Result<f64, String> {
    text.trim().parse::<f64>().map_err(|_| "not a number".to_string())
}

fn positive(text: &str) -> Result<f64, String> {
    number(text).and_then(|v| if v > 0.0 { Ok(v) } else { Err("must be positive".into()) })
}

fn not_negative(text: &str) -> Result<f64, String> {
    number(text).and_then(|v| if v >= 0.0 { Ok(v) } else { Err("must not be negative".into()) })
}

fn fraction(text: &str) -> Result<f64, String> {
    number(text).and_then(|v| if v > 0.0 && v < 1.0 { Ok(v) } else { Err("must be between 0 and 1".into()) })
}

impl Default for Stage05Args {
    fn default() -> Self {
        let (c, v) = (ClassicThresholds::default(), RateTestOptions::default());
        Self {
            baseline_min_views: c.baseline_min_views,
            anomaly_min_views: c.anomaly_min_views,
            z_threshold: c.z_threshold,
            v2_min_views: v.min_views,
            v2_prior_views: v.prior_views,
            v2_fdr: v.fdr,
            v2_min_change: v.min_change,
            alerts: alerts::AlertArgs::default(),
        }
    }
}

impl Stage05Args {
    /// The classic detector's thresholds; an error when `--z-threshold` is not positive.
    pub fn classic(&self) -> funnelpulse_engine::Result<ClassicThresholds> {
        funnelpulse_engine::ensure!(self.z_threshold > 0.0, "--z-threshold must be positive, not {}", self.z_threshold);
        Ok(ClassicThresholds {
            baseline_min_views: self.baseline_min_views,
            anomaly_min_views: self.anomaly_min_views,
            z_threshold: self.z_threshold,
        })
    }

    /// The rate test's options; an error when `--v2-fdr` is not in (0, 1) or another option is negative.
    pub fn rate_test(&self) -> funnelpulse_engine::Result<RateTestOptions> {
        funnelpulse_engine::ensure!(
            self.v2_fdr > 0.0 && self.v2_fdr < 1.0,
            "--v2-fdr must be between 0 and 1, not {}",
            self.v2_fdr
        );
        funnelpulse_engine::ensure!(self.v2_prior_views >= 0.0, "--v2-prior-views must not be negative");
        funnelpulse_engine::ensure!(self.v2_min_change >= 0.0, "--v2-min-change must not be negative");
        Ok(RateTestOptions {
            min_views: self.v2_min_views,
            prior_views: self.v2_prior_views,
            fdr: self.v2_fdr,
            min_change: self.v2_min_change,
        })
    }
}

/// What stage 05 did: the brand-hours examined, the anomalies of each table, the alerts sent.
#[derive(Debug, Default, Clone)]
pub struct Stage05Report {
    /// Rows of gold_funnel_hourly_brand read (the brand-hours examined).
    pub gold_rows: u64,
    /// Per table: name, drops, spikes, time.
    pub tables: Vec<(&'static str, u64, u64, Duration)>,
    /// Wall time of the stage up to its commit (sending alerts not included).
    pub elapsed: Duration,
    /// Set when a webhook is configured.
    pub alerts: Option<alerts::AlertReport>,
}

impl fmt::Display for Stage05Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "stage 05 done in {:.1}s ({} brand-hours examined)", self.elapsed.as_secs_f64(), self.gold_rows)?;
        for (name, drops, spikes, took) in &self.tables {
            writeln!(f, "    {name:<32} {drops:>6} drops {spikes:>6} spikes  ({:.1}s)", took.as_secs_f64())?;
        }
        if let Some(alerts) = &self.alerts {
            writeln!(f, "    {alerts}")?;
        }
        Ok(())
    }
}

/// Runs stage 05 on `gold_funnel_hourly_brand` as of `as_of` (the latest version by default).
pub async fn run(
    engine: &Engine,
    lake: &Lake,
    args: &Stage05Args,
    as_of: &AsOf,
) -> funnelpulse_engine::Result<Stage05Report> {
    let (classic, rate_test) = (args.classic()?, args.rate_test()?);
    let progress = StageProgress::start("05");
    let staged = StagedRun::begin(lake).await?;
    let mut report = Stage05Report::default();
    let input = Input { as_of, classic, rate_test };
    let built = build_tables(engine, lake, &staged, input, &mut report, &progress).await;
    progress.step("committing");
    staged.commit_or_abandon(built).await?;
    report.elapsed = progress.elapsed();
    // Alerts go out only for committed tables.
    if args.alerts.webhook.is_some() {
        progress.step("sending alerts");
        report.alerts = Some(alerts::send_new_alerts(engine, lake, &args.alerts).await?);
    }
    Ok(report)
}

/// What stage 05 reads and how it tests.
struct Input<'a> {
    as_of: &'a AsOf,
    classic: ClassicThresholds,
    rate_test: RateTestOptions,
}

async fn build_tables(
    engine: &Engine,
    lake: &Lake,
    staged: &StagedRun,
    input: Input<'_>,
    report: &mut Stage05Report,
    progress: &StageProgress,
) -> funnelpulse_engine::Result<()> {
    let ctx = &engine.ctx;
    let Input { as_of, classic, rate_test } = input;
    let gold = staged
        .read_as_of(GOLD_FUNNEL_HOURLY_BRAND, as_of)
        .await?
        .with_context(|| format!("no gold_funnel_hourly_brand in {} (run stage 01 first)", lake.url()))?;
    let gold = read_files(ctx, &gold)?;
    report.gold_rows = one_row_i64(gold.clone(), vec![count(lit(1))]).await?[0] as u64;

    // The two detectors read the same gold table and write apart: both at once.
    progress.step(format!(
        "classic z-scores and rate test → {}, {}",
        GOLD_ANOMALIES_HOURLY_BRAND.name, GOLD_ANOMALIES_HOURLY_BRAND_V2.name
    ));
    let classic_table = async {
        let took = staged.write(classic_anomalies(gold.clone(), classic)?, GOLD_ANOMALIES_HOURLY_BRAND).await?;
        let written = staged.read(ctx, GOLD_ANOMALIES_HOURLY_BRAND).await?;
        let [drops, spikes, fewest_views] = type_counts(written, min(col("views"))).await?;
        check(
            "classic anomalies have at least the minimum views",
            drops + spikes == 0 || fewest_views >= classic.anomaly_min_views,
            || format!("a flagged row has {fewest_views} views"),
        )?;
        Ok::<_, funnelpulse_engine::Error>((GOLD_ANOMALIES_HOURLY_BRAND.name, drops as u64, spikes as u64, took))
    };
    let rate_test_table = async {
        let took = staged.write(rate_test_anomalies(gold.clone(), rate_test)?, GOLD_ANOMALIES_HOURLY_BRAND_V2).await?;
        let written = staged.read(ctx, GOLD_ANOMALIES_HOURLY_BRAND_V2).await?;
        // q-values are stored ×1e9 as integers to check them with the i64 helper.
        let [drops, spikes, largest_q] = type_counts(
            written,
            datafusion::logical_expr::cast(
                max(col("q_value")) * lit(1e9),
                datafusion::arrow::datatypes::DataType::Int64,
            ),
        )
        .await?;
        check(
            "v2 anomalies are significant at the chosen false discovery rate",
            drops + spikes == 0 || largest_q as f64 <= rate_test.fdr * 1e9,
            || format!("largest q-value {}", largest_q as f64 / 1e9),
        )?;
        Ok((GOLD_ANOMALIES_HOURLY_BRAND_V2.name, drops as u64, spikes as u64, took))
    };
    let (first, second) = tokio::try_join!(classic_table, rate_test_table)?;
    for (name, drops, spikes, took) in [first, second] {
        progress.line(format!("{name}: {drops} drops, {spikes} spikes"));
        report.tables.push((name, drops, spikes, took));
    }
    Ok(())
}

/// Drops, spikes and one more aggregate of an anomalies table.
async fn type_counts(table: datafusion::prelude::DataFrame, extra: Expr) -> funnelpulse_engine::Result<[i64; 3]> {
    let of_type = |kind: &str| count(when(col("anomaly_type").eq(lit(kind.to_string())), lit(1)).end().unwrap());
    let values = one_row_i64(table, vec![of_type("drop"), of_type("spike"), extra]).await?;
    Ok([values[0], values[1], values[2]])
}

/// Stage 05 as the runtime runs it: its arguments and the version of its input.
#[derive(clap::Args, Debug, Clone)]
pub struct Stage05Inputs {
    /// The stage's own options.
    #[command(flatten)]
    pub stage: Stage05Args,
    /// `--as-of`: which version of gold_funnel_hourly_brand to read.
    #[command(flatten)]
    pub as_of: funnelpulse_engine::AsOfArgs,
}

/// gold_funnel_hourly_brand → the anomaly tables (and alerts).
pub struct Stage05;

impl funnelpulse_engine::Stage for Stage05 {
    const ID: &'static str = "05";
    const ABOUT: &'static str = "gold_funnel_hourly_brand → gold_anomalies_hourly_brand (classic) and _v2 (rate test)";
    type Args = Stage05Inputs;
    type Report = Stage05Report;

    async fn run(engine: &Engine, lake: &Lake, args: &Stage05Inputs) -> funnelpulse_engine::Result<Stage05Report> {
        run(engine, lake, &args.stage, &args.as_of.or_latest()).await
    }
}
