//! The pipeline's logical plans, as functions from DataFrame to DataFrame.
//!
//! Each function is one table of the semantics (docs/semantics.md); stage crates chain
//! them and decide where the results are written.

use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::{Expr, SortExpr, cast, col};
use datafusion::prelude::DataFrame;

use crate::funnel::{
    MEASURE_COLUMNS, category_root, funnel_measures, funnel_rates, hour_window_end, hour_window_start, price_band,
};
use crate::keep_first::{KEPT_FIELDS, keep_first};
use crate::schema::{PROBLEM, RAW_COLUMNS, RAW_TEXT, SOURCE_FILE, SOURCE_LINE};
use crate::silver::{DEDUP_CARRIED, DEDUP_KEY, silver_derived_columns, silver_filter};

// Semantics: docs/semantics.md#bad-rows
/// What happens to raw rows that had a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum BadRows {
    /// Keep them in bronze the way Spark did (untypable fields null) and list them in `bronze_rejects`.
    #[default]
    Keep,
    /// Leave them out of bronze; they are only in `bronze_rejects`.
    Quarantine,
    /// Stop at the first one, naming its file and line.
    Fail,
}

impl BadRows {
    /// Every choice, by the name the command line and settings use.
    pub const NAMES: [&str; 3] = ["keep", "quarantine", "fail"];
}

impl std::str::FromStr for BadRows {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "keep" => Ok(Self::Keep),
            "quarantine" => Ok(Self::Quarantine),
            "fail" => Ok(Self::Fail),
            _ => Err(format!("{text:?} is not one of {}", Self::NAMES.join(", "))),
        }
    }
}

impl std::fmt::Display for BadRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::Keep => "keep",
            Self::Quarantine => "quarantine",
            Self::Fail => "fail",
        };
        f.write_str(name)
    }
}

fn cols(names: &[&str]) -> Vec<Expr> {
    names.iter().map(|n| col(*n)).collect()
}

// Semantics: docs/semantics.md#bronze_events
/// bronze_events: the typed raw columns plus `event_date`.
pub fn bronze(raw: DataFrame, bad_rows: BadRows) -> Result<DataFrame> {
    let raw = match bad_rows {
        BadRows::Quarantine => raw.filter(col(PROBLEM).is_null())?,
        BadRows::Keep | BadRows::Fail => raw,
    };
    let mut columns = cols(&RAW_COLUMNS);
    columns.push(col("event_date"));
    raw.select(columns)
}

// Semantics: docs/semantics.md#bronze_rejects
/// bronze_rejects: where each problem row came from, what was wrong, and its text.
pub fn rejects(problem_rows: DataFrame) -> Result<DataFrame> {
    problem_rows.select(vec![
        col(SOURCE_FILE),
        col(SOURCE_LINE),
        col(PROBLEM).alias("reason"),
        col(RAW_TEXT),
        col("event_date"),
    ])
}

// Semantics: docs/semantics.md#silver_events
/// silver_events: filtered, de-duplicated on the key, normalised.
pub fn silver(bronze: DataFrame) -> Result<DataFrame> {
    with_silver_columns(dedup(silver_eligible(bronze)?)?)
}

// Semantics: docs/semantics.md#de-duplication
/// One row per de-duplication key: the row that sorts first by price, then
/// category_id, brand, category_code (ascending, nulls last). Rows equal in
/// all of these are identical, so the choice never depends on input order.
/// The key and carried columns (the raw columns, in another order).
pub fn dedup(rows: DataFrame) -> Result<DataFrame> {
    let [price, category_id, brand, category_code] = DEDUP_CARRIED.map(col);
    let kept = keep_first(price, category_id, brand, category_code).alias("kept");
    let grouped = rows.aggregate(cols(&DEDUP_KEY), vec![kept])?;
    let mut columns = cols(&DEDUP_KEY);
    columns.extend(KEPT_FIELDS.iter().map(|f| get_field(col("kept"), *f).alias(*f)));
    grouped.select(columns)
}

// Semantics: docs/semantics.md#stream-input-stage-03
/// The order events are replayed in (stream files, Kafka): event time, then
/// enough columns to make it total, so that every replay is the same.
pub fn replay_order() -> Vec<SortExpr> {
    ["event_time", "user_id", "user_session", "product_id", "event_type", "price"]
        .iter()
        .map(|c| col(*c).sort(true, true))
        .collect()
}

fn with_silver_columns(deduped: DataFrame) -> Result<DataFrame> {
    let mut columns = cols(&RAW_COLUMNS);
    columns.extend(silver_derived_columns());
    columns.push(cast(col("event_time"), DataType::Date32).alias("event_date"));
    deduped.select(columns)
}

/// The bronze rows silver is made from (before de-duplication); counted
/// apart from silver, they tell how many duplicates were removed.
pub fn silver_eligible(bronze: DataFrame) -> Result<DataFrame> {
    bronze.filter(silver_filter())
}

/// Groups by `dims` (already aliased), adds measures and rates, and orders
/// the columns: `leading` dims, measures, rates, then `partition`.
fn funnel_table(df: DataFrame, dims: Vec<Expr>, leading: Vec<Expr>, partition: Expr) -> Result<DataFrame> {
    let grouped = df.aggregate(dims, funnel_measures())?;
    let with_rates = grouped.with_columns_from(funnel_rates())?;
    let mut columns = leading;
    columns.extend(cols(&MEASURE_COLUMNS));
    columns.push(partition);
    with_rates.select(columns)
}

/// Columns of an hour-window table: start, end (and later `window_date`).
fn window_columns() -> Vec<Expr> {
    vec![col("window_start"), hour_window_end().alias("window_end")]
}

fn window_date() -> Expr {
    cast(col("window_start"), DataType::Date32).alias("window_date")
}

// Semantics: docs/semantics.md#gold_funnel_hourly_brand
/// gold_funnel_hourly_brand: by hour window and `brand_norm` (null brand is a group).
pub fn gold_hourly_brand(silver: DataFrame) -> Result<DataFrame> {
    let mut leading = window_columns();
    leading.push(col("brand"));
    funnel_table(
        silver,
        vec![hour_window_start().alias("window_start"), col("brand_norm").alias("brand")],
        leading,
        window_date(),
    )
}

// Semantics: docs/semantics.md#gold_funnel_daily_brand
/// gold_funnel_daily_brand: by `event_date` and brand.
pub fn gold_daily_brand(silver: DataFrame) -> Result<DataFrame> {
    funnel_table(
        silver,
        vec![col("event_date").alias("date"), col("brand_norm").alias("brand")],
        vec![col("brand")],
        col("date"),
    )
}

// Semantics: docs/semantics.md#gold_funnel_daily_category
/// gold_funnel_daily_category: by `event_date` and category root.
pub fn gold_daily_category(silver: DataFrame) -> Result<DataFrame> {
    funnel_table(
        silver,
        vec![col("event_date").alias("date"), category_root().alias("category_root")],
        vec![col("category_root")],
        col("date"),
    )
}

// Semantics: docs/semantics.md#gold_funnel_hourly_price_band
/// gold_funnel_hourly_price_band: by hour window and price band.
pub fn gold_hourly_price_band(silver: DataFrame) -> Result<DataFrame> {
    let mut leading = window_columns();
    leading.push(col("price_band"));
    funnel_table(
        silver,
        vec![hour_window_start().alias("window_start"), price_band().alias("price_band")],
        leading,
        window_date(),
    )
}

trait WithColumns: Sized {
    fn with_columns_from(self, exprs: Vec<Expr>) -> Result<Self>;
}

impl WithColumns for DataFrame {
    /// Adds each aliased expression as a column.
    fn with_columns_from(self, exprs: Vec<Expr>) -> Result<Self> {
        exprs.into_iter().try_fold(self, |df, expr| {
            let name = expr.schema_name().to_string();
            let (inner, name) = match expr {
                Expr::Alias(alias) => (*alias.expr, alias.name),
                other => (other, name),
            };
            df.with_column(&name, inner)
        })
    }
}
