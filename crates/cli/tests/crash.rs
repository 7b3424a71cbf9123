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

/// Runs until `point` and leaves the process paused there, alive.
#[allow(clippy::zombie_processes)] // the caller kills and waits for it
fn paused_at(dir: &Path, args: &[&str], point: &str) -> std::process::Child {
    use std::io::BufRead;
    let mut child = common::stream::command(dir, args)
        .env("FUNNELPULSE_PAUSE", point)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains(&format!("paused at {point}")) {
            std::thread::spawn(move || lines.for_each(drop));
            return child;
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    panic!("the run never reached {point}:\n{seen}");
}

fn names(folder: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    let mut names: Vec<String> = entries.map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    names.sort();
    names
}

/// Files under `folder` with their sizes.
fn files_with_sizes(folder: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_with_sizes(&path));
        } else {
            out.push((path.clone(), path.metadata().unwrap().len()));
        }
    }
    out.sort();
    out
}

/// Run folders of the tables that no version of their table names: `table/run-<run>`.
fn uncommitted_run_folders(dir: &Path, lake: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for table in names(&lake.join("tables")) {
        let history = funnelpulse_ok(dir, &["lake", "history", "--lake", "lake", &table, "--limit", "1000"]);
        for folder in names(&lake.join("tables").join(&table)) {
            if let Some(run) = folder.strip_prefix("run-").filter(|run| !history.contains(run)) {
                out.push(format!("{table}/run-{run}"));
            }
        }
    }
    out
}

/// The run id of the marker `_runs/<run>.json` written by process `pid`.
fn run_of(lake: &Path, pid: u32) -> String {
    for name in names(&lake.join("_runs")) {
        let marker: serde_json::Value =
            serde_json::from_slice(&std::fs::read(lake.join("_runs").join(name)).unwrap()).unwrap();
        if marker["pid"] == pid {
            return marker["run"].as_str().unwrap().to_string();
        }
    }
    panic!("no marker of process {pid}");
}

/// The files of `run` in every table, with their sizes.
fn run_files(lake: &Path, run: &str) -> Vec<(std::path::PathBuf, u64)> {
    let tables = lake.join("tables");
    names(&tables)
        .iter()
        .map(|t| tables.join(t).join(format!("run-{run}")))
        .filter(|folder| folder.exists())
        .flat_map(|folder| files_with_sizes(&folder))
        .collect()
}

#[tokio::test]
async fn runs_killed_midway_leave_no_orphan_files_and_live_runs_are_untouched() {
    use common::stream::kill_at;
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 5_000, 2);
    let lake = dir.path().join("lake");
    let run01 = ["run", "01", "--raw", "raw", "--lake", "lake"];
    let run03 = ["run", "03", "--lake", "lake", "--stream-from", "2019-10-01", "--stream-to", "2019-10-02"];
    funnelpulse_ok(dir.path(), &run01);
    funnelpulse_ok(dir.path(), &run03);
    let before = stage01_tables(&lake).await;

    // Two runs alive, paused while writing: no other run may touch their files.
    let mut live03 = paused_at(dir.path(), &run03, "after-staging:stream_input");
    let mut live01 = paused_at(dir.path(), &run01, "after-staging:silver_events");
    let (run_03, run_01) = (run_of(&lake, live03.id()), run_of(&lake, live01.id()));
    let live_staging = files_with_sizes(&lake.join("_staging").join(&run_03));
    let live_tables = run_files(&lake, &run_01);
    assert!(!live_staging.is_empty() && !live_tables.is_empty());

    // SIGKILLed with stage 03's files staged, while writing tables and between two table
    // commits: each run removes what the runs killed before it left, whichever stage.
    for _ in 0..2 {
        kill_at(dir.path(), &run03, "after-staging:stream_input");
    }
    assert_eq!(names(&lake.join("_staging")).len(), 2, "the live run's and the last killed run's");
    for point in ["after-staging:bronze_events", "after-staging:silver_events", "after-commit:bronze_events"] {
        kill_at(dir.path(), &run01, point);
    }
    assert_eq!(names(&lake.join("_staging")), vec![run_03.clone()], "the killed stage 03's staging is gone");
    let uncommitted = uncommitted_run_folders(dir.path(), &lake);
    assert!(uncommitted.iter().any(|f| !f.ends_with(&run_01)), "the last killed run's files: {uncommitted:?}");

    // The next run removes what the killed runs left, and nothing of the live runs.
    let out = funnelpulse_ok(dir.path(), &run01);
    assert!(out.contains("left by the killed run"), "{out}");
    assert_eq!(stage01_tables(&lake).await, before);
    assert_eq!(names(&lake.join("_staging")), vec![run_03.clone()], "only the live run's staging is left");
    assert_eq!(files_with_sizes(&lake.join("_staging").join(&run_03)), live_staging, "the live staging changed");
    assert_eq!(run_files(&lake, &run_01), live_tables, "the live run's table files changed");
    let left = uncommitted_run_folders(dir.path(), &lake);
    assert!(left.iter().all(|f| f.ends_with(&run_01)), "only the live run's files are uncommitted: {left:?}");

    // Once the live runs are killed too, vacuum removes their files.
    for child in [&mut live03, &mut live01] {
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let out = funnelpulse_ok(dir.path(), &["lake", "vacuum", "--lake", "lake"]);
    assert!(out.contains(&format!("left by the killed run {run_03}")), "{out}");
    assert!(names(&lake.join("_staging")).is_empty(), "{:?}", names(&lake.join("_staging")));
    assert!(names(&lake.join("_runs")).is_empty(), "{:?}", names(&lake.join("_runs")));
    assert_eq!(uncommitted_run_folders(dir.path(), &lake), Vec::<String>::new());
    assert_eq!(stage01_tables(&lake).await, before);
}
