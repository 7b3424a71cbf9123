//! Stages 01+02 end to end: embedded against an independent reference, the
//! local multi-process cluster against embedded, and re-runs against other readers.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::reference;
use common::tables::{Row, assert_same_rows, delta_files, read_first, read_rows, sorted};
use common::{LocalCluster, funnelpulse_ok, generate};

/// Hand-made rows for the rules' edge cases, beside the generated files.
const TRICKY_CSV: &str = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-10-02 23:59:59 UTC,view,100,1487580005134238553,Appliances.Kitchen-Knife Set,RuNail,5.00,1,sA
2019-10-02 23:59:59 UTC,view,100,1487580005134238553,,runail,3.00,1,sA
2019-10-02 23:59:59 UTC,view,100,2,,zzz,3.00,1,sA
2019-10-03 00:00:00 UTC,cart,101,5,,,10.00,2,
2019-10-03 00:00:00 UTC,cart,101,5,,,10.00,2,
2019-10-03T00:30:00Z,purchase,102,5,furniture.bathroom.bath,Grattol,30.00,2,sB
2019-10-03 00:30:00,purchase,103,5,,grattol,60.00,2,sB
2019-10-03 01:00:00 UTC,view,104,5,,grattol,0.00,3,sC
2019-10-03 01:00:00 UTC,view,105,5,,grattol,-2.50,3,sC
2019-10-03 01:00:00 UTC,remove_from_cart,106,5,,grattol,9.99,3,sC
2019-10-03 01:00:00 UTC,purchase,106,9223372036854775807,,grattol,29.99,3,sC
";

struct Run {
    _dir: tempfile::TempDir,
    raw: PathBuf,
    lake: PathBuf,
}

/// One embedded run of `funnelpulse run all`, shared by the tests of this file.
fn embedded_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let raw = generate(dir.path(), 20_000, 4);
        std::fs::write(raw.join("tricky.csv"), TRICKY_CSV).unwrap();
        let lake = dir.path().join("lake");
        funnelpulse_ok(dir.path(), &["run", "all", "--raw", raw.to_str().unwrap(), "--lake", lake.to_str().unwrap()]);
        Run { _dir: dir, raw, lake }
    })
}

async fn read_all(lake: &Path) -> Vec<(&'static str, Vec<Row>)> {
    read_first(lake, 6).await
}

#[tokio::test]
async fn embedded_tables_equal_an_independent_reference() {
    let run = embedded_run();
    let events = reference::read_raw(&run.raw);
    let silver = reference::silver(&events);
    let expected = [
        reference::bronze_rows(&events),
        reference::silver_rows(&silver),
        reference::hourly_brand(&silver),
        reference::daily_brand(&silver),
        reference::daily_category(&silver),
        reference::hourly_price_band(&silver),
    ];
    for ((table, actual), expected) in read_all(&run.lake).await.into_iter().zip(expected) {
        assert!(!actual.is_empty(), "{table} is empty");
        assert_same_rows(table, actual, expected);
    }
}

#[tokio::test]
async fn local_cluster_tables_are_identical_to_embedded() {
    let run = embedded_run();
    let cluster = LocalCluster::start(2);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = funnelpulse_ok(
        dir.path(),
        &[
            "run",
            "all",
            "--raw",
            run.raw.to_str().unwrap(),
            "--lake",
            lake.to_str().unwrap(),
            "--scheduler",
            &cluster.url(),
        ],
    );
    assert!(out.contains("Ballista scheduler df://127.0.0.1"), "{out}");
    assert!(out.contains("stage 05 done") && out.contains("Top 10 brands by revenue"), "{out}");
    // The report's figures come from the same tables: identical apart from when and where it ran.
    let summary = |lake: &Path| {
        let mut s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(lake.join("reports/summary.json")).unwrap()).unwrap();
        s["generated_at"] = serde_json::Value::Null;
        s["lake"] = serde_json::Value::Null;
        s
    };
    assert_eq!(summary(&lake), summary(&run.lake), "the report differs between cluster and embedded");
    for ((table, on_cluster), (_, embedded)) in read_all(&lake).await.into_iter().zip(read_all(&run.lake).await) {
        assert_eq!(sorted(on_cluster), sorted(embedded), "{table} differs between cluster and embedded");
    }
}

/// Files on disk under a table folder (data files, not the log), relative to it.
fn files_on_disk(lake: &Path, table: &str) -> Vec<String> {
    let root = lake.join("tables").join(table);
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    files.retain(|f| !f.starts_with("_delta_log"));
    files.sort();
    files
}

/// The run folders (`run-<id>`) of the table's current files, as delta-rs sees them.
async fn current_runs(lake: &Path, table: &str) -> BTreeSet<String> {
    let root = lake.join("tables").join(table);
    let files = delta_files(lake, table, "event_date").await;
    files
        .iter()
        .map(|(f, _)| f.strip_prefix(&root).unwrap().iter().next().unwrap().to_string_lossy().to_string())
        .collect()
}

const STAGE01_TABLES: [&str; 4] = ["bronze_events", "bronze_rejects", "silver_events", "gold_funnel_hourly_brand"];

/// Runs Python with the Delta readers people use (`pip install deltalake polars`).
fn python(script: &str) -> String {
    let out = std::process::Command::new("python3").args(["-c", script]).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "Python reader failed (pip install deltalake polars): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn a_rerun_replaces_the_tables_and_other_readers_see_exactly_the_current_version() {
    let run = embedded_run();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let args = ["run", "01", "--raw", run.raw.to_str().unwrap(), "--lake", lake.to_str().unwrap()];
    funnelpulse_ok(dir.path(), &args);
    let first = read_first(&lake, 3).await;
    let first_runs = current_runs(&lake, "bronze_events").await;
    funnelpulse_ok(dir.path(), &args);
    for table in STAGE01_TABLES {
        let runs = current_runs(&lake, table).await;
        assert!(runs.len() <= 1, "{table} holds files of several runs: {runs:?}");
        assert!(runs.iter().all(|r| r.starts_with("run-")), "{table}: files outside a run folder: {runs:?}");
    }
    assert_ne!(current_runs(&lake, "bronze_events").await, first_runs, "the re-run did not replace bronze_events");
    for ((table, again), (_, before)) in read_first(&lake, 3).await.into_iter().zip(first) {
        assert_eq!(sorted(again), sorted(before), "{table} changed on re-run");
    }

    // Other Delta readers see exactly the current version, empty tables included;
    // the previous version is still there to travel back to.
    let script = format!(
        "import deltalake, polars\n\
         for t in {STAGE01_TABLES:?}:\n\
         \x20   path = '{lake}/tables/' + t\n\
         \x20   d = deltalake.DeltaTable(path)\n\
         \x20   previous = deltalake.DeltaTable(path, version=d.version() - 1).to_pyarrow_table().num_rows\n\
         \x20   print(t, d.version(), d.to_pyarrow_table().num_rows, polars.read_delta(path).height, previous)\n",
        lake = lake.display()
    );
    let counts = python(&script);
    for (table, partition) in
        [("bronze_events", "event_date"), ("silver_events", "event_date"), ("bronze_rejects", "event_date")]
    {
        let ours = read_rows(&lake, table, partition, &["event_date"]).await.len();
        let line = counts.lines().find(|l| l.starts_with(&format!("{table} "))).unwrap_or_else(|| panic!("{counts}"));
        let numbers: Vec<usize> = line.split(' ').skip(1).map(|n| n.parse().unwrap()).collect();
        assert_eq!(numbers[1..], [ours, ours, ours], "{table}: version, deltalake, polars, previous version: {line}");
    }
    assert!(counts.contains("bronze_rejects 1 0 0 0\n"), "an empty table must be readable: {counts}");

    // Vacuum deletes the replaced files; the current version reads the same.
    let current: Vec<Vec<Row>> = read_first(&lake, 3).await.into_iter().map(|(_, rows)| sorted(rows)).collect();
    let on_disk = files_on_disk(&lake, "bronze_events").len();
    let out =
        funnelpulse_ok(dir.path(), &["lake", "vacuum", "--lake", lake.to_str().unwrap(), "--retain", "0s", "--force"]);
    assert!(out.contains("bronze_events"), "{out}");
    let after = files_on_disk(&lake, "bronze_events");
    assert_eq!(after.len() * 2, on_disk, "vacuum keeps exactly the current files: {after:?}");
    let vacuumed: Vec<Vec<Row>> = read_first(&lake, 3).await.into_iter().map(|(_, rows)| sorted(rows)).collect();
    assert!(vacuumed == current, "vacuum changed the current version");
    let history = funnelpulse_ok(dir.path(), &["lake", "history", "--lake", lake.to_str().unwrap(), "silver_events"]);
    assert!(history.contains("WRITE") && history.lines().count() >= 3, "{history}");
}
