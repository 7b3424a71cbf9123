//! The sink: the stream's output tables in the lake.
//!
//! A batch stages its files in each table's run folder
//! (`stream-<checkpoint id>-b<batch>`), its commit record lists them, and
//! [`finish_commit`] appends them — one Delta commit per table that carries
//! the batch id as the stream's `txn` version, so an append done twice (a
//! restart between the record and the appends) lands once.

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{DataFrame, SessionContext};
use funnelpulse_core::TableSpec;
use funnelpulse_core::stream::{closed_rows, future_rows, late_rows, merge, partials_file_schema};
use funnelpulse_core::tables::{FUTURE_EVENTS, GOLD_STREAM_FUNNEL_HOURLY_BRAND, LATE_EVENTS, STREAM_DEAD_LETTERS};
use funnelpulse_engine::Context;
use funnelpulse_lake::{DataFile, Lake};

use crate::checkpoint::{Checkpoint, Commit, Metadata};
use crate::source::input_schema;

/// The stream's output tables (a stream with a file source writes no dead letters).
pub const OUTPUT_TABLES: [TableSpec; 4] =
    [GOLD_STREAM_FUNNEL_HOURLY_BRAND, LATE_EVENTS, FUTURE_EVENTS, STREAM_DEAD_LETTERS];

/// The output tables of a stream; `dead_letters`: its source turns records away (Kafka).
pub fn output_tables(dead_letters: bool) -> Vec<TableSpec> {
    OUTPUT_TABLES.into_iter().filter(|t| dead_letters || t.name != STREAM_DEAD_LETTERS.name).collect()
}

/// The run of a batch, which names its files' folder in each output table:
/// `stream-<checkpoint id>-b<batch>`.
pub fn staging_run(metadata: &Metadata, batch_id: u64) -> String {
    format!("stream-{}-b{batch_id:06}", metadata.id)
}

/// Removes what an earlier attempt of the batch staged.
pub async fn discard_staged(lake: &Lake, run: &str) -> funnelpulse_engine::Result<()> {
    for table in OUTPUT_TABLES {
        lake.discard_run_files(run, &table).await?;
    }
    Ok(())
}

/// The files the batch staged, per table, for its commit record.
pub async fn staged_outputs(lake: &Lake, run: &str) -> funnelpulse_engine::Result<Vec<(String, Vec<DataFile>)>> {
    let mut outputs = Vec::new();
    for table in OUTPUT_TABLES {
        let files = lake.run_data_files(run, &table).await?;
        if !files.is_empty() {
            outputs.push((table.name.to_string(), files));
        }
    }
    Ok(outputs)
}

/// Applies a commit record: appends its files to the tables, then removes
/// what the batch no longer needs. Idempotent (a restart calls it again):
/// each append carries the batch id as the stream's Delta `txn` version, and
/// a table that already holds the batch is left alone.
pub async fn finish_commit(
    lake: &Lake,
    checkpoint: &Checkpoint,
    metadata: &Metadata,
    commit: &Commit,
) -> funnelpulse_engine::Result<()> {
    for (name, files) in &commit.outputs {
        let table =
            OUTPUT_TABLES.into_iter().find(|t| t.name == name).with_context(|| format!("unknown table {name}"))?;
        lake.commit_append(&table, files.clone(), &metadata.id, commit.batch_id as i64)
            .await
            .with_context(|| format!("committing batch {}", commit.batch_id))?;
        crate::batch::pause(&format!("after-append:{name}"), commit.batch_id);
    }
    crate::batch::pause("after-appends", commit.batch_id);
    checkpoint.prune_batches(commit.state_batch).await?;
    checkpoint.prune_inputs(commit.batch_id).await?;
    Ok(())
}

/// A new stream's tables exist (empty) before the first window closes.
pub async fn create_empty_tables(
    lake: &Lake,
    local: &SessionContext,
    dead_letters: bool,
) -> funnelpulse_engine::Result<()> {
    for (table, schema) in output_table_schemas(local, dead_letters)? {
        lake.ensure_table(&table, schema).await?;
    }
    Ok(())
}

/// `--reset-stream`: the output tables are emptied (a new version without
/// rows; the earlier ones stay readable by version until `funnelpulse lake vacuum`).
pub async fn empty_tables(lake: &Lake) -> funnelpulse_engine::Result<()> {
    let run = funnelpulse_lake::new_run_id();
    for table in OUTPUT_TABLES {
        lake.truncate(&table, &format!("reset-{run}")).await?;
    }
    Ok(())
}

/// Columns of the output tables (the partition column last, a date), for
/// the empty tables a new stream starts with; `dead_letters`: with the
/// dead-letter table (sources that turn records away).
pub fn output_table_schemas(
    local: &SessionContext,
    dead_letters: bool,
) -> funnelpulse_engine::Result<Vec<(TableSpec, SchemaRef)>> {
    let no_windows = local.read_batch(RecordBatch::new_empty(partials_file_schema()))?;
    let closed = closed_rows(merge(no_windows, None)?, None)?;
    let late = late_rows(local.read_batch(RecordBatch::new_empty(input_schema()))?, None, 0)?;
    let future = future_rows(local.read_batch(RecordBatch::new_empty(input_schema()))?, 0, 0)?;
    let mut schemas = vec![
        (GOLD_STREAM_FUNNEL_HOURLY_BRAND, date_partitioned(&closed, GOLD_STREAM_FUNNEL_HOURLY_BRAND.partition_col)),
        (LATE_EVENTS, date_partitioned(&late, LATE_EVENTS.partition_col)),
        (FUTURE_EVENTS, date_partitioned(&future, FUTURE_EVENTS.partition_col)),
    ];
    if dead_letters {
        let letters = local.read_batch(RecordBatch::new_empty(funnelpulse_kafka::decode::dead_letter_schema()))?;
        schemas.push((STREAM_DEAD_LETTERS, date_partitioned(&letters, STREAM_DEAD_LETTERS.partition_col)));
    }
    Ok(schemas)
}

/// `df`'s columns with the partition column `pcol` moved last, as a date.
fn date_partitioned(df: &DataFrame, pcol: &str) -> SchemaRef {
    let arrow = df.schema().as_arrow();
    let mut fields: Vec<Field> =
        arrow.fields().iter().filter(|f| f.name() != pcol).map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(pcol, DataType::Date32, true));
    std::sync::Arc::new(Schema::new(fields))
}
