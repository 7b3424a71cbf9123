//! Reading and writing lake tables as Parquet through Ballista.

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::logical_expr::{Expr, cast, col, lit, when};
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext};
use funnelpulse_core::TableSpec;
use funnelpulse_core::tables::NULL_PARTITION;

/// The partition value as text (`YYYY-MM-DD`, or Hive's null marker).
///
/// DataFusion's writer would write a null date as `1970-01-01`, so the
/// column is rendered as text first.
pub fn partition_text(date: Expr) -> Expr {
    datafusion::prelude::coalesce(vec![cast(date, DataType::Utf8), lit(NULL_PARTITION)])
}

/// What a write job did.
pub struct Written {
    /// The schema of the files (without the partition column), which a
    /// commit needs for empty tables.
    pub file_schema: SchemaRef,
    /// Rows written, as the job reported them.
    pub rows: u64,
}

/// Writes `df` (whose last column is the table's partition column, a date)
/// as hive-partitioned Parquet under `url`.
pub async fn write_partitioned(df: DataFrame, table: &TableSpec, url: &str) -> anyhow::Result<Written> {
    let pcol = table.partition_col;
    let columns: Vec<Expr> = df
        .schema()
        .fields()
        .iter()
        .map(|f| if f.name() == pcol { partition_text(col(pcol)).alias(pcol) } else { col(f.name()) })
        .collect();
    let df = df.select(columns)?;
    let file_schema = {
        let arrow = df.schema().as_arrow();
        let keep: Vec<usize> = (0..arrow.fields().len()).filter(|&i| arrow.field(i).name() != pcol).collect();
        std::sync::Arc::new(arrow.project(&keep)?)
    };
    let result =
        df.write_parquet(url, DataFrameWriteOptions::new().with_partition_by(vec![pcol.to_string()]), None).await?;
    Ok(Written { file_schema, rows: rows_written(&result)? })
}

/// The row count a write job returns (one `count` column).
fn rows_written(result: &[datafusion::arrow::array::RecordBatch]) -> anyhow::Result<u64> {
    use datafusion::arrow::array::{Array, UInt64Array};
    let mut rows = 0;
    for batch in result.iter().filter(|b| b.num_rows() > 0) {
        let count = batch
            .column_by_name("count")
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
            .ok_or_else(|| anyhow::anyhow!("a write returned no row count: {:?}", batch.schema()))?;
        rows += count.iter().flatten().sum::<u64>();
    }
    Ok(rows)
}

/// Reads a table folder back, with the partition column as a date (nulls restored).
///
/// The column is declared `Utf8` and cast: read as a dictionary it breaks
/// ORDER BY and DISTINCT ON across executors.
pub async fn read_table(ctx: &SessionContext, table: &TableSpec, url: &str) -> anyhow::Result<DataFrame> {
    read_partitions(ctx, table, url, None).await
}

/// Like [`read_table`], limited to the partitions whose values (as written,
/// `YYYY-MM-DD`) are listed; the other partition folders are not read.
pub async fn read_partitions(
    ctx: &SessionContext,
    table: &TableSpec,
    url: &str,
    values: Option<&[String]>,
) -> anyhow::Result<DataFrame> {
    let pcol = table.partition_col;
    let options = ParquetReadOptions::default().table_partition_cols(vec![(pcol.to_string(), DataType::Utf8)]);
    let mut df = ctx.read_parquet(url, options).await?;
    if let Some(values) = values {
        // A filter on the raw partition column prunes folders before any file is opened.
        df = df.filter(col(pcol).in_list(values.iter().map(|v| lit(v.clone())).collect(), false))?;
    }
    let columns: Vec<Expr> = df
        .schema()
        .fields()
        .iter()
        .map(|f| {
            if f.name() == pcol {
                when(col(pcol).eq(lit(NULL_PARTITION)), lit(datafusion::scalar::ScalarValue::Date32(None)))
                    .otherwise(cast(col(pcol), table.partition_type()))
                    .unwrap()
                    .alias(pcol)
            } else {
                col(f.name())
            }
        })
        .collect();
    Ok(df.select(columns)?)
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
pub async fn count_rows(df: DataFrame) -> anyhow::Result<u64> {
    Ok(df.count().await? as u64)
}
