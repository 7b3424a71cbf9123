//! Stage 03: the stream input files hold exactly the bronze rows of the
//! range, in event-time order across and within files, and a re-run replaces them.

mod common;

use std::path::Path;

use common::reference::BRONZE_COLUMNS as BRONZE;
use common::tables::{Row, Value, read_rows, sorted};
use common::{funnelpulse_ok, generate};
use datafusion::prelude::{ParquetReadOptions, SessionContext};

/// The data files (not the generation marker).
fn stream_files(lake: &Path) -> Vec<std::path::PathBuf> {
    let dir = lake.join("stream_input");
    let mut files: Vec<_> = std::fs::read_dir(&dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    files.retain(|f| f.extension().is_some_and(|x| x == "parquet"));
    files.sort();
    files
}

/// `stream_input/_generation.json`: (id, files).
fn generation(lake: &Path) -> (String, u64) {
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.join("stream_input/_generation.json")).unwrap()).unwrap();
    (marker["id"].as_str().unwrap().to_string(), marker["files"].as_u64().unwrap())
}

/// The rows of one Parquet file, bronze columns in order (plain DataFusion).
async fn file_rows(file: &Path) -> Vec<Row> {
    let ctx = SessionContext::new();
    let df = ctx.read_parquet(file.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
    let batches = df.select_columns(&BRONZE).unwrap().collect().await.unwrap();
    let mut rows = Vec::new();
    for batch in batches {
        for i in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| {
                        let text = datafusion::arrow::compute::cast(
                            &c.slice(i, 1),
                            &datafusion::arrow::datatypes::DataType::Utf8,
                        )
                        .unwrap();
                        let text = datafusion::arrow::array::AsArray::as_string::<i32>(&text);
                        if datafusion::arrow::array::Array::is_null(text, 0) {
                            Value::Null
                        } else {
                            Value::S(text.value(0).to_string())
                        }
                    })
                    .collect(),
            );
        }
    }
    rows
}

fn time_of(row: &Row) -> String {
    row[0].to_string()
}

#[tokio::test]
async fn stream_input_replays_the_range_in_event_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let raw = generate(dir.path(), 20_000, 4);
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", raw.to_str().unwrap(), "--lake", lake_arg]);
    let range = ["--stream-from", "2019-10-02", "--stream-to", "2019-10-03"];
    let out =
        funnelpulse_ok(dir.path(), &[&["run", "03", "--lake", lake_arg, "--stream-files", "5"][..], &range].concat());
    assert!(out.contains("in 5 files"), "{out}");

    let files = stream_files(&lake);
    assert_eq!(files.len(), 5, "{files:?}");
    let mut all = Vec::new();
    let mut previous_last: Option<String> = None;
    for file in &files {
        let rows = file_rows(file).await;
        assert!(!rows.is_empty(), "{file:?} is empty");
        let times: Vec<String> = rows.iter().map(time_of).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{file:?} is not in event-time order");
        if let Some(last) = &previous_last {
            assert!(last <= &times[0], "{file:?} starts before the previous file ends");
        }
        previous_last = times.last().cloned();
        all.extend(rows);
    }
    // Exactly the bronze rows of the two days (compared as text).
    let bronze: Vec<Row> = read_rows(&lake, "bronze_events", "event_date", &BRONZE)
        .await
        .into_iter()
        .filter(|r| matches!(&r[9], Value::S(d) if d.as_str() >= "2019-10-02" && d.as_str() <= "2019-10-03"))
        .map(|r| r.iter().map(|v| if *v == Value::Null { Value::Null } else { Value::S(as_text(v)) }).collect())
        .collect();
    // Prices print differently through the two readers; every other column is compared as text.
    let without_price = |rows: Vec<Row>| -> Vec<Row> {
        sorted(
            rows.into_iter()
                .map(|mut r| {
                    r.remove(6);
                    r
                })
                .collect(),
        )
    };
    assert_eq!(without_price(all), without_price(bronze), "stream input differs from bronze of the range");

    // The same files' rows from the local cluster.
    let cluster = common::LocalCluster::start(2);
    let url = cluster.url();
    let on_cluster = dir.path().join("lake-copy");
    common::copy_dir(&lake, &on_cluster);
    let copy_arg = on_cluster.to_str().unwrap();
    funnelpulse_ok(
        dir.path(),
        &[&["run", "03", "--lake", copy_arg, "--stream-files", "5", "--scheduler", &url][..], &range].concat(),
    );
    let (mut here, mut there) = (Vec::new(), Vec::new());
    for (a, b) in stream_files(&lake).iter().zip(stream_files(&on_cluster).iter()) {
        here.push(file_rows(a).await);
        there.push(file_rows(b).await);
    }
    assert_eq!(here, there, "cluster and embedded stream files differ");

    // A re-run replaces the files, stamped with a new generation; a range without data empties the folder.
    let first = generation(&lake);
    assert_eq!(first.1, 5);
    funnelpulse_ok(dir.path(), &[&["run", "03", "--lake", lake_arg, "--stream-files", "3"][..], &range].concat());
    assert_eq!(stream_files(&lake).len(), 3);
    let second = generation(&lake);
    assert!(second.0 != first.0 && second.1 == 3, "{first:?} then {second:?}");
    let out = funnelpulse_ok(
        dir.path(),
        &["run", "03", "--lake", lake_arg, "--stream-from", "2020-01-01", "--stream-to", "2020-01-31"],
    );
    assert!(out.contains("stream_input is empty"), "{out}");
    assert!(stream_files(&lake).is_empty());
    assert_eq!(generation(&lake).1, 0);
    assert!(!lake.join("_staging").read_dir().map(|mut d| d.next().is_some()).unwrap_or(false), "staging left behind");
}

fn as_text(v: &Value) -> String {
    match v {
        Value::S(s) => s.clone(),
        other => other.to_string(),
    }
}
