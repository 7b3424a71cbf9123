//! A table write cuts its Parquet files into row groups of at most 131,072
//! rows. A write task keeps one writer open per partition value (a bronze job:
//! one per day of its raw file), each holding its row group in memory, so the
//! row group is what bounds a write's memory; the session's own setting never
//! reached a Ballista job's writer (one row group per day file, 2.2 GB peak at
//! 4x the default data).

use std::sync::Arc;

use datafusion::arrow::array::{Date32Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use datafusion::prelude::ParquetReadOptions;
use funnelpulse_core::tables::BRONZE_EVENTS;
use funnelpulse_engine::tables::write_partitioned;
use funnelpulse_engine::{Engine, EngineMode};

const ROWS: i64 = 300_000;

/// One Parquet file of `ROWS` rows of one day, in a single row group.
fn write_one_day(path: &std::path::Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int64, false),
        Field::new("event_date", DataType::Date32, false),
    ]));
    let day = 18_170; // 2019-10-01
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from_iter_values(0..ROWS)), Arc::new(Date32Array::from(vec![day; ROWS as usize]))],
    )
    .unwrap();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// Rows of each row group of every Parquet file under `dir`.
fn row_groups_under(dir: &std::path::Path) -> Vec<i64> {
    let mut groups = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            groups.extend(row_groups_under(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
            groups.extend(reader.metadata().row_groups().iter().map(|g| g.num_rows()));
        }
    }
    groups
}

#[tokio::test]
async fn a_table_write_cuts_row_groups_at_131072_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.parquet");
    write_one_day(&input);
    let engine = Engine::connect(EngineMode::Embedded { parallelism: 2 }).await.unwrap();
    let df = engine.ctx.read_parquet(input.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
    let out = dir.path().join("table");
    std::fs::create_dir(&out).unwrap();
    let written = write_partitioned(df, &BRONZE_EVENTS, &format!("file://{}/", out.display())).await.unwrap();
    assert_eq!(written.rows, ROWS as u64);

    let groups = row_groups_under(&out);
    assert_eq!(groups.iter().sum::<i64>(), ROWS, "{groups:?}");
    assert!(groups.iter().all(|&rows| rows <= 131_072), "a row group is larger than 131,072 rows: {groups:?}");
    assert!(groups.len() >= 3, "300,000 rows of one day make at least three row groups: {groups:?}");
}
