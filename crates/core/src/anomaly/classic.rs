//! The classic detector: z-scores of `conversion_rate` against the brand's and
//! the brand-hour-of-day's mean and sample standard deviation.
//!
//! Semantics: docs/semantics.md#classic-detector

use datafusion::arrow::datatypes::DataType;
use datafusion::common::JoinType;
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{avg, stddev};
use datafusion::logical_expr::{Expr, cast, col, lit, when};
use datafusion::prelude::DataFrame;

use super::{hour_of_day, join_back, per_key};
use crate::funnel::MEASURE_COLUMNS;

/// The thresholds of the classic detector (the original's defaults, docs/semantics.md#classic-detector).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassicThresholds {
    /// Rows that enter the baselines: `views >= baseline_min_views` (and a brand).
    pub baseline_min_views: i64,
    /// Rows that can be flagged: `views >= anomaly_min_views`.
    pub anomaly_min_views: i64,
    /// Flag when `|z| >= z_threshold`.
    pub z_threshold: f64,
}

impl Default for ClassicThresholds {
    fn default() -> Self {
        Self { baseline_min_views: 20, anomaly_min_views: 50, z_threshold: 2.0 }
    }
}

/// Columns this detector adds to the gold columns, in table order.
pub const SCORE_COLUMNS: [&str; 10] = [
    "hour_of_day",
    "conv_mean_brand",
    "conv_std_brand",
    "conv_mean_brand_hour",
    "conv_std_brand_hour",
    "z_brand",
    "z_brand_hour",
    "is_drop_anomaly",
    "is_spike_anomaly",
    "anomaly_type",
];

/// Mean and sample standard deviation of `conversion_rate` per `keys`,
/// named `conv_mean_<suffix>` / `conv_std_<suffix>`.
fn baseline(base: DataFrame, keys: &[&str], suffix: &str) -> Result<DataFrame> {
    per_key(
        base,
        keys,
        vec![
            avg(col("conversion_rate")).alias(format!("conv_mean_{suffix}")),
            stddev(col("conversion_rate")).alias(format!("conv_std_{suffix}")),
        ],
    )
}

/// `(conversion_rate − mean) / std`, and 0.0 when the std is null or 0.
fn z_score(suffix: &str) -> Expr {
    let std = col(format!("conv_std_{suffix}"));
    when(std.clone().is_null().or(std.clone().eq(lit(0.0))), lit(0.0))
        .otherwise((col("conversion_rate") - col(format!("conv_mean_{suffix}"))) / std)
        .unwrap()
}

// Semantics: docs/semantics.md#gold_anomalies_hourly_brand
/// gold_anomalies_hourly_brand: the flagged rows of `gold` (gold_funnel_hourly_brand,
/// whose last column is `window_date`) with their baselines and z-scores.
pub fn classic_anomalies(gold: DataFrame, t: ClassicThresholds) -> Result<DataFrame> {
    let base = gold
        .filter(col("views").gt_eq(lit(t.baseline_min_views)).and(col("brand").is_not_null()))?
        .with_column("hour_of_day", hour_of_day())?;
    let per_brand = baseline(base.clone(), &["brand"], "brand")?;
    let per_brand_hour = baseline(base.clone(), &["brand", "hour_of_day"], "brand_hour")?;
    let scored = join_back(base, per_brand, &["brand"], JoinType::Inner)?;
    let scored = join_back(scored, per_brand_hour, &["brand", "hour_of_day"], JoinType::Inner)?
        .with_column("z_brand", z_score("brand"))?
        .with_column("z_brand_hour", z_score("brand_hour"))?;

    let enough_views = || col("views").gt_eq(lit(t.anomaly_min_views));
    let z = t.z_threshold;
    let is_drop = enough_views().and(col("z_brand").lt_eq(lit(-z)).or(col("z_brand_hour").lt_eq(lit(-z))));
    let is_spike = enough_views().and(col("z_brand").gt_eq(lit(z)).or(col("z_brand_hour").gt_eq(lit(z))));
    let flagged = scored
        .with_column("is_drop_anomaly", is_drop)?
        .with_column("is_spike_anomaly", is_spike)?
        .with_column(
            "anomaly_type",
            when(col("is_drop_anomaly"), lit("drop"))
                .when(col("is_spike_anomaly"), lit("spike"))
                .otherwise(cast(lit(datafusion::scalar::ScalarValue::Utf8(None)), DataType::Utf8))?,
        )?
        .filter(col("anomaly_type").is_not_null())?;

    let mut columns: Vec<Expr> = ["window_start", "window_end", "brand"].iter().map(|c| col(*c)).collect();
    columns.extend(MEASURE_COLUMNS.iter().map(|c| col(*c)));
    columns.extend(SCORE_COLUMNS.iter().map(|c| col(*c)));
    columns.push(col("window_date"));
    flagged.select(columns)
}
