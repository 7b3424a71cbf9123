//! Silver rules: which bronze rows are kept, the normalised columns, and the
//! de-duplication key.

use datafusion::logical_expr::{Expr, col, lit};
use datafusion::prelude::{lower, regexp_replace};

// Semantics: docs/semantics.md#silver-filter
/// `price IS NOT NULL AND price > 0 AND event_time IS NOT NULL AND event_type IS NOT NULL`.
pub fn silver_filter() -> Expr {
    col("price")
        .is_not_null()
        .and(col("price").gt(lit(0.0)))
        .and(col("event_time").is_not_null())
        .and(col("event_type").is_not_null())
}

// Semantics: docs/semantics.md#brand-normalisation
/// A brand as funnels group it: lower case (silver's `brand_norm`, the stream's `brand`).
pub fn brand_norm(brand: Expr) -> Expr {
    lower(brand)
}

/// Columns silver adds to bronze, in table order, each with its name.
pub fn silver_derived_columns() -> Vec<Expr> {
    vec![
        brand_norm(col("brand")).alias("brand_norm"),
        category_code_norm(col("category_code")).alias("category_code_norm"),
        col("user_session").is_null().alias("dq_missing_session"),
        col("brand").is_null().alias("dq_missing_brand"),
        col("category_code").is_null().alias("dq_missing_category"),
    ]
}

// Semantics: docs/semantics.md#category-normalisation
/// `regexp_replace(lower(code), '[^a-z0-9.]', '_')`, replacing every match like Spark does.
pub fn category_code_norm(code: Expr) -> Expr {
    regexp_replace(lower(code), lit("[^a-z0-9.]"), lit("_"), Some(lit("g")))
}

// Semantics: docs/semantics.md#de-duplication
/// The de-duplication key; nulls in the key compare equal (GROUP BY semantics).
pub const DEDUP_KEY: [&str; 5] = ["event_time", "user_id", "user_session", "product_id", "event_type"];

/// Columns that may differ inside a duplicate group, in the order that picks
/// the kept row: lowest price, then category_id, brand, category_code (nulls
/// last; see `plans::dedup`).
pub const DEDUP_CARRIED: [&str; 4] = ["price", "category_id", "brand", "category_code"];
