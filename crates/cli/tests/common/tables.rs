//! Reading lake tables back with delta-rs and plain DataFusion (no Ballista, no FunnelPulse code).

use std::fmt;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::prelude::{ParquetReadOptions, SessionContext, lit};
use datafusion::scalar::ScalarValue;

use super::reference::{self, BRONZE_COLUMNS, MEASURES};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    I(i64),
    F(f64),
    S(String),
    B(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "∅"),
            Value::I(v) => write!(f, "{v}"),
            Value::F(v) => write!(f, "{v:.6}"),
            Value::S(v) => write!(f, "{v}"),
            Value::B(v) => write!(f, "{v}"),
        }
    }
}

pub type Row = Vec<Value>;

/// A sort key that ignores float noise beyond 6 decimals.
pub fn row_key(row: &Row) -> String {
    row.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("|")
}

pub fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_cached_key(row_key);
    rows
}

/// The active files of the latest version of `<lake>/tables/<table>` as
/// delta-rs resolves them: (absolute path, partition value).
pub async fn delta_files(lake: &Path, table: &str, partition_col: &str) -> Vec<(std::path::PathBuf, Option<String>)> {
    let root = lake.join("tables").join(table);
    let url = url::Url::from_directory_path(&root).unwrap();
    let delta = deltalake_core::DeltaTableBuilder::from_url(url).unwrap().load().await.unwrap();
    let state = delta.snapshot().unwrap();
    let log = state.log_data();
    let files: Vec<_> = log
        .iter()
        .map(|file| {
            let partition = file.partition_values_map().get(partition_col).cloned().flatten();
            (root.join(file.path().as_ref()), partition)
        })
        .collect();
    files
}

/// Registers the latest version of the Delta table `<lake>/tables/<table>` in
/// `ctx` under its name: delta-rs lists its files, plain DataFusion reads
/// them, the partition column (from the log) as text.
pub async fn register_delta(ctx: &SessionContext, lake: &Path, table: &str, partition_col: &str) {
    let mut union: Option<datafusion::prelude::DataFrame> = None;
    for (file, partition) in delta_files(lake, table, partition_col).await {
        let df = ctx.read_parquet(file.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
        let df = df.with_column(partition_col, lit(ScalarValue::Utf8(partition))).unwrap();
        union = Some(match union {
            Some(all) => all.union(df).unwrap(),
            None => df,
        });
    }
    match union {
        Some(union) => ctx.register_table(table, union.into_view()).unwrap(),
        None => {
            // An empty table: its columns from the log.
            let url = url::Url::from_directory_path(lake.join("tables").join(table)).unwrap();
            let delta = deltalake_core::DeltaTableBuilder::from_url(url).unwrap().load().await.unwrap();
            let schema = delta.snapshot().unwrap().snapshot().arrow_schema();
            let fields: Vec<_> = schema
                .fields()
                .iter()
                .map(|f| {
                    let text = datafusion::arrow::datatypes::DataType::Utf8;
                    if f.name() == partition_col { f.as_ref().clone().with_data_type(text) } else { f.as_ref().clone() }
                })
                .collect();
            let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
            let empty = datafusion::datasource::MemTable::try_new(schema, vec![vec![]]).unwrap();
            ctx.register_table(table, std::sync::Arc::new(empty)).unwrap()
        }
    };
}

/// Reads the latest version of the Delta table `<lake>/tables/<table>`
/// (partitioned by `partition_col`): delta-rs lists its files, plain
/// DataFusion reads each, and the partition value comes from the log.
/// Returns its rows with `columns` in that order.
pub async fn read_rows(lake: &Path, table: &str, partition_col: &str, columns: &[&str]) -> Vec<Row> {
    let ctx = SessionContext::new();
    let mut rows = Vec::new();
    for (file, partition) in delta_files(lake, table, partition_col).await {
        let df = ctx.read_parquet(file.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
        let df = df.with_column(partition_col, lit(ScalarValue::Utf8(partition.clone()))).unwrap();
        let batches = df.select_columns(columns).unwrap().collect().await.unwrap();
        for batch in batches {
            for i in 0..batch.num_rows() {
                rows.push(batch.columns().iter().map(|c| value(c.as_ref(), i)).collect());
            }
        }
    }
    rows
}

fn value(array: &dyn Array, i: usize) -> Value {
    if array.is_null(i) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Int64 => Value::I(array.as_primitive::<Int64Type>().value(i)),
        DataType::Float64 => Value::F(array.as_primitive::<Float64Type>().value(i)),
        DataType::Boolean => Value::B(array.as_boolean().value(i)),
        DataType::Utf8 => Value::S(array.as_string::<i32>().value(i).to_string()),
        DataType::Utf8View => Value::S(array.as_string_view().value(i).to_string()),
        _ => {
            let text = datafusion::arrow::compute::cast(&array.slice(i, 1), &DataType::Utf8).unwrap();
            Value::S(text.as_string::<i32>().value(0).to_string())
        }
    }
}

/// Asserts two row sets are equal (floats within 1e-9 relative).
pub fn assert_same_rows(what: &str, actual: Vec<Row>, expected: Vec<Row>) {
    assert_close_rows(what, actual, expected, 1e-9)
}

/// Asserts two row sets are equal, floats within `tolerance` (relative, absolute below 1).
pub fn assert_close_rows(what: &str, actual: Vec<Row>, expected: Vec<Row>, tolerance: f64) {
    let (actual, expected) = (sorted(actual), sorted(expected));
    assert_eq!(actual.len(), expected.len(), "{what}: row counts differ");
    for (a, e) in actual.iter().zip(&expected) {
        let same = a.len() == e.len()
            && a.iter().zip(e).all(|(x, y)| match (x, y) {
                (Value::F(x), Value::F(y)) => (x - y).abs() <= tolerance * x.abs().max(y.abs()).max(1.0),
                _ => x == y,
            });
        assert!(same, "{what}: rows differ\n actual:   {}\n expected: {}", row_key(a), row_key(e));
    }
}

pub fn with_measures(leading: &[&'static str], partition: &'static str) -> Vec<&'static str> {
    leading.iter().copied().chain(MEASURES).chain([partition]).collect()
}

/// The batch tables of stages 01–02: (table, partition column, columns in table order).
pub fn batch_tables() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        ("bronze_events", "event_date", BRONZE_COLUMNS.to_vec()),
        ("silver_events", "event_date", reference::silver_columns()),
        (
            "gold_funnel_hourly_brand",
            "window_date",
            with_measures(&["window_start", "window_end", "brand"], "window_date"),
        ),
        ("gold_funnel_daily_brand", "date", with_measures(&["brand"], "date")),
        ("gold_funnel_daily_category", "date", with_measures(&["category_root"], "date")),
        (
            "gold_funnel_hourly_price_band",
            "window_date",
            with_measures(&["window_start", "window_end", "price_band"], "window_date"),
        ),
    ]
}

/// The first `n` tables of [`batch_tables`] (stage 01 makes the first three).
pub async fn read_first(lake: &Path, n: usize) -> Vec<(&'static str, Vec<Row>)> {
    let mut out = Vec::new();
    for (table, partition, columns) in batch_tables().into_iter().take(n) {
        out.push((table, read_rows(lake, table, partition, &columns).await));
    }
    out
}

/// Rows of `query` in plain DataFusion over the lake's `tables` (name,
/// partition column): not our code path. Values as text, floats with 2 decimals.
pub async fn sql_text(lake: &Path, tables: &[(&str, &str)], query: &str) -> Vec<Vec<String>> {
    let ctx = SessionContext::new();
    for (table, partition) in tables {
        register_delta(&ctx, lake, table, partition).await;
    }
    let batches = ctx.sql(query).await.unwrap().collect().await.unwrap();
    let mut rows = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            rows.push(
                b.columns()
                    .iter()
                    .map(|c| match c.data_type() {
                        _ if c.is_null(i) => "null".to_string(),
                        DataType::Int64 => c.as_primitive::<Int64Type>().value(i).to_string(),
                        DataType::Float64 => format!("{:.2}", c.as_primitive::<Float64Type>().value(i)),
                        _ => {
                            let text = datafusion::arrow::compute::cast(&c.slice(i, 1), &DataType::Utf8).unwrap();
                            text.as_string::<i32>().value(0).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    rows
}
