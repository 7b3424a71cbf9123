//! Stage 04 in this process, on an embedded engine (as Ballista's
//! `client/tests` run their own): the driver, both state stores, the sink
//! and the reconciliation, without the binary. The expected windows are
//! written out by hand from the events below.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::parquet::arrow::ArrowWriter;
use funnelpulse_core::tables::{GOLD_STREAM_FUNNEL_HOURLY_BRAND, LATE_EVENTS};
use funnelpulse_engine::tables::read_table;
use funnelpulse_engine::{Engine, EngineMode};
use funnelpulse_lake::Lake;
use funnelpulse_stage04::{Stage04Args, Stage04Report};

/// An event: time, type, brand, price, user.
type Event = (&'static str, &'static str, &'static str, f64, i64);

/// A stream file with bronze's columns.
fn write_events(dir: &Path, name: &str, events: &[Event]) {
    let schema = Arc::new(Schema::new(funnelpulse_core::schema::event_fields()));
    let n = events.len();
    let micros =
        |t: &str| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").unwrap().and_utc().timestamp_micros();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(events.iter().map(|e| micros(e.0)).collect::<Vec<_>>())),
        Arc::new(StringArray::from(events.iter().map(|e| e.1).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(vec![7; n])),
        Arc::new(Int64Array::from(vec![8; n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from(events.iter().map(|e| e.2).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(events.iter().map(|e| e.3).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(events.iter().map(|e| e.4).collect::<Vec<_>>())),
        Arc::new(StringArray::from(events.iter().map(|e| format!("s{}", e.4)).collect::<Vec<_>>())),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let file = std::fs::File::create(dir.join(name)).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// Four files, one batch each (watermark delay 2 h):
/// - a: the 10:00 and 11:00 windows open, a cart repeated in the file;
/// - b: the same cart once more (its window still open), a purchase, a row that is not silver;
/// - c: 14:00 moves the watermark to 12:00, closing 10:00 and 11:00;
/// - d: a view for 10:00, which is closed by now: late.
fn write_stream(source: &Path) {
    std::fs::create_dir_all(source).unwrap();
    write_events(
        source,
        "a.parquet",
        &[
            ("2019-10-01 10:05:00", "view", "A", 1.0, 1),
            ("2019-10-01 10:20:00", "cart", "A", 2.0, 1),
            ("2019-10-01 10:20:00", "cart", "A", 2.0, 1),
            ("2019-10-01 11:10:00", "view", "B", 3.0, 2),
        ],
    );
    write_events(
        source,
        "b.parquet",
        &[
            ("2019-10-01 10:20:00", "cart", "A", 2.0, 1),
            ("2019-10-01 12:30:00", "purchase", "A", 5.0, 1),
            ("2019-10-01 11:30:00", "view", "B", -1.0, 2),
        ],
    );
    write_events(source, "c.parquet", &[("2019-10-01 14:00:00", "view", "C", 4.0, 3)]);
    write_events(source, "d.parquet", &[("2019-10-01 10:40:00", "view", "A", 1.0, 1)]);
}

async fn run_stream(engine: &Engine, lake: &Lake, dedup: bool) -> Stage04Report {
    let args = Stage04Args {
        max_files_per_trigger: 1,
        available_now: true,
        flush_at_end: true,
        file_settle: Duration::ZERO,
        dedup_within_watermark: dedup,
        ..Default::default()
    };
    funnelpulse_stage04::run(engine, lake, &args).await.unwrap()
}

/// The rows of `table`, columns as text, sorted.
async fn rows(engine: &Engine, lake: &Lake, table: &funnelpulse_core::TableSpec, columns: &[&str]) -> Vec<String> {
    let df = read_table(&engine.ctx, lake, table, "").await.unwrap().select_columns(columns).unwrap();
    let mut out = Vec::new();
    for batch in df.collect().await.unwrap() {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = (0..batch.num_columns())
                .map(|c| {
                    let column = batch.column(c);
                    if column.is_null(row) { "null".into() } else { array_value_to_string(column, row).unwrap() }
                })
                .collect();
            out.push(cells.join(" "));
        }
    }
    out.sort();
    out
}

async fn open(engine: &Engine, dir: &Path) -> Lake {
    let url = dir.join("lake").to_str().unwrap().to_string();
    write_stream(&dir.join("lake/stream_input"));
    Lake::open(&url, engine.ctx.runtime_env().object_store_registry.as_ref()).unwrap()
}

const WINDOW_COLUMNS: [&str; 5] = ["window_start", "brand", "views", "carts", "purchases"];

#[tokio::test]
async fn summed_windows_count_every_on_time_event_and_set_the_late_one_aside() {
    let engine = Engine::connect(EngineMode::Embedded { parallelism: 2 }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = open(&engine, dir.path()).await;

    let report = run_stream(&engine, &lake, false).await;
    assert_eq!((report.totals.batches, report.totals.files, report.totals.input_rows), (5, 4, 9), "{report}");
    assert_eq!(report.totals.late_rows, 1, "{report}");
    assert_eq!(
        rows(&engine, &lake, &GOLD_STREAM_FUNNEL_HOURLY_BRAND, &WINDOW_COLUMNS).await,
        [
            "2019-10-01T10:00:00 a 1 3 0",
            "2019-10-01T11:00:00 b 1 0 0",
            "2019-10-01T12:00:00 a 0 0 1",
            "2019-10-01T14:00:00 c 1 0 0",
        ]
    );
    assert_eq!(
        rows(&engine, &lake, &LATE_EVENTS, &["event_time", "batch_id", "watermark"]).await,
        ["2019-10-01T10:40:00 3 2019-10-01T12:00:00"]
    );

    // A second run finds nothing new and changes nothing.
    let again = run_stream(&engine, &lake, false).await;
    assert_eq!(again.totals.batches, 0, "{again}");
    assert_eq!(rows(&engine, &lake, &GOLD_STREAM_FUNNEL_HOURLY_BRAND, &WINDOW_COLUMNS).await.len(), 4);
}

#[tokio::test]
async fn de_duplicated_events_count_a_repeated_cart_once_across_batches() {
    let engine = Engine::connect(EngineMode::Embedded { parallelism: 2 }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = open(&engine, dir.path()).await;

    let report = run_stream(&engine, &lake, true).await;
    assert_eq!((report.totals.batches, report.totals.late_rows), (5, 1), "{report}");
    assert_eq!(
        rows(&engine, &lake, &GOLD_STREAM_FUNNEL_HOURLY_BRAND, &WINDOW_COLUMNS).await,
        [
            "2019-10-01T10:00:00 a 1 1 0",
            "2019-10-01T11:00:00 b 1 0 0",
            "2019-10-01T12:00:00 a 0 0 1",
            "2019-10-01T14:00:00 c 1 0 0",
        ]
    );

    // The checkpoint is bound to its state store: the summed one is refused on it.
    let summed = Stage04Args { available_now: true, file_settle: Duration::ZERO, ..Default::default() };
    let refused = funnelpulse_stage04::run(&engine, &lake, &summed).await.unwrap_err();
    assert!(format!("{refused:#}").contains("no de-duplication"), "{refused:#}");
}
