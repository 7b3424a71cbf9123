//! Stage 05: conversion anomalies on `gold_funnel_hourly_brand`.
//!
//! - [`classic`]: the original z-score detector, exactly as the original ran it
//!   (docs/semantics.md#classic-detector) → `gold_anomalies_hourly_brand`.
//! - [`rate_test`]: a count-aware test of each hour's purchases against the
//!   brand's own leave-one-out, hour-of-day baseline →
//!   `gold_anomalies_hourly_brand_v2`.

pub mod classic;
pub mod normal;
pub mod rate_test;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::JoinType;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, cast, col, lit};
use datafusion::prelude::{DataFrame, date_part};

// Semantics: docs/semantics.md#anomalies-stage-05
/// `hour(window_start)` as an integer 0–23 (UTC), like Spark's `hour()`.
pub fn hour_of_day() -> Expr {
    cast(date_part(lit("hour"), col("window_start")), DataType::Int32)
}

fn stats_key(key: &str) -> String {
    format!("stats_{key}")
}

/// `aggregates` per `keys`, with the keys renamed `stats_<key>` so that the
/// result can be joined back onto the rows it came from.
fn per_key(rows: DataFrame, keys: &[&str], aggregates: Vec<Expr>) -> Result<DataFrame> {
    let names: Vec<String> = aggregates.iter().map(|a| a.schema_name().to_string()).collect();
    let grouped = rows.aggregate(keys.iter().map(|k| col(*k)).collect(), aggregates)?;
    let mut renamed: Vec<Expr> = keys.iter().map(|k| col(*k).alias(stats_key(k))).collect();
    renamed.extend(names.iter().map(|n| col(n.as_str())));
    grouped.select(renamed)
}

/// Joins [`per_key`] statistics back onto `rows` and drops the renamed keys.
fn join_back(rows: DataFrame, stats: DataFrame, keys: &[&str], how: JoinType) -> Result<DataFrame> {
    let right: Vec<String> = keys.iter().map(|k| stats_key(k)).collect();
    let right: Vec<&str> = right.iter().map(String::as_str).collect();
    rows.join(stats, how, keys, &right, None)?.drop_columns(&right)
}
