//! Stage 04: the streaming funnel equals the batch funnel over the same rows,
//! survives SIGKILL at any phase with identical output, runs on the local
//! cluster, and handles late events, damaged and growing files.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::reference::{hourly_brand, read_raw};
use common::stream::{
    OUTPUT, command, kill_at, output_columns, output_rows, progress_lines, stream_args, terminate, wait_for,
};
use common::tables::{Row, Value, assert_close_rows, read_rows, sorted};
use common::{copy_dir, funnelpulse, funnelpulse_ok, generate};
use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;

#[tokio::test]
async fn the_stream_equals_the_batch_funnel_and_survives_sigkill_at_every_phase() {
    let dir = tempfile::tempdir().unwrap();
    let raw = generate(dir.path(), 20_000, 3);
    let base = dir.path().join("base");
    let base_arg = base.to_str().unwrap();
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", raw.to_str().unwrap(), "--lake", base_arg]);
    // Eight files: four batches of two, then the flush (batch 4).
    let eight = ["--stream-files", "8"];
    funnelpulse_ok(
        dir.path(),
        &[&["run", "03", "--lake", base_arg, "--stream-from", "2019-10-01", "--stream-to", "2019-10-03"][..], &eight]
            .concat(),
    );

    // Uninterrupted: equal to the hourly funnel of the silver rules without de-duplication.
    copy_dir(&base, &dir.path().join("a"));
    let out = funnelpulse_ok(dir.path(), &stream_args("a", &[]));
    assert!(out.contains("5 batches, 8 files"), "{out}");
    let uninterrupted = output_rows(&dir.path().join("a")).await;
    let silver: Vec<_> = read_raw(&raw)
        .into_iter()
        .filter(|e| e.price.is_some_and(|p| p > 0.0) && e.time.is_some() && e.kind.is_some())
        .collect();
    assert_close_rows("stream vs batch funnel", uninterrupted.clone(), hourly_brand(&silver), 1e-9);
    assert!(read_rows(&dir.path().join("a"), "late_events", "event_date", &["event_time"]).await.is_empty());

    // De-duplicated within open windows: equal to the batch table (whose silver is de-duplicated);
    // the generated data has duplicates, so this differs from the classic stream.
    copy_dir(&base, &dir.path().join("d"));
    funnelpulse_ok(dir.path(), &stream_args("d", &["--dedup-within-watermark"]));
    let deduplicated = output_rows(&dir.path().join("d")).await;
    let batch = sorted(read_rows(&base, "gold_funnel_hourly_brand", "window_date", &output_columns()).await);
    assert_close_rows("de-duplicated stream vs gold_funnel_hourly_brand", deduplicated.clone(), batch, 1e-12);
    assert_ne!(deduplicated, uninterrupted, "the data should have duplicates");
    let refused = funnelpulse(dir.path(), &stream_args("d", &[]), &[]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("aggregation: checkpoint has"), "{refused:?}");

    // Killed (SIGKILL) at each phase, in different batches, then resumed.
    copy_dir(&base, &dir.path().join("b"));
    for point in [
        "stream:after-offsets:1",
        "stream:after-write:2",
        "stream:after-commit-record:2",
        // Between the appends to two tables: the resumed run appends only what is missing.
        "stream:after-append:gold_stream_funnel_hourly_brand:3",
        "stream:after-appends:3",
        "stream:after-write:4",
    ] {
        kill_at(dir.path(), &stream_args("b", &[]), point);
    }
    let out = funnelpulse_ok(dir.path(), &stream_args("b", &[]));
    assert!(out.contains("re-running batch 4"), "{out}");
    assert_eq!(output_rows(&dir.path().join("b")).await, uninterrupted, "killed and resumed ≠ uninterrupted");
    let ids: Vec<u64> = progress_lines(&dir.path().join("b")).iter().map(|p| p["batch_id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![0, 1, 2, 3, 4], "each batch is reported once");
    let status = funnelpulse_ok(dir.path(), &["stream", "status", "--lake", "b"]);
    assert!(status.contains("5 batches committed: 8 files"), "{status}");
    assert!(status.contains("0 new files waiting"), "{status}");

    // A re-run finds nothing new and changes nothing.
    let out = funnelpulse_ok(dir.path(), &stream_args("b", &[]));
    assert!(out.contains("nothing new"), "{out}");
    assert_eq!(output_rows(&dir.path().join("b")).await, uninterrupted);

    // The same on the local multi-process cluster.
    let cluster = common::LocalCluster::start(2);
    copy_dir(&base, &dir.path().join("c"));
    let url = cluster.url();
    funnelpulse_ok(dir.path(), &stream_args("c", &["--scheduler", &url]));
    assert_eq!(output_rows(&dir.path().join("c")).await, uninterrupted, "cluster ≠ embedded");
}

fn micros(text: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap().and_utc().timestamp_micros()
}

/// A stream file with the bronze columns: (time, type, brand, price) per event.
fn events_parquet(rows: &[(&str, &str, &str, f64)]) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("event_time", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("event_type", DataType::Utf8, true),
        Field::new("product_id", DataType::Int64, true),
        Field::new("category_id", DataType::Int64, true),
        Field::new("category_code", DataType::Utf8, true),
        Field::new("brand", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
        Field::new("user_id", DataType::Int64, true),
        Field::new("user_session", DataType::Utf8, true),
    ]));
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(rows.iter().map(|r| micros(r.0)).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(vec![1; n])),
        Arc::new(Int64Array::from(vec![2; n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(vec![3; n])),
        Arc::new(StringArray::from(vec!["s"; n])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

fn s(v: &str) -> Value {
    Value::S(v.to_string())
}

#[tokio::test]
async fn late_events_are_counted_not_added_and_bad_or_growing_files_never_stall_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("lake/stream_input");
    std::fs::create_dir_all(&source).unwrap();
    let put = |name: &str, bytes: Vec<u8>| std::fs::write(source.join(name), bytes).unwrap();
    put(
        "a.parquet",
        events_parquet(&[
            ("2019-10-01 10:05:00", "view", "A", 1.0),
            ("2019-10-01 10:30:00", "view", "A", 1.0),
            ("2019-10-01 11:10:00", "cart", "A", 2.0),
            ("2019-10-01 12:40:00", "purchase", "A", 5.0),
        ]),
    ); // watermark 10:40
    put("b.parquet", events_parquet(&[("2019-10-01 13:30:00", "view", "a", 1.0)])); // 11:30: closes 10:00
    put(
        "c.parquet",
        events_parquet(&[
            ("2019-10-01 10:50:00", "view", "A", 1.0),  // late: its window ended at 11:00
            ("2019-10-01 11:45:00", "view", "B", 1.0),  // on time
            ("2019-10-01 11:50:00", "view", "A", -1.0), // not silver
        ]),
    );
    put("d.parquet", b"PAR1 this file was cut short".to_vec());
    put("_temporary.parquet", b"ignored".to_vec());

    let out = funnelpulse_ok(dir.path(), &stream_args("lake", &["--max-files-per-trigger", "1"]));
    assert!(out.contains("5 batches, 3 files"), "{out}");
    assert!(out.contains("1 late rows, 1 files quarantined"), "{out}");
    let got: Vec<Row> = read_rows(
        &dir.path().join("lake"),
        OUTPUT,
        "window_date",
        &["window_start", "brand", "views", "carts", "purchases", "revenue"],
    )
    .await;
    let expected = [
        ("2019-10-01T10:00:00", "a", 2, 0, 0, 0.0),
        ("2019-10-01T11:00:00", "a", 0, 1, 0, 0.0),
        ("2019-10-01T11:00:00", "b", 1, 0, 0, 0.0),
        ("2019-10-01T12:00:00", "a", 0, 0, 1, 5.0),
        ("2019-10-01T13:00:00", "a", 1, 0, 0, 0.0),
    ]
    .iter()
    .map(|r| vec![s(r.0), s(r.1), Value::I(r.2), Value::I(r.3), Value::I(r.4), Value::F(r.5)])
    .collect();
    assert_eq!(sorted(got), sorted(expected));
    let late =
        read_rows(&dir.path().join("lake"), "late_events", "event_date", &["event_time", "batch_id", "watermark"])
            .await;
    assert_eq!(late, vec![vec![s("2019-10-01T10:50:00"), Value::I(2), s("2019-10-01T11:30:00")]]);

    let progress = progress_lines(&dir.path().join("lake"));
    assert_eq!(progress[1]["emitted_windows"], 1, "b closes the 10:00 window");
    assert_eq!(progress[2]["late_rows"], 1);
    assert_eq!(progress[2]["input_rows"], 3);
    let quarantined = &progress[3]["quarantined"][0];
    assert_eq!(quarantined["path"], "d.parquet");
    assert!(quarantined["reason"].as_str().unwrap().contains("not a readable Parquet file"), "{quarantined}");
    assert_eq!(progress[4]["flush"], true);
    let status = funnelpulse_ok(dir.path(), &["stream", "status", "--lake", "lake"]);
    assert!(status.contains("1 late rows") && status.contains("quarantined d.parquet"), "{status}");

    // Other options than the checkpoint's are refused.
    let refused = funnelpulse(dir.path(), &stream_args("lake", &["--watermark", "1h"]), &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("watermark: checkpoint has 2h, this run asks for 1h"),
        "{stderr}"
    );

    // Continuous mode: a file written in place is taken only once it is complete.
    let mut stream =
        command(dir.path(), &["run", "04", "--lake", "lake", "--trigger-interval", "200ms", "--file-settle", "1s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let bytes = events_parquet(&[("2019-10-01 15:00:00", "view", "C", 1.0), ("2019-10-01 15:01:00", "view", "C", 1.0)]);
    let mut growing = std::fs::File::create(source.join("e.parquet")).unwrap();
    for chunk in bytes.chunks(bytes.len().div_ceil(6)) {
        growing.write_all(chunk).unwrap();
        growing.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(growing);
    let taken =
        wait_for(|| progress_lines(&dir.path().join("lake")).into_iter().find(|p| p["files"][0] == "e.parquet"));
    assert_eq!(taken["input_rows"], 2, "{taken}");
    assert!(taken["quarantined"].as_array().unwrap().is_empty(), "the growing file was taken too early: {taken}");
    terminate(&mut stream);
}

/// Files and folders under `dir`, and the empty folders among them.
fn tree(dir: &std::path::Path) -> (Vec<std::path::PathBuf>, Vec<std::path::PathBuf>) {
    let (mut files, mut empty) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let (f, e) = tree(&path);
            if f.is_empty() && e.is_empty() {
                empty.push(path);
            } else {
                files.extend(f);
                empty.extend(e);
            }
        } else {
            files.push(path);
        }
    }
    (files, empty)
}

/// A long stream keeps a bounded checkpoint: the offsets and commits of the
/// last --min-batches-to-retain batches (older ones folded), no emptied
/// folders, the progress in rotated segments; a run killed after the log was
/// pruned resumes without taking an old file again, and status still counts
/// every batch.
#[tokio::test]
async fn a_long_stream_keeps_a_bounded_checkpoint_and_resumes_identically() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("lake/stream_input");
    std::fs::create_dir_all(&source).unwrap();
    // One view per hour, one file per batch.
    for i in 0..40 {
        let time = format!("2019-10-{:02} {:02}:10:00", 1 + i / 24, i % 24);
        std::fs::write(source.join(format!("f{i:03}.parquet")), events_parquet(&[(&time, "view", "A", 1.0)])).unwrap();
    }
    let args = stream_args("lake", &["--max-files-per-trigger", "1", "--min-batches-to-retain", "10"]);
    // Batches 0 to 24 are committed, the log was pruned at batch 19.
    kill_at(dir.path(), &args, "stream:after-write:25");
    let checkpoint = dir.path().join("lake/checkpoints/stream_hourly_brand");
    assert!(!checkpoint.join("offsets/0000000000.json").exists(), "the first offsets are kept past the retention");
    let out = funnelpulse_ok(dir.path(), &args);
    assert!(out.contains("re-running batch 25") && out.contains("16 batches, 15 files"), "{out}");

    // Each hour's view counted once: no file lost, none taken twice.
    let rows = read_rows(&dir.path().join("lake"), OUTPUT, "window_date", &["window_start", "brand", "views"]).await;
    assert_eq!(rows.len(), 40, "{rows:?}");
    assert!(rows.iter().all(|r| r[1] == s("a") && r[2] == Value::I(1)), "{rows:?}");

    // Bounded: 10 batches kept, up to 10 more until the next clean-up (every 10 batches).
    let (files, empty) = tree(&checkpoint);
    assert!(empty.is_empty(), "empty folders left: {empty:?}");
    let count = |folder: &str| files.iter().filter(|f| f.starts_with(checkpoint.join(folder))).count();
    assert!((10..=21).contains(&count("offsets")), "offsets/: {files:?}");
    assert!((10..=20).contains(&count("commits")), "commits/: {files:?}");
    assert!(count("progress") <= 3, "progress/: {files:?}");
    assert!(count("batches") <= 4, "batches/ holds the open windows only: {files:?}");
    assert!(!checkpoint.join("progress.jsonl").exists());
    let ids: Vec<u64> =
        progress_lines(&dir.path().join("lake")).iter().map(|p| p["batch_id"].as_u64().unwrap()).collect();
    assert!(ids.len() >= 10 && ids.windows(2).all(|w| w[1] == w[0] + 1) && ids.last() == Some(&40), "{ids:?}");

    let status = funnelpulse_ok(dir.path(), &["stream", "status", "--lake", "lake"]);
    assert!(status.contains("41 batches committed: 40 files, 40 input rows"), "{status}");
    assert!(status.contains("last batch 40") && status.contains("0 new files waiting"), "{status}");

    // A restart after the pruning finds nothing new.
    let out = funnelpulse_ok(dir.path(), &args);
    assert!(out.contains("nothing new"), "{out}");
    let again = read_rows(&dir.path().join("lake"), OUTPUT, "window_date", &["window_start", "brand", "views"]).await;
    assert_eq!(sorted(again), sorted(rows));
}

/// One stream per checkpoint: a second stream is refused while the first
/// holds the lease; once the first is killed, the next one takes the
/// checkpoint over and the output holds each window once, as an
/// uninterrupted run's.
#[tokio::test]
async fn a_second_stream_on_a_checkpoint_is_refused_and_takes_over_once_the_first_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let raw = generate(dir.path(), 5_000, 2);
    let base = dir.path().join("base");
    let base_arg = base.to_str().unwrap();
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", raw.to_str().unwrap(), "--lake", base_arg]);
    let range = ["--stream-from", "2019-10-01", "--stream-to", "2019-10-02", "--stream-files", "6"];
    funnelpulse_ok(dir.path(), &[&["run", "03", "--lake", base_arg][..], &range].concat());
    copy_dir(&base, &dir.path().join("a"));
    funnelpulse_ok(dir.path(), &stream_args("a", &[]));
    let uninterrupted = output_rows(&dir.path().join("a")).await;

    copy_dir(&base, &dir.path().join("lake"));
    let mut first = command(dir.path(), &stream_args("lake", &[]))
        .env("FUNNELPULSE_PAUSE", "stream:after-write:1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(first.stderr.take().unwrap()));
    assert!(lines.any(|l| l.unwrap().contains("paused at stream:after-write:1")), "the first stream never paused");

    let second = funnelpulse(dir.path(), &stream_args("lake", &[]), &[]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second stream ran on a held checkpoint: {stderr}");
    assert!(stderr.contains("is in use by another stream") && stderr.contains("pid"), "{stderr}");

    first.kill().unwrap(); // SIGKILL: its lease is never released
    first.wait().unwrap();
    let out = funnelpulse_ok(dir.path(), &stream_args("lake", &[]));
    assert!(out.contains("stage 04 done"), "{out}");
    assert_eq!(output_rows(&dir.path().join("lake")).await, uninterrupted, "windows lost or written twice");
}

/// Stage 03 stamps each rebuild of the stream input with a generation: a
/// stream that has read one generation refuses the next with the fix instead
/// of counting the rewritten files again (they used to be taken as new: every
/// event a second time, as late rows and inflated windows), also while it
/// runs; a checkpoint from before generations adopts the current one if its
/// files are unchanged, and is refused otherwise.
#[tokio::test]
async fn a_rebuilt_stream_input_is_refused_with_the_fix_never_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let raw = generate(dir.path(), 5_000, 2);
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", raw.to_str().unwrap(), "--lake", lake_arg]);
    let stage03 = ["run", "03", "--lake", lake_arg, "--stream-from", "2019-10-01", "--stream-to", "2019-10-02"];
    let stage03 = [&stage03[..], &["--stream-files", "4"]].concat();
    let out = funnelpulse_ok(dir.path(), &stage03);
    assert!(out.contains("(generation "), "{out}");
    funnelpulse_ok(dir.path(), &stream_args("lake", &[]));
    let first = output_rows(&lake).await;
    assert!(!first.is_empty());
    let metadata = lake.join("checkpoints/stream_hourly_brand/metadata.json");

    // A checkpoint from before generations, on an unchanged source: adopts the generation.
    let strip_generation = || {
        let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&metadata).unwrap()).unwrap();
        json.as_object_mut().unwrap().remove("source_generation").expect("the checkpoint records the generation");
        std::fs::write(&metadata, json.to_string()).unwrap();
    };
    strip_generation();
    let out = funnelpulse_ok(dir.path(), &stream_args("lake", &[]));
    assert!(out.contains("nothing new"), "{out}");
    let adopted: serde_json::Value = serde_json::from_slice(&std::fs::read(&metadata).unwrap()).unwrap();
    assert!(adopted["source_generation"].is_string(), "{adopted}");

    // Stage 03 again: the stream refuses, in one line with the fix, and counts nothing twice.
    funnelpulse_ok(dir.path(), &stage03);
    let refused = |what: &str| {
        let run = funnelpulse(dir.path(), &stream_args("lake", &[]), &[]);
        let stderr = String::from_utf8_lossy(&run.stderr).to_string();
        assert!(!run.status.success(), "{what}: a rebuilt source was read: {stderr}");
        let error: Vec<&str> = stderr.lines().filter(|l| l.contains("rebuilt")).collect();
        assert_eq!(error.len(), 1, "{what}: {stderr}");
        assert!(error[0].contains("--reset-stream") && error[0].contains("stream_input"), "{what}: {stderr}");
    };
    refused("bound checkpoint");
    let status = funnelpulse_ok(dir.path(), &["stream", "status", "--lake", lake_arg]);
    assert!(status.contains("rebuilt") && status.contains("--reset-stream"), "{status}");
    // The same for a checkpoint from before generations, whose files are gone.
    strip_generation();
    refused("checkpoint from before generations");
    assert_eq!(output_rows(&lake).await, first, "windows counted twice");
    assert!(read_rows(&lake, "late_events", "event_date", &["event_time"]).await.is_empty(), "events counted as late");

    // --reset-stream starts over on the new files: the same windows once.
    let out = funnelpulse_ok(dir.path(), &stream_args("lake", &["--reset-stream"]));
    assert!(out.contains("stage 04 done"), "{out}");
    assert_eq!(output_rows(&lake).await, first);

    // A continuous stream stops, with the same line, when stage 03 rebuilds its source under it.
    let mut stream = command(dir.path(), &["run", "04", "--lake", lake_arg, "--trigger-interval", "200ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    funnelpulse_ok(dir.path(), &stage03);
    let status = wait_for(|| stream.try_wait().unwrap());
    let output = stream.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success() && stderr.contains("rebuilt") && stderr.contains("--reset-stream"), "{stderr}");
    assert_eq!(output_rows(&lake).await, first, "the running stream mixed two generations");
}

/// An event from the future (a broken device clock: 2099) is kept out of the
/// watermark and the windows, in `future_events` with the reason, and
/// counted: it used to move the watermark to 2098 and make every later event
/// late. An event within `--max-clock-skew` of the clock is an ordinary one.
#[tokio::test]
async fn an_event_from_the_future_is_set_aside_and_does_not_move_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("lake/stream_input");
    std::fs::create_dir_all(&source).unwrap();
    let put = |name: &str, bytes: Vec<u8>| std::fs::write(source.join(name), bytes).unwrap();
    put(
        "a.parquet",
        events_parquet(&[("2019-10-01 10:05:00", "view", "A", 1.0), ("2019-10-01 11:10:00", "cart", "A", 2.0)]),
    );
    put(
        "b.parquet",
        events_parquet(&[("2099-01-01 00:00:00", "view", "A", 1.0), ("2019-10-01 12:40:00", "purchase", "A", 5.0)]),
    ); // watermark 10:40, not 2098-12-31 22:00
    put("c.parquet", events_parquet(&[("2019-10-01 11:50:00", "view", "B", 1.0)])); // on time
    // Half an hour ahead of the clock: within the default skew (1h), an ordinary event.
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(30)).format("%Y-%m-%d %H:%M:00").to_string();
    put("d.parquet", events_parquet(&[(soon.as_str(), "view", "C", 1.0)]));

    let out = funnelpulse_ok(dir.path(), &stream_args("lake", &["--max-files-per-trigger", "1"]));
    assert!(out.contains("0 late rows") && out.contains("1 events from the future"), "{out}");
    let progress = progress_lines(&dir.path().join("lake"));
    assert_eq!(progress[1]["future_rows"], 1, "{}", progress[1]);
    assert_eq!(progress[1]["watermark"], "2019-10-01 10:40:00", "{}", progress[1]);
    assert_eq!(progress[1]["input_rows"], 2);
    assert!(out.contains("late 0, future 1"), "the progress line counts it: {out}");

    let lake = dir.path().join("lake");
    let future =
        read_rows(&lake, "future_events", "event_date", &["event_time", "batch_id", "reason", "event_date"]).await;
    assert_eq!(future.len(), 1, "{future:?}");
    assert_eq!(future[0][0], s("2099-01-01T00:00:00"));
    assert_eq!(future[0][1], Value::I(1));
    assert!(matches!(&future[0][2], Value::S(r) if r.contains("--max-clock-skew")), "{future:?}");
    assert!(read_rows(&lake, "late_events", "event_date", &["event_time"]).await.is_empty());
    let windows: Vec<Row> = read_rows(&lake, OUTPUT, "window_date", &["window_start", "brand", "views"]).await;
    let hour = |b: &str| windows.iter().filter(|w| w[1] == s(b)).map(|w| w[0].clone()).collect::<Vec<_>>();
    assert_eq!(hour("b"), vec![s("2019-10-01T11:00:00")], "c's event is on time: {windows:?}");
    assert_eq!(hour("c").len(), 1, "the event within the skew is counted: {windows:?}");
    assert!(!windows.iter().any(|w| matches!(&w[0], Value::S(t) if t.starts_with("2099"))), "{windows:?}");
    let status = funnelpulse_ok(dir.path(), &["stream", "status", "--lake", "lake"]);
    assert!(status.contains("1 events from the future"), "{status}");
}
