//! Malformed input: every raw line ends up in bronze or in bronze_rejects
//! (with file, line and reason), counts reconcile, errors are clear.

mod common;

use std::path::Path;

use common::tables::{Value, read_rows, sorted};
use common::{funnelpulse, funnelpulse_ok};

/// 7 data lines (5 with problems), a blank line, no final newline, CRLF on one line.
fn write_bad_file(raw: &Path) {
    let mut bytes =
        b"event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n".to_vec();
    bytes.extend_from_slice(b"2019-10-01 10:00:00 UTC,view,1,2,,b,1.00,3,s\r\n"); // 2: good (CRLF)
    bytes.extend_from_slice(b"2019-10-01 10:00:00 UTC,view,1,2\n"); // 3: 4 fields
    bytes.extend_from_slice(b"yesterday,view,1,2,,b,1.00,3,s\n"); // 4: bad timestamp
    bytes.extend_from_slice(b"2019-10-01 10:00:00 UTC,view,abc,2,,b,1.00,3,s\n"); // 5: bad number
    bytes.extend_from_slice(b"\n"); // 6: blank
    bytes.extend_from_slice(b"2019-10-01 10:00:00 UTC,view,1,2,,b\xff,1.00,3,s\n"); // 7: invalid UTF-8
    bytes.extend_from_slice(b"2019-10-01 11:00:00 UTC,cart,1,2,,b,1.00,3,s,extra\n"); // 8: 10 fields
    bytes.extend_from_slice(b"2019-10-01 12:00:00 UTC,purchase,1,2,,b,2.50,3,s"); // 9: good, no newline
    std::fs::create_dir_all(raw).unwrap();
    std::fs::write(raw.join("bad.csv"), bytes).unwrap();
    std::fs::write(raw.join("empty.csv"), b"").unwrap();
}

fn run(dir: &Path, bad_rows: &str) -> std::process::Output {
    let raw = dir.join("raw");
    write_bad_file(&raw);
    funnelpulse(dir, &["run", "01", "--raw", "raw", "--lake", "lake", "--bad-rows", bad_rows], &[])
}

async fn rejects(lake: &Path) -> Vec<Vec<Value>> {
    sorted(read_rows(lake, "bronze_rejects", "event_date", &["source_file", "source_line", "reason"]).await)
}

#[tokio::test]
async fn keep_mode_keeps_every_row_in_bronze_and_lists_problems() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "keep");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("raw data lines                   7"), "{text}");
    assert!(text.contains("blank lines skipped              1"), "{text}");
    assert!(text.contains("rows with problems               5"), "{text}");
    let lake = dir.path().join("lake");
    let bronze = read_rows(&lake, "bronze_events", "event_date", &["event_time", "product_id", "event_date"]).await;
    assert_eq!(bronze.len(), 7);
    // The bad timestamp row is kept with a null time, in the null partition.
    assert!(bronze.contains(&vec![Value::Null, Value::I(1), Value::Null]), "{bronze:?}");
    let rejects = rejects(&lake).await;
    let lines: Vec<_> = rejects.iter().map(|r| r[1].clone()).collect();
    assert_eq!(lines, [3, 4, 5, 7, 8].map(Value::I));
    let reason = |i: usize| match &rejects[i][2] {
        Value::S(s) => s.clone(),
        other => panic!("{other:?}"),
    };
    assert!(rejects.iter().all(|r| r[0] == Value::S("bad.csv".into())));
    assert!(reason(0).contains("expected 9 fields, found 4"), "{}", reason(0));
    assert!(reason(1).contains("event_time"), "{}", reason(1));
    assert!(reason(2).contains("product_id"), "{}", reason(2));
    assert!(reason(3).contains("invalid UTF-8"), "{}", reason(3));
    assert!(reason(4).contains("found 10"), "{}", reason(4));
    let raw_text = read_rows(&lake, "bronze_rejects", "event_date", &["raw_text"]).await;
    assert!(raw_text.contains(&vec![Value::S("yesterday,view,1,2,,b,1.00,3,s".into())]));
}

#[tokio::test]
async fn quarantine_mode_moves_problem_rows_out_of_bronze() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "quarantine");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lake = dir.path().join("lake");
    assert_eq!(read_rows(&lake, "bronze_events", "event_date", &["event_type"]).await.len(), 2);
    assert_eq!(rejects(&lake).await.len(), 5);
}

#[tokio::test]
async fn fail_mode_stops_at_the_first_problem_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.csv line 3: expected 9 fields, found 4"), "{stderr}");
    assert!(!dir.path().join("lake/tables/bronze_events").exists());
}

#[test]
fn a_file_without_the_kaggle_header_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("raw")).unwrap();
    std::fs::write(dir.path().join("raw/x.csv"), "2019-10-01 10:00:00 UTC,view,1,2,,b,1.00,3,s\n").unwrap();
    let out = funnelpulse(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("x.csv: line 1 is not a header with the Kaggle columns"), "{stderr}");
}

#[test]
fn missing_raw_files_and_bad_settings_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("raw")).unwrap();
    let out = funnelpulse(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake"], &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "no raw CSV files (*.csv, *.csv.gz, *.csv.gzip, *.csv.zst, *.csv.zstd, *.csv.bz2 and *.csv.xz) in raw"
        ),
        "{out:?}"
    );
    let out = funnelpulse(dir.path(), &["run", "01", "--raw", "raw"], &[("FUNNELPULSE_BAD_ROWS", "sometimes")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bad-rows"), "{out:?}");
    let out = funnelpulse(dir.path(), &["run", "04", "--lake", "stream-lake", "--available-now"], &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("(run stage 03 first)"), "{out:?}");
    let out = funnelpulse(dir.path(), &["run", "04", "--watermark", "soon"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("examples: 2h, 90s, 500ms"), "{out:?}");
    let out = funnelpulse(dir.path(), &["run", "03", "--lake", "empty-lake"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("run stage 01 first"), "{out:?}");
    let out = funnelpulse(dir.path(), &["run", "05", "--lake", "empty-lake"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("run stage 01 first"), "{out:?}");
    let out = funnelpulse(dir.path(), &["run", "06", "--lake", "empty-lake"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tables in"), "{out:?}");
    let out = funnelpulse(dir.path(), &["evaluate", "--lake", "empty-lake", "--truth", "nope.json"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading nope.json"), "{out:?}");
    let out = funnelpulse(dir.path(), &["run", "05", "--lake", "empty-lake", "--v2-fdr", "2"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("for --v2-fdr: must be between 0 and 1"), "{out:?}");
    let out = funnelpulse(dir.path(), &["run", "01", "--scheduler", "localhost:50050"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("must look like df://HOST:PORT"), "{out:?}");
    std::fs::write(dir.path().join("funnelpulse.toml"), "lake = 'x'\ncolour = 'red'\n").unwrap();
    let out = funnelpulse(dir.path(), &["run", "01"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting \"colour\""), "{out:?}");
}

#[test]
fn settings_come_from_flags_then_environment_then_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    write_bad_file(&dir.path().join("raw"));
    std::fs::write(dir.path().join("funnelpulse.toml"), "raw = 'raw'\nlake = 'lake-from-file'\nbad-rows = 'fail'\n")
        .unwrap();
    // The file says fail; the environment says quarantine and wins.
    let out = funnelpulse(dir.path(), &["run", "01"], &[("FUNNELPULSE_BAD_ROWS", "quarantine")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("lake-from-file/tables/bronze_events").exists());
    // A flag wins over both.
    funnelpulse_ok(dir.path(), &["run", "01", "--lake", "lake-from-flag", "--bad-rows", "keep"]);
    assert!(dir.path().join("lake-from-flag/tables/bronze_events").exists());
}

/// Events later than the clock plus `--max-clock-skew` (a broken device
/// clock) are a data-quality figure of stage 01: counted in its report, and
/// kept in every table, as the original did.
#[tokio::test]
async fn events_from_the_future_are_counted_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(30)).format("%Y-%m-%d %H:%M:%S UTC");
    let csv = format!(
        "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n\
         2019-10-01 10:00:00 UTC,view,1,2,,b,1.00,3,s\n\
         2099-01-01 00:00:00 UTC,view,1,2,,b,1.00,3,s\n\
         {soon},view,1,2,,b,1.00,3,s\n"
    );
    std::fs::write(raw.join("events.csv"), csv).unwrap();
    let figure = |text: &str| -> String {
        let line = text.lines().find(|l| l.contains("events from the future")).unwrap_or_else(|| panic!("{text}"));
        line.split_whitespace().nth(4).unwrap().to_string()
    };
    let out = funnelpulse_ok(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake"]);
    assert_eq!(figure(&out), "1", "only the 2099 event is from the future (the other is within 1h): {out}");
    assert!(out.contains("later than") && out.contains("--max-clock-skew"), "{out}");
    let lake = dir.path().join("lake");
    for table in ["bronze_events", "silver_events"] {
        assert_eq!(read_rows(&lake, table, "event_date", &["event_time"]).await.len(), 3, "{table} keeps them");
    }
    // The skew is a setting: a century of it makes 2099 possible.
    let out = funnelpulse_ok(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake", "--max-clock-skew", "100y"]);
    assert_eq!(figure(&out), "0", "{out}");
}
