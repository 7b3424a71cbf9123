//! The v2 detector: is this hour's purchase count plausible for its views?
//!
//! For each brand-hour with a brand and enough views:
//! 1. **Baseline rate, leave-one-out.** The brand's purchases per view over
//!    all its *other* hours, and the same for its other hours at this hour of
//!    day, the latter shrunk towards the former by `prior_views` pseudo-views
//!    (a brand with little data at 4 am borrows from its whole day). The hour
//!    under test never enters its own baseline, so an anomaly cannot hide
//!    itself.
//! 2. **Expected purchases** = views × baseline rate (shown to users).
//! 3. **Score**: purchases and views are both counts (conversion can exceed
//!    1: the log is not a strict funnel), so the test conditions on the hour's
//!    purchase + view events `N` and asks whether `k` purchases among them fit
//!    a purchase share of `r/(1+r)` — the textbook conditional test of two
//!    Poisson rates, which does not care how busy the hour was. The score is
//!    the signed root of its likelihood-ratio statistic (close to standard
//!    normal even for small counts), divided by √(dispersion): the brand's
//!    median squared score over hours with ≥ 5 expected purchases, relative to
//!    the χ²₁ median, and never below 1. Real logs are burstier than the model
//!    (one session buys several items); the median ignores the anomalies.
//! 4. **p-value** (two-sided, normal) and **q-value** (Benjamini–Hochberg over
//!    every tested hour): flag when `q ≤ fdr` and the observed purchases differ
//!    from the expected ones by at least `min_change` (a relative effect size:
//!    huge brands make tiny, uninteresting differences significant).
//!
//! Every number a user needs to judge a flag is a column.
//!
//! Semantics: docs/semantics.md#rate-test-v2

use datafusion::arrow::datatypes::DataType;
use datafusion::common::JoinType;
use datafusion::error::Result;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::expr_fn::{median, sum};
use datafusion::functions_aggregate::min_max::min_udaf;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{Expr, ExprFunctionExt, WindowFunctionDefinition, cast, col, lit, when};
use datafusion::prelude::{DataFrame, coalesce, greatest, least, ln, signum, sqrt};

use super::normal::two_sided_p_value_expr;
use super::{hour_of_day, join_back, per_key};
use crate::funnel::MEASURE_COLUMNS;

/// Thresholds of the v2 rate test (`--v2-min-views`, `--v2-prior-views`, `--v2-fdr`, `--v2-min-change`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateTestOptions {
    /// Hours with fewer views are not tested.
    pub min_views: i64,
    /// Weight (in views) of the brand's all-day rate in the hour-of-day baseline.
    pub prior_views: f64,
    /// False discovery rate: flag when the Benjamini–Hochberg q-value is at most this.
    pub fdr: f64,
    /// Smallest relative difference between observed and expected purchases to flag.
    pub min_change: f64,
}

impl Default for RateTestOptions {
    fn default() -> Self {
        Self { min_views: 20, prior_views: 500.0, fdr: 0.05, min_change: 0.25 }
    }
}

/// Columns this detector adds to the gold columns, in table order.
pub const SCORE_COLUMNS: [&str; 11] = [
    "hour_of_day",
    "baseline_views",
    "baseline_hour_views",
    "expected_rate",
    "expected_purchases",
    "observed_to_expected",
    "dispersion",
    "score",
    "p_value",
    "q_value",
    "anomaly_type",
];

/// Median of a χ²₁ variable: the median squared score of a well-modelled brand.
const CHI2_1_MEDIAN: f64 = 0.454_936_423_119_572_8;
/// Hours with fewer expected purchases do not estimate the dispersion (their scores are too discrete).
const DISPERSION_MIN_EXPECTED: f64 = 5.0;

fn f64_of(e: Expr) -> Expr {
    cast(e, DataType::Float64)
}

/// Sums of views and purchases per `keys`, named `<prefix>_views` / `<prefix>_purchases`.
fn totals(rows: DataFrame, keys: &[&str], prefix: &str) -> Result<DataFrame> {
    per_key(
        rows,
        keys,
        vec![
            sum(col("views")).alias(format!("{prefix}_views")),
            sum(col("purchases")).alias(format!("{prefix}_purchases")),
        ],
    )
}

/// `x / y` as doubles, null when `y` is 0.
fn ratio(x: Expr, y: Expr) -> Expr {
    when(y.clone().eq(lit(0i64)), lit(datafusion::scalar::ScalarValue::Float64(None)))
        .otherwise(f64_of(x) / f64_of(y))
        .unwrap()
}

/// `x·ln(x/m)`, 0 when `x` is 0 (its limit).
fn x_log_x_over(x: Expr, m: Expr) -> Expr {
    when(x.clone().eq(lit(0.0)), lit(0.0)).otherwise(x.clone() * ln(x / m)).unwrap()
}

/// Signed root of the likelihood-ratio statistic of `k` purchases among the
/// hour's `k + n` purchase and view events, against a purchase share of
/// `rate / (1 + rate)` (the conditional test of two Poisson rates).
fn binomial_signed_root(k: Expr, n: Expr, rate: Expr) -> Expr {
    let (k, n) = (f64_of(k), f64_of(n));
    let total = k.clone() + n.clone();
    let expected = total.clone() * (rate.clone() / (lit(1.0) + rate));
    let deviance = lit(2.0) * (x_log_x_over(k.clone(), expected.clone()) + x_log_x_over(n, total - expected.clone()));
    signum(k - expected) * sqrt(greatest(vec![lit(0.0), deviance]))
}

/// The tested hours with baselines, expected purchases and raw scores.
fn scored_hours(gold: DataFrame, o: RateTestOptions) -> Result<DataFrame> {
    let rows = gold.filter(col("brand").is_not_null())?.with_column("hour_of_day", hour_of_day())?;
    let per_brand = totals(rows.clone(), &["brand"], "brand")?;
    let per_brand_hour = totals(rows.clone(), &["brand", "hour_of_day"], "brand_hour")?;
    let tested = rows.filter(col("views").gt_eq(lit(o.min_views)))?;
    let tested = join_back(tested, per_brand, &["brand"], JoinType::Inner)?;
    let tested = join_back(tested, per_brand_hour, &["brand", "hour_of_day"], JoinType::Inner)?;

    let other = |total: &str, own: &str| col(total) - col(own);
    let brand_rate = ratio(other("brand_purchases", "purchases"), other("brand_views", "views"));
    // No other view at this hour of day and no prior (`--v2-prior-views 0`): no
    // baseline (null, dropped below), not 0/0 = NaN, which sorts above every number.
    let baseline_weight = f64_of(other("brand_hour_views", "views")) + lit(o.prior_views);
    let expected_rate = when(baseline_weight.clone().eq(lit(0.0)), lit(datafusion::scalar::ScalarValue::Float64(None)))
        .otherwise(
            (f64_of(other("brand_hour_purchases", "purchases")) + lit(o.prior_views) * col("brand_rate"))
                / baseline_weight,
        )?;
    tested
        .with_column("baseline_views", other("brand_views", "views"))?
        .with_column("baseline_hour_views", other("brand_hour_views", "views"))?
        .with_column("brand_rate", brand_rate)?
        .with_column("expected_rate", expected_rate)?
        .with_column("expected_purchases", f64_of(col("views")) * col("expected_rate"))?
        // A brand with no purchase in any other hour gives no baseline to test against.
        .filter(col("expected_purchases").gt(lit(0.0)))?
        .with_column("observed_to_expected", f64_of(col("purchases")) / col("expected_purchases"))?
        .with_column("raw_score", binomial_signed_root(col("purchases"), col("views"), col("expected_rate")))
}

/// Per brand: how much more its scores spread than the model says (at least 1).
fn dispersion(scored: DataFrame) -> Result<DataFrame> {
    scored
        .filter(col("expected_purchases").gt_eq(lit(DISPERSION_MIN_EXPECTED)))?
        .with_column("raw_score_sq", col("raw_score") * col("raw_score"))
        .and_then(|df| per_key(df, &["brand"], vec![median(col("raw_score_sq")).alias("median_sq")]))?
        .with_column("brand_dispersion", greatest(vec![lit(1.0), col("median_sq") / lit(CHI2_1_MEDIAN)]))
}

/// `min(x) OVER (ORDER BY order)` with the default frame (up to the current row and its peers).
fn running_min(x: Expr, order: Vec<datafusion::logical_expr::SortExpr>) -> Result<Expr> {
    Expr::from(WindowFunction::new(WindowFunctionDefinition::AggregateUDF(min_udaf()), vec![x])).order_by(order).build()
}

// Semantics: docs/semantics.md#gold_anomalies_hourly_brand_v2
/// gold_anomalies_hourly_brand_v2: the flagged brand-hours of `gold`
/// (gold_funnel_hourly_brand, last column `window_date`) with the evidence.
pub fn rate_test_anomalies(gold: DataFrame, o: RateTestOptions) -> Result<DataFrame> {
    let scored = scored_hours(gold, o)?;
    let with_dispersion = join_back(scored.clone(), dispersion(scored)?, &["brand"], JoinType::Left)?
        .with_column("dispersion", coalesce(vec![col("brand_dispersion"), lit(1.0)]))?
        .with_column("score", col("raw_score") / sqrt(col("dispersion")))?
        .with_column("p_value", two_sided_p_value_expr(col("score")))?;

    // Benjamini–Hochberg: q(i) = min over ranks j ≥ i of p(j)·m/j. Ties in p
    // are broken by brand and hour so that ranks are deterministic.
    let by_p =
        vec![col("p_value").sort(true, false), col("brand").sort(true, false), col("window_start").sort(true, false)];
    // One window node per ordering: DataFusion plans each node with a single sort.
    let ranked = with_dispersion
        .window(vec![row_number().order_by(by_p).build()?.alias("p_rank")])?
        // count(*) OVER (): the number of tests m.
        .window(vec![
            Expr::from(WindowFunction::new(WindowFunctionDefinition::AggregateUDF(count_udaf()), vec![lit(1)]))
                .alias("tested_hours"),
        ])?
        .with_column("bh_raw", col("p_value") * f64_of(col("tested_hours")) / f64_of(col("p_rank")))?;
    let q = running_min(col("bh_raw"), vec![col("p_rank").sort(false, false)])?;
    let with_q = ranked.window(vec![q.alias("q_min")])?.with_column("q_value", least(vec![lit(1.0), col("q_min")]))?;

    let significant = || col("q_value").lt_eq(lit(o.fdr));
    let anomaly_type = when(significant().and(col("observed_to_expected").lt_eq(lit(1.0 - o.min_change))), lit("drop"))
        .when(significant().and(col("observed_to_expected").gt_eq(lit(1.0 + o.min_change))), lit("spike"))
        .otherwise(cast(lit(datafusion::scalar::ScalarValue::Utf8(None)), DataType::Utf8))?;
    let flagged = with_q.with_column("anomaly_type", anomaly_type)?.filter(col("anomaly_type").is_not_null())?;

    let mut columns: Vec<Expr> = ["window_start", "window_end", "brand"].iter().map(|c| col(*c)).collect();
    columns.extend(MEASURE_COLUMNS.iter().map(|c| col(*c)));
    columns.extend(SCORE_COLUMNS.iter().map(|c| col(*c)));
    columns.push(col("window_date"));
    flagged.select(columns)
}
