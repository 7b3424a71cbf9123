//! The streaming hourly brand funnel (stage 04) as plans over one micro-batch.
//!
//! A micro-batch turns its new events into *partial* window aggregates
//! (counts and an exact revenue), adds them to the open windows kept as state,
//! and splits the result at the watermark: closed windows become rows of
//! `gold_stream_funnel_hourly_brand` (exactly the measures and rates of
//! `gold_funnel_hourly_brand`), open ones the next state. Events whose window
//! is already closed are late: they are counted and kept, never added.
//! With de-duplication the state holds the open windows' events instead of
//! their sums (`dedup_open_rows`, `still_open_rows`, `closed_rows_from_events`).
//!
//! Watermarks are microseconds since the epoch (UTC), like `event_time`.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{count, max, sum};
use datafusion::logical_expr::{Expr, cast, col, lit, when};
use datafusion::prelude::{DataFrame, coalesce};
use datafusion::scalar::ScalarValue;

use crate::event_time::is_future;
use crate::funnel::{
    MEASURE_COLUMNS, REVENUE_DECIMAL, funnel_counts, funnel_rates, hour_window_end, hour_window_start,
    purchase_price_exact,
};
use crate::schema::{RAW_COLUMNS, timestamp_type};
use crate::silver::{brand_norm, silver_filter};

pub use crate::funnel::WINDOW_MICROS;

/// Columns of the state (open windows): keys and partial measures.
pub const STATE_COLUMNS: [&str; 6] = ["window_start", "brand", "views", "carts", "purchases", "revenue_exact"];

fn window_start_micros() -> Expr {
    cast(col("window_start"), DataType::Int64)
}

// Semantics: docs/semantics.md#late-events
/// True for rows whose window ended at or before the watermark (late).
/// Nothing is late before the first watermark.
pub fn is_late(watermark: Option<i64>) -> Expr {
    match watermark {
        Some(w) => (window_start_micros() + lit(WINDOW_MICROS)).lt_eq(lit(w)),
        None => lit(false),
    }
}

// Semantics: docs/semantics.md#which-rows-a-batch-counts
/// Partial aggregates of a batch's rows per (window, brand, silver): rows,
/// views, carts, purchases, exact revenue, the latest event time (µs) and
/// the rows from the future (later than `cutoff`, see [`is_future`]).
/// Non-silver rows are kept as their own groups so that the rows of all
/// groups add up to the batch's input rows (a check of the job); rows from
/// the future are not silver here: they count in no window and not in the
/// watermark.
pub fn batch_partials(input: DataFrame, cutoff: Option<i64>) -> Result<DataFrame> {
    let mut measures = vec![count(lit(1i64)).alias("rows")];
    measures.extend(funnel_counts());
    measures.push(
        coalesce(vec![sum(purchase_price_exact()), lit(ScalarValue::Decimal128(Some(0), 38, 10))])
            .alias("revenue_exact"),
    );
    measures.push(max(cast(col("event_time"), DataType::Int64)).alias("max_event_time"));
    measures.push(sum(cast(is_future(cutoff), DataType::Int64)).alias("future_rows"));
    let keys = vec![
        hour_window_start().alias("window_start"),
        cast(brand_norm(col("brand")), DataType::Utf8).alias("brand"),
        coalesce(vec![silver_filter(), lit(false)]).and(!is_future(cutoff)).alias("silver"),
    ];
    let grouped = input.aggregate(keys, measures)?;
    let mut columns: Vec<Expr> = PARTIAL_COLUMNS.iter().map(|c| col(*c)).collect();
    columns.push(cast(col("window_start"), DataType::Date32).alias("window_date"));
    grouped.select(columns)
}

/// Columns of a batch's partial aggregates.
pub const PARTIAL_COLUMNS: [&str; 10] = [
    "window_start",
    "brand",
    "silver",
    "rows",
    "views",
    "carts",
    "purchases",
    "revenue_exact",
    "max_event_time",
    "future_rows",
];

/// Schema of the partials' files (without `window_date`); the state's files
/// have a subset of these columns, so both are read as one table.
pub fn partials_file_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("window_start", timestamp_type(), true),
        Field::new("brand", DataType::Utf8, true),
        Field::new("silver", DataType::Boolean, true),
        Field::new("rows", DataType::Int64, true),
        Field::new("views", DataType::Int64, true),
        Field::new("carts", DataType::Int64, true),
        Field::new("purchases", DataType::Int64, true),
        Field::new("revenue_exact", REVENUE_DECIMAL, true),
        Field::new("max_event_time", DataType::Int64, true),
        Field::new("future_rows", DataType::Int64, true),
    ]))
}

/// What the client reads from a batch's partials: all rows, silver rows,
/// late rows, the latest silver event time, on-time views, carts,
/// purchases, and the rows from the future.
pub fn partials_summary(partials: DataFrame, watermark: Option<i64>) -> Result<DataFrame> {
    let silver = || col("silver").eq(lit(true));
    let late = is_late(watermark);
    let of = |condition: Expr, column: &str| sum(when(condition, col(column)).end().expect("valid case"));
    partials.aggregate(
        vec![],
        vec![
            sum(col("rows")).alias("input_rows"),
            of(silver(), "rows").alias("silver_rows"),
            of(silver().and(late.clone()), "rows").alias("late_rows"),
            max(when(silver(), col("max_event_time")).end()?).alias("max_event_time"),
            of(silver().and(!late.clone()), "views").alias("views"),
            of(silver().and(!late.clone()), "carts").alias("carts"),
            of(silver().and(!late), "purchases").alias("purchases"),
            sum(col("future_rows")).alias("future_rows"),
        ],
    )
}

// Semantics: docs/semantics.md#future_events
/// Rows from the future (see [`is_future`]): the raw columns, the batch that
/// saw them, the limit they passed and the reason, with `event_date` last
/// (the partition column).
pub fn future_rows(input: DataFrame, cutoff: i64, batch_id: u64) -> Result<DataFrame> {
    let reason = format!(
        "event_time later than {} UTC, the clock when the batch was planned plus --max-clock-skew",
        format_micros(cutoff)
    );
    let mut columns: Vec<Expr> = RAW_COLUMNS.iter().map(|c| col(*c)).collect();
    columns.push(lit(batch_id as i64).alias("batch_id"));
    columns.push(lit(ScalarValue::TimestampMicrosecond(Some(cutoff), None)).alias("clock_limit"));
    columns.push(lit(reason).alias("reason"));
    columns.push(cast(col("event_time"), DataType::Date32).alias("event_date"));
    input.filter(is_future(Some(cutoff)))?.select(columns)
}

// Semantics: docs/semantics.md#late_events
/// Late silver rows: the raw columns, the batch that saw them and the
/// watermark they missed, with `event_date` last (the partition column).
pub fn late_rows(input: DataFrame, watermark: Option<i64>, batch_id: u64) -> Result<DataFrame> {
    let mut columns: Vec<Expr> = RAW_COLUMNS.iter().map(|c| col(*c)).collect();
    columns.push(lit(batch_id as i64).alias("batch_id"));
    columns.push(lit(ScalarValue::TimestampMicrosecond(watermark, None)).alias("watermark"));
    columns.push(cast(col("event_time"), DataType::Date32).alias("event_date"));
    input
        .filter(silver_filter())?
        .with_column("window_start", hour_window_start())?
        .filter(is_late(watermark))?
        .select(columns)
}

// Semantics: docs/semantics.md#window-output
/// Open windows after adding a batch: `rows` reads the previous state and
/// the batch's partials as one table (state rows have no `silver` flag);
/// non-silver and late groups are left out.
pub fn merge(rows: DataFrame, watermark: Option<i64>) -> Result<DataFrame> {
    let counted = coalesce(vec![col("silver"), lit(true)]).and(!is_late(watermark));
    let sums = ["views", "carts", "purchases", "revenue_exact"].iter().map(|c| sum(col(*c)).alias(*c)).collect();
    let merged = rows.filter(counted)?.aggregate(vec![col("window_start"), col("brand")], sums)?;
    merged.select(vec![
        cast(col("window_start"), timestamp_type()).alias("window_start"),
        cast(col("brand"), DataType::Utf8).alias("brand"),
        cast(col("views"), DataType::Int64).alias("views"),
        cast(col("carts"), DataType::Int64).alias("carts"),
        cast(col("purchases"), DataType::Int64).alias("purchases"),
        cast(col("revenue_exact"), REVENUE_DECIMAL).alias("revenue_exact"),
    ])
}

// Semantics: docs/semantics.md#de-duplication-within-the-watermark
/// With de-duplication: the open windows' silver rows — the previous
/// state's rows and the batch's on-time rows, read as one table — one per
/// de-duplication key (the same choice as silver), with `window_start`.
/// Duplicates share their event time, so they always meet in one open window.
pub fn dedup_open_rows(rows: DataFrame, watermark: Option<i64>) -> Result<DataFrame> {
    let on_time = rows.filter(silver_filter())?.with_column("window_start", hour_window_start())?;
    let kept = crate::plans::dedup(on_time.filter(!is_late(watermark))?)?;
    let mut columns: Vec<Expr> = RAW_COLUMNS.iter().map(|c| col(*c)).collect();
    columns.push(hour_window_start().alias("window_start"));
    kept.select(columns)
}

/// With de-duplication: rows of windows still open (the next state), raw
/// columns and `window_date` last.
pub fn still_open_rows(rows: DataFrame, watermark: Option<i64>) -> Result<DataFrame> {
    let mut columns: Vec<Expr> = RAW_COLUMNS.iter().map(|c| col(*c)).collect();
    columns.push(cast(col("window_start"), DataType::Date32).alias("window_date"));
    rows.filter(!is_late(watermark))?.select(columns)
}

/// With de-duplication: the windows the watermark closes (all on a flush),
/// aggregated exactly like `gold_funnel_hourly_brand`.
pub fn closed_rows_from_events(rows: DataFrame, watermark: Option<i64>) -> Result<DataFrame> {
    let closed = closed_only(rows, watermark)?;
    crate::plans::gold_hourly_brand(closed.with_column("brand_norm", brand_norm(col("brand")))?)
}

/// Rows of windows the watermark has closed; all rows when it is None (a flush).
fn closed_only(rows: DataFrame, watermark: Option<i64>) -> Result<DataFrame> {
    match watermark {
        Some(w) => rows.filter(is_late(Some(w))),
        None => Ok(rows),
    }
}

/// Windows still open after the batch (they end after the new watermark),
/// with `window_date` last for partitioning.
pub fn still_open(merged: DataFrame, watermark: Option<i64>) -> Result<DataFrame> {
    let open = merged.filter(!is_late(watermark))?;
    let mut columns: Vec<Expr> = STATE_COLUMNS.iter().map(|c| col(*c)).collect();
    columns.push(cast(col("window_start"), DataType::Date32).alias("window_date"));
    open.select(columns)
}

// Semantics: docs/semantics.md#gold_stream_funnel_hourly_brand
/// Windows closed by the watermark (all of them when `watermark` is None:
/// the flush at the end of a bounded run), as rows of the output table.
pub fn closed_rows(merged: DataFrame, watermark: Option<i64>) -> Result<DataFrame> {
    let with_measures = closed_only(merged, watermark)?.select(vec![
        col("window_start"),
        hour_window_end().alias("window_end"),
        col("brand"),
        col("views"),
        col("carts"),
        col("purchases"),
        cast(col("revenue_exact"), DataType::Float64).alias("revenue"),
    ])?;
    let mut columns: Vec<Expr> = vec![col("window_start"), col("window_end"), col("brand")];
    columns.extend(MEASURE_COLUMNS.iter().take(4).map(|c| col(*c)));
    columns.extend(funnel_rates());
    columns.push(cast(col("window_start"), DataType::Date32).alias("window_date"));
    with_measures.select(columns)
}

// Semantics: docs/semantics.md#watermark
/// `max(event_time) − delay`, never behind the previous watermark.
pub fn advance_watermark(previous: Option<i64>, max_event_time: Option<i64>, delay_micros: i64) -> Option<i64> {
    let candidate = max_event_time.map(|t| t - delay_micros);
    match (previous, candidate) {
        (Some(p), Some(c)) => Some(p.max(c)),
        (p, c) => p.or(c),
    }
}

/// `micros` rendered as `YYYY-MM-DD HH:MM:SS` (UTC) for people.
pub fn format_micros(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| micros.to_string())
}

// Semantics: docs/semantics.md#stream-input-stage-03
/// Days of a stream's default range: the last 17 days of the data, as the
/// original job's 2019-10-15 … 31 were of its October.
pub const DEFAULT_STREAM_DAYS: u64 = 17;

/// The days a stream is cut from (stage 03) or replayed from (`kafka replay`):
/// the given dates, the rest from the data (`data_days`, bronze's sorted
/// partition values: the default end is its last dated day). None when the
/// data has no dated day and no end was given.
pub fn stream_date_range(
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
    data_days: &[String],
) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
    let last = data_days.iter().rev().find_map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let end = to.or(last)?;
    let start = from.unwrap_or(end - chrono::Days::new(DEFAULT_STREAM_DAYS - 1));
    // A given start after the data's last day: an empty range, not an inverted one.
    Some((start, if to.is_none() { end.max(start) } else { end }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_only_moves_forward() {
        let hour = WINDOW_MICROS;
        assert_eq!(advance_watermark(None, None, 2 * hour), None);
        assert_eq!(advance_watermark(None, Some(10 * hour), 2 * hour), Some(8 * hour));
        assert_eq!(advance_watermark(Some(9 * hour), Some(10 * hour), 2 * hour), Some(9 * hour));
        assert_eq!(advance_watermark(Some(9 * hour), None, 2 * hour), Some(9 * hour));
    }

    #[test]
    fn times_print_in_utc() {
        assert_eq!(format_micros(1_571_097_600_000_000), "2019-10-15 00:00:00");
    }
}
