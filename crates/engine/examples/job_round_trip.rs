//! How long a trivial Ballista job takes end to end: submitted, planned,
//! run, its result fetched. Two jobs: one stage (`SELECT 1`) and two stages
//! (a grouped count over two small Parquet files: scan and partial
//! aggregate, shuffle, final aggregate).
//!
//! ```text
//! cargo run --release --example job_round_trip                         # embedded
//! cargo run --release --example job_round_trip -- df://localhost:50050 # a cluster
//! ```
//!
//! Prints the minimum, median and maximum of 30 runs of each (after 3 warm-up runs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{col, lit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{DataFrame, ParquetReadOptions};
use funnelpulse_engine::{Engine, EngineMode};

const RUNS: usize = 30;
const WARM_UP: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mode = EngineMode::from_scheduler(std::env::args().nth(1).as_deref())?;
    let dir = tempfile::tempdir()?;
    write_two_files(dir.path())?;
    let engine = Engine::connect(mode.clone()).await?;
    println!("{mode}");
    let one_stage = || async { engine.ctx.sql("SELECT 1 AS one").await };
    report("1 stage (SELECT 1)", time(|| async { collect(one_stage().await?).await }).await?);
    let path = dir.path().to_str().unwrap_or_default().to_string();
    let two_stages = || async {
        let table = engine.ctx.read_parquet(path.clone(), ParquetReadOptions::default()).await?;
        table.aggregate(vec![col("k")], vec![count(lit(1)).alias("n")])
    };
    report("2 stages (grouped count)", time(|| async { collect(two_stages().await?).await }).await?);
    Ok(())
}

async fn collect(df: DataFrame) -> datafusion::error::Result<()> {
    df.collect().await.map(|_| ())
}

/// Durations of [`RUNS`] runs of `job`, after [`WARM_UP`] untimed ones.
async fn time<F, Fut>(job: F) -> anyhow::Result<Vec<Duration>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = datafusion::error::Result<()>>,
{
    for _ in 0..WARM_UP {
        job().await?;
    }
    let mut durations = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        job().await?;
        durations.push(started.elapsed());
    }
    durations.sort();
    Ok(durations)
}

fn report(what: &str, sorted: Vec<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: min {:.1} ms, p50 {:.1} ms, max {:.1} ms ({RUNS} runs)",
        ms(sorted[0]),
        ms(sorted[sorted.len() / 2]),
        ms(sorted[sorted.len() - 1])
    );
}

/// Two Parquet files of (k, v), so that a scan has two partitions.
fn write_two_files(dir: &std::path::Path) -> anyhow::Result<()> {
    let schema =
        Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, false), Field::new("v", DataType::Int64, false)]));
    for file in ["a.parquet", "b.parquet"] {
        let keys: Vec<String> = (0..1000).map(|i| format!("key{}", i % 37)).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(keys)), Arc::new(Int64Array::from_iter_values(0..1000))],
        )?;
        let mut writer = ArrowWriter::try_new(std::fs::File::create(dir.join(file))?, schema.clone(), None)?;
        writer.write(&batch)?;
        writer.close()?;
    }
    Ok(())
}
