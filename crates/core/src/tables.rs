//! The lake's tables: names (as in docs/semantics.md) and partition columns.

use datafusion::arrow::datatypes::DataType;

// Semantics: docs/semantics.md#storage-and-partitioning
/// A table of the lake: `<lake>/tables/<name>/<partition_col>=<value>/*.parquet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// Table name (`bronze_events`, …), also the name of its folder.
    pub name: &'static str,
    /// Hive partition column; always a date (`YYYY-MM-DD`).
    pub partition_col: &'static str,
}

impl TableSpec {
    /// The partition column's real type; it is written as text and cast back on read.
    pub fn partition_type(&self) -> DataType {
        DataType::Date32
    }
}

/// Stage 01: every raw data line as a typed row.
pub const BRONZE_EVENTS: TableSpec = TableSpec { name: "bronze_events", partition_col: "event_date" };
/// Raw rows that had a problem (file, line, reason, raw text), by event date when it could be read.
pub const BRONZE_REJECTS: TableSpec = TableSpec { name: "bronze_rejects", partition_col: "event_date" };
/// Stage 01: bronze rows that pass the silver filter, de-duplicated, with normalised brand and category.
pub const SILVER_EVENTS: TableSpec = TableSpec { name: "silver_events", partition_col: "event_date" };
/// Stage 01: funnel measures per hour window and brand.
pub const GOLD_FUNNEL_HOURLY_BRAND: TableSpec =
    TableSpec { name: "gold_funnel_hourly_brand", partition_col: "window_date" };
/// Stage 02: funnel measures per day and brand.
pub const GOLD_FUNNEL_DAILY_BRAND: TableSpec = TableSpec { name: "gold_funnel_daily_brand", partition_col: "date" };
/// Stage 02: funnel measures per day and category root.
pub const GOLD_FUNNEL_DAILY_CATEGORY: TableSpec =
    TableSpec { name: "gold_funnel_daily_category", partition_col: "date" };
/// Stage 02: funnel measures per hour window and price band.
pub const GOLD_FUNNEL_HOURLY_PRICE_BAND: TableSpec =
    TableSpec { name: "gold_funnel_hourly_price_band", partition_col: "window_date" };

/// Hive's name for a null partition value; DuckDB, Spark and our reader map it back to null.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";
/// Stage 05, classic z-score detector (docs/semantics.md#classic-detector).
pub const GOLD_ANOMALIES_HOURLY_BRAND: TableSpec =
    TableSpec { name: "gold_anomalies_hourly_brand", partition_col: "window_date" };
/// Stage 05, count-aware rate test (FunnelPulse's own, the default for alerts).
pub const GOLD_ANOMALIES_HOURLY_BRAND_V2: TableSpec =
    TableSpec { name: "gold_anomalies_hourly_brand_v2", partition_col: "window_date" };
/// Stage 04: closed hour windows of the streaming funnel (append-only).
pub const GOLD_STREAM_FUNNEL_HOURLY_BRAND: TableSpec =
    TableSpec { name: "gold_stream_funnel_hourly_brand", partition_col: "window_date" };
/// Stage 04: silver events that arrived after their window was closed, with the batch that saw them.
pub const LATE_EVENTS: TableSpec = TableSpec { name: "late_events", partition_col: "event_date" };
/// Stage 04: events later than the clock plus `--max-clock-skew`, kept out of
/// the watermark and the windows, with the batch that saw them and the reason.
pub const FUTURE_EVENTS: TableSpec = TableSpec { name: "future_events", partition_col: "event_date" };
/// Stage 04 with a Kafka source: records that are not events, with their offsets and the reason.
pub const STREAM_DEAD_LETTERS: TableSpec = TableSpec { name: "stream_dead_letters", partition_col: "received_date" };
/// Stage 04's checkpoint: the open windows after a batch (not a lake table).
pub const STREAM_STATE: TableSpec = TableSpec { name: "state", partition_col: "window_date" };
/// Stage 04's checkpoint: a batch's partial aggregates (not a lake table).
pub const STREAM_PARTIALS: TableSpec = TableSpec { name: "partials", partition_col: "window_date" };

/// Every table of the lake (not the checkpoint's), in pipeline order.
pub const LAKE_TABLES: [TableSpec; 13] = [
    BRONZE_REJECTS,
    BRONZE_EVENTS,
    SILVER_EVENTS,
    GOLD_FUNNEL_HOURLY_BRAND,
    GOLD_FUNNEL_DAILY_BRAND,
    GOLD_FUNNEL_DAILY_CATEGORY,
    GOLD_FUNNEL_HOURLY_PRICE_BAND,
    GOLD_ANOMALIES_HOURLY_BRAND,
    GOLD_ANOMALIES_HOURLY_BRAND_V2,
    GOLD_STREAM_FUNNEL_HOURLY_BRAND,
    LATE_EVENTS,
    FUTURE_EVENTS,
    STREAM_DEAD_LETTERS,
];

/// The lake table called `name`.
pub fn lake_table(name: &str) -> Option<TableSpec> {
    LAKE_TABLES.into_iter().find(|t| t.name == name)
}
