//! Column names and Arrow schemas of the raw input and of bronze.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

// Semantics: docs/semantics.md#raw-input
/// The Kaggle header, in file order.
pub const RAW_COLUMNS: [&str; 9] = [
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
];

// Semantics: docs/semantics.md#conventions
/// Timestamps are stored as UTC wall-clock microseconds without a zone
/// (Parquet `isAdjustedToUTC=false`), which DuckDB, Polars and Spark read as
/// plain timestamps equal to the text in the CSV.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

/// Typed event columns shared by bronze and silver (without `event_date`).
pub fn event_fields() -> Vec<Field> {
    vec![
        Field::new("event_time", timestamp_type(), true),
        Field::new("event_type", DataType::Utf8, true),
        Field::new("product_id", DataType::Int64, true),
        // 64-bit ids above 2^53: parsed straight to i64, never through f64.
        Field::new("category_id", DataType::Int64, true),
        Field::new("category_code", DataType::Utf8, true),
        Field::new("brand", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
        Field::new("user_id", DataType::Int64, true),
        Field::new("user_session", DataType::Utf8, true),
    ]
}

/// Provenance columns the raw reader adds to each row, so that a problem row
/// can be traced back to its file and line.
pub const SOURCE_FILE: &str = "source_file";
/// 1-based line number in the decompressed file; line 1 is the header.
pub const SOURCE_LINE: &str = "source_line";
/// Every problem of the row, joined by `; `; null for a clean row.
pub const PROBLEM: &str = "problem";
/// The line as read (lossily decoded when not UTF-8); null for a clean row.
pub const RAW_TEXT: &str = "raw_text";

/// Schema produced by the raw CSV reader: typed events, `event_date`,
/// then provenance. `problem` is null for a clean row; `raw_text` is only
/// filled for rows with a problem (it would double the memory otherwise).
pub fn raw_reader_schema() -> SchemaRef {
    let mut fields = event_fields();
    fields.push(Field::new("event_date", DataType::Date32, true));
    fields.push(Field::new(SOURCE_FILE, DataType::Utf8, false));
    fields.push(Field::new(SOURCE_LINE, DataType::Int64, false));
    fields.push(Field::new(PROBLEM, DataType::Utf8, true));
    fields.push(Field::new(RAW_TEXT, DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_reader_schema_starts_with_the_raw_columns_in_order() {
        let schema = raw_reader_schema();
        for (i, name) in RAW_COLUMNS.iter().enumerate() {
            assert_eq!(schema.field(i).name(), name);
        }
        assert_eq!(schema.field(3).data_type(), &DataType::Int64);
    }
}
