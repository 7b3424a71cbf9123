//! A plan marked `as_one_task` is planned by the scheduler with its own
//! settings: no repartitioning, so its job runs as one task with no shuffle.
//! (Ballista's own standalone mode ignores a job's settings; our embedded
//! scheduler must not.)

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{col, lit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{DataFrame, ParquetReadOptions};
use funnelpulse_engine::tables::as_one_task;
use funnelpulse_engine::{Engine, EngineMode};

/// Two Parquet files of (k, v), so that a scan has two partitions.
fn write_two_files(dir: &std::path::Path) {
    let schema =
        Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, false), Field::new("v", DataType::Int64, false)]));
    for file in ["a.parquet", "b.parquet"] {
        let keys: Vec<String> = (0..1000).map(|i| format!("key{}", i % 37)).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(keys)), Arc::new(Int64Array::from_iter_values(0..1000))],
        )
        .unwrap();
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(dir.join(file)).unwrap(), schema.clone(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }
}

/// The physical plan the scheduler made for `df`, as text.
async fn scheduler_plan(df: DataFrame) -> String {
    let batches = df.explain(false, false).unwrap().collect().await.unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
    assert!(text.contains("AggregateExec"), "no physical plan in the explanation:\n{text}");
    text
}

#[tokio::test]
async fn a_plan_marked_one_task_is_planned_without_repartitioning_in_embedded_mode() {
    let dir = tempfile::tempdir().unwrap();
    write_two_files(dir.path());
    let engine = Engine::connect(EngineMode::Embedded { parallelism: 2 }).await.unwrap();
    let table = engine.ctx.read_parquet(dir.path().to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
    let grouped = table.aggregate(vec![col("k")], vec![count(lit(1)).alias("n")]).unwrap();

    let default_plan = scheduler_plan(grouped.clone()).await;
    assert!(default_plan.contains("Hash(["), "by default the aggregation is repartitioned:\n{default_plan}");

    let one_task = scheduler_plan(as_one_task(grouped.clone())).await;
    assert!(!one_task.contains("Hash(["), "marked one task, nothing is repartitioned:\n{one_task}");
    assert!(!one_task.contains("Repartition"), "marked one task, nothing is repartitioned:\n{one_task}");

    // And it computes the same.
    let total = |batches: Vec<RecordBatch>| batches.iter().map(|b| b.num_rows()).sum::<usize>();
    assert_eq!(total(as_one_task(grouped.clone()).collect().await.unwrap()), 37);
    assert_eq!(total(grouped.collect().await.unwrap()), 37);
}
