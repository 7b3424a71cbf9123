//! Reading and writing lake tables through Ballista: jobs write Parquet
//! files, readers read the files of one version (see [`crate::files_table`]).

use crate::error::Context;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::logical_expr::{Expr, cast, col, lit};
use datafusion::prelude::{DataFrame, SessionContext};
use funnelpulse_core::TableSpec;
use funnelpulse_core::tables::NULL_PARTITION;
use funnelpulse_lake::{AsOf, Lake, TableFiles};

// Semantics: docs/semantics.md#storage-and-partitioning
/// The partition value as text (`YYYY-MM-DD`, or Hive's null marker).
///
/// DataFusion's writer would write a null date as `1970-01-01`, so the
/// column is rendered as text first.
pub fn partition_text(date: Expr) -> Expr {
    datafusion::prelude::coalesce(vec![cast(date, DataType::Utf8), lit(NULL_PARTITION)])
}

/// What a write job did.
pub struct Written {
    /// The table's columns: the files' columns, then the partition column
    /// (a date), as readers and the Delta log see them.
    pub table_schema: SchemaRef,
    /// Rows written, as the job reported them.
    pub rows: u64,
}

/// Writes `df` (whose last column is the table's partition column, a date)
/// as hive-partitioned Parquet under `url`.
pub async fn write_partitioned(df: DataFrame, table: &TableSpec, url: &str) -> crate::Result<Written> {
    let pcol = table.partition_col;
    let columns: Vec<Expr> = df
        .schema()
        .fields()
        .iter()
        .map(|f| if f.name() == pcol { partition_text(col(pcol)).alias(pcol) } else { col(f.name()) })
        .collect();
    let df = df.select(columns)?;
    let table_schema = {
        let arrow = df.schema().as_arrow();
        let mut fields: Vec<Field> =
            arrow.fields().iter().filter(|f| f.name() != pcol).map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(pcol, table.partition_type(), true));
        std::sync::Arc::new(Schema::new(fields))
    };
    let options = DataFrameWriteOptions::new().with_partition_by(vec![pcol.to_string()]);
    let result = df.write_parquet(url, options, Some(crate::cluster::parquet_writer_options())).await?;
    Ok(Written { table_schema, rows: rows_written(&result)? })
}

/// The row count a write job returns (one `count` column).
fn rows_written(result: &[datafusion::arrow::array::RecordBatch]) -> crate::Result<u64> {
    use datafusion::arrow::array::{Array, UInt64Array};
    let mut rows = 0;
    for batch in result.iter().filter(|b| b.num_rows() > 0) {
        let count = batch
            .column_by_name("count")
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
            .ok_or_else(|| crate::Error::plan(format!("a write returned no row count: {:?}", batch.schema())))?;
        rows += count.iter().flatten().sum::<u64>();
    }
    Ok(rows)
}

/// Reads exactly `files` (a committed version, or a run's files), with the
/// partition column as a date (the null partition as null).
pub fn read_files(ctx: &SessionContext, files: &TableFiles) -> crate::Result<DataFrame> {
    Ok(ctx.read_table(std::sync::Arc::new(crate::files_table::FilesTable::new(files)?))?)
}

/// Reads the latest committed version of `table`; fails with `hint` when the
/// table does not exist.
pub async fn read_table(ctx: &SessionContext, lake: &Lake, table: &TableSpec, hint: &str) -> crate::Result<DataFrame> {
    let files = lake.snapshot(table, &AsOf::Latest).await?;
    let files = files.with_context(|| format!("table {} does not exist in {} ({hint})", table.name, lake.url()))?;
    read_files(ctx, &files)
}

/// The same plan, run by the cluster as a single task: read, aggregate and
/// write in one pipeline, with no shuffle between them.
///
/// For a table written in slices, the slices already give the parallelism;
/// left to themselves, Ballista would split each slice's aggregation into
/// partitions and write every row twice to shuffle files (to repartition by
/// the group keys, then to gather them for the single-task Parquet write).
/// The job takes its settings from the plan's session, so only this plan
/// changes.
pub fn as_one_task(df: DataFrame) -> DataFrame {
    let (state, plan) = df.into_parts();
    let mut config = state.config().clone();
    config.options_mut().execution.target_partitions = 1;
    let state = datafusion::execution::SessionStateBuilder::new_from_existing(state).with_config(config).build();
    DataFrame::new(state, plan)
}

/// Splits sorted partition values into at most `n` contiguous, non-empty slices.
pub fn slices(values: &[String], n: usize) -> Vec<Vec<String>> {
    if values.is_empty() {
        return Vec::new();
    }
    let size = values.len().div_ceil(n.max(1));
    values.chunks(size).map(|c| c.to_vec()).collect()
}

/// Number of rows of a plan, counted by the engine.
pub async fn count_rows(df: DataFrame) -> crate::Result<u64> {
    Ok(df.count().await? as u64)
}
