//! A stage killed midway leaves the previous tables readable, and a re-run
//! gives identical tables.

mod common;

use std::path::Path;

use common::tables::{Row, read_rows, sorted};
use common::{funnelpulse, funnelpulse_ok, generate};

async fn stage01_tables(lake: &Path) -> Vec<Vec<Row>> {
    let mut out = Vec::new();
    for (table, columns) in [
        ("bronze_events", &["event_time", "event_type", "product_id", "price", "user_session"][..]),
        ("silver_events", &["event_time", "event_type", "product_id", "price", "brand_norm"][..]),
        ("gold_funnel_hourly_brand", &["window_start", "brand", "views", "carts", "purchases", "revenue"][..]),
    ] {
        let partition = if table.starts_with("gold") { "window_date" } else { "event_date" };
        out.push(sorted(read_rows(lake, table, partition, columns).await));
    }
    out
}

fn crash(dir: &Path, point: &str) -> String {
    let out = funnelpulse(dir, &["run", "01", "--raw", "raw", "--lake", "lake"], &[("FUNNELPULSE_FAULT", point)]);
    assert!(!out.status.success(), "the run should have been aborted at {point}");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test]
async fn a_killed_run_leaves_the_old_tables_and_a_rerun_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 5_000, 2);
    let lake = dir.path().join("lake");
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake"]);
    let before = stage01_tables(&lake).await;

    // Killed while writing (silver staged, gold not yet): nothing changes.
    let stderr = crash(dir.path(), "after-staging:silver_events");
    assert!(stderr.contains("aborting at after-staging:silver_events"), "{stderr}");
    assert_eq!(stage01_tables(&lake).await, before);
    // The killed run's files are left in its run folder; vacuum removes them.
    let runs = |table: &str| std::fs::read_dir(lake.join("tables").join(table)).unwrap().count();
    assert_eq!(runs("silver_events"), 3, "the log, the committed run and the killed run's folder");
    let args = ["lake", "vacuum", "--lake", "lake", "--retain", "0s", "--force", "silver_events"];
    let out = funnelpulse_ok(dir.path(), &args);
    assert!(out.contains("silver_events"), "{out}");
    assert_eq!(runs("silver_events"), 2, "vacuum left the killed run's files");
    assert_eq!(stage01_tables(&lake).await, before);
    let refused = funnelpulse(dir.path(), &["lake", "vacuum", "--lake", "lake", "--retain", "10m"], &[]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("use at least 1h, or --force"), "{refused:?}");

    // Killed between two table commits: bronze is new, silver and gold are
    // not; the next run makes all of them equal to a complete run again.
    let stderr = crash(dir.path(), "after-commit:bronze_events");
    assert!(stderr.contains("aborting at after-commit:bronze_events"), "{stderr}");
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake"]);
    assert_eq!(stage01_tables(&lake).await, before);
}

#[tokio::test]
async fn a_stray_file_beside_a_written_table_fails_the_stage_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 5_000, 2);
    let lake = dir.path().join("lake");
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake"]);
    let before = stage01_tables(&lake).await;

    // As a task that died midway leaves a partial file beside its retry's.
    let out = funnelpulse(
        dir.path(),
        &["run", "01", "--raw", "raw", "--lake", "lake"],
        &[("FUNNELPULSE_FAULT", "stray-file:silver_events")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the stage must fail: {stderr}");
    assert!(stderr.contains("silver_events: the run's files hold the rows its jobs wrote"), "{stderr}");
    assert_eq!(stage01_tables(&lake).await, before);
    let runs = std::fs::read_dir(lake.join("tables/silver_events")).unwrap().count();
    assert_eq!(runs, 2, "the failed run's files are thrown away (left: the log and one run's folder)");
}
