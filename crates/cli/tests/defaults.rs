//! Surprising defaults made explicit: the demo sample announced, stage 03's
//! range taken from the data, `generate` never mixing two data sets,
//! `evaluate` refusing a truth file of other data, empty raw files reported.

mod common;

use std::path::Path;
use std::process::Output;

use common::{funnelpulse, funnelpulse_ok};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn generate(dir: &Path, out: &str, args: &[&str]) -> Output {
    funnelpulse(dir, &[&["generate", "--out", out, "--rows", "3000"][..], args].concat(), &[])
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn without_raw_the_first_line_says_the_demo_sample_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let out = funnelpulse(dir.path(), &["run", "01", "--sample-rows", "3000", "--lake", "lake"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = stderr(&out).lines().next().unwrap_or_default().to_string();
    assert!(
        first.starts_with("no --raw given: stage 01 reads the generated demo sample data/sample-3000-14d"),
        "{first}"
    );
    assert!(first.contains("give --raw DIR"), "{first}");
}

#[test]
fn stage_03_streams_the_last_17_days_of_the_data_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(dir.path(), "raw", &["--start", "2024-03-01", "--days", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text =
        funnelpulse_ok(dir.path(), &["run", "01", "03", "--raw", "raw", "--lake", "lake", "--stream-files", "2"]);
    assert!(text.contains(" bronze rows of 3 days (2024-02-16 … 2024-03-03) in 2 files"), "{text}");
    assert!(!text.contains(" 0 bronze rows"), "{text}");
    // The range of the original job, on other data: nothing, and why, in one line.
    let out = funnelpulse(
        dir.path(),
        &["run", "03", "--lake", "lake", "--stream-from", "2019-10-15", "--stream-to", "2019-10-31"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let why: Vec<String> =
        stderr(&out).lines().filter(|l| l.contains("stream_input is empty")).map(String::from).collect();
    assert_eq!(why.len(), 1, "{}", stderr(&out));
    assert!(
        why[0].contains("no bronze rows from 2019-10-15 to 2019-10-31 (bronze_events holds 2024-03-01 … 2024-03-03)")
    );
}

#[test]
fn generate_does_not_leave_other_data_beside_its_files() {
    let dir = tempfile::tempdir().unwrap();
    assert!(generate(dir.path(), "raw", &["--start", "2019-11-29", "--days", "2"]).status.success());
    assert_eq!(names(&dir.path().join("raw")), ["2019-Nov.csv", "truth.json"]);
    // Without --force: refused, nothing touched.
    let out = generate(dir.path(), "raw", &["--start", "2019-10-01", "--days", "2"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("raw already holds generated data (2019-Nov.csv, truth.json): add --force"));
    assert_eq!(names(&dir.path().join("raw")), ["2019-Nov.csv", "truth.json"]);
    // With --force: the earlier files are gone, and the output says so.
    let out = generate(dir.path(), "raw", &["--start", "2019-10-01", "--days", "2", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 2019-Nov.csv, truth.json"));
    assert_eq!(names(&dir.path().join("raw")), ["2019-Oct.csv", "truth.json"]);
    // Files generate did not write are never deleted, and refused even with --force.
    std::fs::write(dir.path().join("raw/export.csv"), "x\n").unwrap();
    let out = generate(dir.path(), "raw", &["--days", "2", "--force"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("raw holds files generate did not write (export.csv)"), "{}", stderr(&out));
    assert_eq!(names(&dir.path().join("raw")), ["2019-Oct.csv", "export.csv", "truth.json"]);
}

#[test]
fn evaluate_refuses_a_truth_file_of_other_data_and_shows_n_a_where_nothing_was_planted() {
    let dir = tempfile::tempdir().unwrap();
    assert!(generate(dir.path(), "raw", &["--days", "2"]).status.success());
    funnelpulse_ok(dir.path(), &["run", "01", "05", "--raw", "raw", "--lake", "lake"]);
    // Too little data to plant anything: n/a, not a score of 0.
    let text = funnelpulse_ok(dir.path(), &["evaluate", "--lake", "lake", "--truth", "raw/truth.json"]);
    let overall = text.lines().find(|l| l.contains("v2") && l.contains("overall")).unwrap_or_default();
    let columns: Vec<&str> = overall.split_whitespace().collect();
    assert_eq!(columns[..3], ["v2", "overall", "0"], "{text}");
    assert_eq!(columns[6..], ["n/a", "n/a"], "recall and F1 of nothing planted: {text}");
    let report = dir.path().join("lake/reports/evaluation.json");
    let scored = std::fs::read(&report).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&scored).unwrap();
    assert!(json["detectors"][1]["overall"]["recall"].is_null(), "{json}");

    // A truth of other days.
    assert!(generate(dir.path(), "other", &["--start", "2024-01-01", "--days", "2"]).status.success());
    let out = funnelpulse(dir.path(), &["evaluate", "--lake", "lake", "--truth", "other/truth.json"], &[]);
    assert!(!out.status.success());
    let error = stderr(&out);
    assert!(
        error.contains("covers 2024-01-01 … 2024-01-02") && error.contains("holds 2019-10-01 … 2019-10-02"),
        "{error}"
    );
    // A truth of the same days planting anomalies in brands the lake does not have.
    let truth = r#"{"seed": 1, "rows": 3000, "start": "2019-10-01", "days": 2, "anomalies": [
        {"brand": "no-such-brand", "window_start": "2019-10-02T18:00:00", "type": "drop", "expected_views": 120.0}]}"#;
    std::fs::write(dir.path().join("forged.json"), truth).unwrap();
    let out = funnelpulse(dir.path(), &["evaluate", "--lake", "lake", "--truth", "forged.json"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("brands the lake has no events of (e.g. \"no-such-brand\")"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&report).unwrap(), scored, "evaluation.json was overwritten");
}

#[test]
fn empty_and_header_only_raw_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::write(raw.join("a.csv"), "").unwrap();
    std::fs::write(
        raw.join("b.csv"),
        "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n",
    )
    .unwrap();
    let out = funnelpulse(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake"], &[]);
    assert!(!out.status.success());
    let error = stderr(&out);
    // The empty file is listed as not read, the header-only one as read without rows.
    assert!(error.contains("not read: a.csv (empty file (0 bytes)"), "{error}");
    assert!(error.contains("no data rows in raw: b.csv holds no data rows (only a header)"), "{error}");
    // Beside a file with rows: one line naming each.
    assert!(generate(dir.path(), "more", &["--days", "1"]).status.success());
    std::fs::rename(dir.path().join("more/2019-Oct.csv"), raw.join("c.csv")).unwrap();
    let out = funnelpulse(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let notes: Vec<String> =
        stderr(&out).lines().filter(|l| l.contains("nothing is read from it")).map(String::from).collect();
    assert_eq!(notes.len(), 1, "{}", stderr(&out));
    assert!(notes[0].contains("b.csv holds no data rows"), "{notes:?}");
    assert!(stderr(&out).contains("not read: a.csv (empty file"), "{}", stderr(&out));
}
