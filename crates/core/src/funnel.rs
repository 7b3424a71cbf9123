//! Funnel measures and rates shared by every gold table, plus the grouping
//! dimensions (hour window, price band, category root).

use datafusion::arrow::datatypes::DataType;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, cast, col, lit, when};
use datafusion::prelude::{coalesce, date_trunc, split_part};

use crate::schema::timestamp_type;

fn is_event(kind: &str) -> Expr {
    col("event_type").eq(lit(kind.to_string()))
}

// Semantics: docs/semantics.md#funnel-measures-and-rates
/// `views`, `carts`, `purchases` (remove_from_cart is not counted) and
/// `revenue` (sum of purchase prices, 0.0 when there are none).
pub fn funnel_measures() -> Vec<Expr> {
    let count_of = |kind: &str, name: &str| count(when(is_event(kind), lit(1i64)).end().unwrap()).alias(name);
    vec![
        count_of("view", "views"),
        count_of("cart", "carts"),
        count_of("purchase", "purchases"),
        revenue().alias("revenue"),
    ]
}

// Semantics: docs/semantics.md#revenue
/// Sum of purchase prices, 0.0 when there are none.
///
/// Summed as a decimal (exact, 10 fractional digits) so that the result does
/// not depend on the order in which partitions are added: the embedded and
/// cluster runs give bit-identical tables.
fn revenue() -> Expr {
    coalesce(vec![cast(sum(purchase_price_exact()), DataType::Float64), lit(0.0f64)])
}

/// The exact type revenue is summed in.
pub const REVENUE_DECIMAL: DataType = DataType::Decimal128(38, 10);

/// A purchase's price as an exact decimal, null for other events.
pub fn purchase_price_exact() -> Expr {
    when(is_event("purchase"), cast(col("price"), REVENUE_DECIMAL)).end().unwrap()
}

/// Counts of each funnel event, as partial measures that can be added up later.
pub fn funnel_counts() -> Vec<Expr> {
    funnel_measures().into_iter().take(3).collect()
}

/// `numerator / denominator` as a double, null when the denominator is 0.
fn rate(numerator: &str, denominator: &str) -> Expr {
    when(
        col(denominator).gt(lit(0i64)),
        cast(col(numerator), DataType::Float64) / cast(col(denominator), DataType::Float64),
    )
    .end()
    .unwrap()
}

// Semantics: docs/semantics.md#funnel-measures-and-rates
/// Rates computed over the measures, in table order.
pub fn funnel_rates() -> Vec<Expr> {
    vec![
        rate("carts", "views").alias("view_to_cart_rate"),
        rate("purchases", "carts").alias("cart_to_purchase_rate"),
        rate("purchases", "views").alias("conversion_rate"),
    ]
}

/// Measure and rate column names in table order.
pub const MEASURE_COLUMNS: [&str; 7] =
    ["views", "carts", "purchases", "revenue", "view_to_cart_rate", "cart_to_purchase_rate", "conversion_rate"];

// Semantics: docs/semantics.md#hour-windows
/// Length of a funnel window: one hour in microseconds (the unit of `event_time`).
pub const WINDOW_MICROS: i64 = 3_600_000_000;

/// Start of the epoch-aligned 1-hour tumbling window holding `event_time`.
pub fn hour_window_start() -> Expr {
    cast(date_trunc(lit("hour"), col("event_time")), timestamp_type())
}

/// `window_end = window_start + 1 hour` over an existing `window_start` column.
pub fn hour_window_end() -> Expr {
    // Add the window's length on the integer representation: exact and cheap.
    cast(cast(col("window_start"), DataType::Int64) + lit(WINDOW_MICROS), timestamp_type())
}

// Semantics: docs/semantics.md#price-bands
/// The price bands' labels in their natural order.
pub const PRICE_BANDS: [&str; 4] = ["<10", "10-30", "30-60", "60_plus"];

/// The first three bands' upper bounds (exclusive; the next band's lower bound).
const PRICE_BAND_BOUNDS: [f64; 3] = [10.0, 30.0, 60.0];

/// The band of `price` (lower bounds inclusive).
pub fn price_band() -> Expr {
    let price = || col("price");
    let [ten, thirty, sixty] = PRICE_BAND_BOUNDS;
    when(price().lt(lit(ten)), lit(PRICE_BANDS[0]))
        .when(price().lt(lit(thirty)), lit(PRICE_BANDS[1]))
        .when(price().lt(lit(sixty)), lit(PRICE_BANDS[2]))
        .otherwise(lit(PRICE_BANDS[3]))
        .unwrap()
}

// Semantics: docs/semantics.md#category-root
/// The part of `category_code_norm` before the first `.`; null stays null.
pub fn category_root() -> Expr {
    split_part(col("category_code_norm"), lit("."), lit(1i64))
}
