//! Stage 05 end to end: both detectors against independent implementations,
//! the evaluation command, and the local cluster against embedded.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::anomalies::{self, CLASSIC_EXTRA, GOLD_COLUMNS, V2_EXTRA, V2Options};
use common::tables::{Row, assert_close_rows, read_rows};
use common::{LocalCluster, funnelpulse_ok, generate};

/// Thresholds low enough for small test data to flag rows.
const OPTIONS: [&str; 12] = [
    "--baseline-min-views",
    "5",
    "--anomaly-min-views",
    "12",
    "--z-threshold",
    "1.8",
    "--v2-min-views",
    "5",
    "--v2-fdr",
    "0.9",
    "--v2-min-change",
    "0.1",
];

struct Run {
    _dir: tempfile::TempDir,
    raw: PathBuf,
    lake: PathBuf,
}

/// Stages 01 and 05 embedded on 6 days of data with planted anomalies.
fn embedded_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let raw = generate(dir.path(), 80_000, 6);
        let lake = dir.path().join("lake");
        let mut args = vec!["run", "01", "05", "--raw", raw.to_str().unwrap(), "--lake", lake.to_str().unwrap()];
        args.extend(OPTIONS);
        funnelpulse_ok(dir.path(), &args);
        Run { _dir: dir, raw, lake }
    })
}

async fn gold(lake: &Path) -> Vec<Row> {
    read_rows(lake, "gold_funnel_hourly_brand", "window_date", &GOLD_COLUMNS).await
}

async fn classic_table(lake: &Path) -> Vec<Row> {
    read_rows(lake, "gold_anomalies_hourly_brand", "window_date", &anomalies::columns(&CLASSIC_EXTRA)).await
}

async fn v2_table(lake: &Path) -> Vec<Row> {
    read_rows(lake, "gold_anomalies_hourly_brand_v2", "window_date", &anomalies::columns(&V2_EXTRA)).await
}

#[tokio::test]
async fn classic_detector_equals_the_semantics() {
    let run = embedded_run();
    let expected = anomalies::classic(&gold(&run.lake).await, 5, 12, 1.8);
    assert!(expected.len() >= 5, "too few anomalies to test with: {}", expected.len());
    assert_close_rows("gold_anomalies_hourly_brand", classic_table(&run.lake).await, expected, 1e-9);
}

#[tokio::test]
async fn v2_detector_equals_an_independent_implementation() {
    let run = embedded_run();
    let options = V2Options { min_views: 5, prior_views: 500.0, fdr: 0.9, min_change: 0.1 };
    let expected = anomalies::v2(&gold(&run.lake).await, &options);
    assert!(expected.len() >= 3, "too few anomalies to test with: {}", expected.len());
    // p- and q-values: our erfc is a fit with relative error below 1.2e-7.
    assert_close_rows("gold_anomalies_hourly_brand_v2", v2_table(&run.lake).await, expected, 1e-6);
}

/// `--v2-prior-views 0`: an hour whose brand has no other view at that hour of
/// day has no baseline and is not tested (0/0 once made a NaN expected rate,
/// which sorts above every number and poisons its brand's dispersion).
#[tokio::test]
async fn v2_without_a_prior_skips_hours_without_a_baseline() {
    let run = embedded_run();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    common::copy_dir(&run.lake, &lake);
    let gold = gold(&lake).await;
    assert!(anomalies::hours_alone_at_their_hour_of_day(&gold, 5) > 0, "no hour without a baseline to test with");
    let mut args = vec!["run", "05", "--lake", lake.to_str().unwrap()];
    args.extend(OPTIONS);
    args.extend(["--v2-prior-views", "0"]);
    funnelpulse_ok(dir.path(), &args);
    let options = V2Options { min_views: 5, prior_views: 0.0, fdr: 0.9, min_change: 0.1 };
    let expected = anomalies::v2(&gold, &options);
    assert!(!expected.is_empty(), "too few anomalies to test with");
    assert_close_rows("v2 without a prior", v2_table(&lake).await, expected, 1e-6);
}

/// Default options on 12 days at the default data's density (143k rows a
/// day): 12 planted anomalies, scored by `funnelpulse evaluate`.
#[tokio::test]
async fn evaluation_scores_both_detectors_against_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let raw = generate(dir.path(), 1_720_000, 12);
    let lake = dir.path().join("lake");
    funnelpulse_ok(dir.path(), &["run", "01", "05", "--raw", raw.to_str().unwrap(), "--lake", lake.to_str().unwrap()]);
    let out_file = dir.path().join("evaluation.json");
    let truth = raw.join("truth.json");
    let out = funnelpulse_ok(
        dir.path(),
        &[
            "evaluate",
            "--lake",
            lake.to_str().unwrap(),
            "--truth",
            truth.to_str().unwrap(),
            "--out",
            out_file.to_str().unwrap(),
        ],
    );
    assert!(out.contains("precision") && out.contains("v2"), "{out}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    let in_lake: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.join("reports/evaluation.json")).unwrap()).unwrap();
    assert_eq!(json, in_lake);
    let score = |detector: usize, kind: &str, field: &str| json["detectors"][detector][kind][field].as_f64().unwrap();
    assert_eq!(score(0, "overall", "planted"), 12.0, "{json}");
    // The count-aware test finds the planted hours with few false alarms, and beats the classic one.
    assert!(score(1, "overall", "f1") >= 0.8, "{json}");
    assert!(score(1, "drop", "recall") >= 0.75, "{json}");
    assert!(score(1, "overall", "f1") > score(0, "overall", "f1"), "{json}");
}

#[tokio::test]
async fn local_cluster_anomalies_equal_embedded() {
    let run = embedded_run();
    let cluster = LocalCluster::start(2);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut args = vec!["run", "01", "05", "--raw", run.raw.to_str().unwrap(), "--lake", lake.to_str().unwrap()];
    args.extend(OPTIONS);
    let url = cluster.url();
    args.extend(["--scheduler", &url]);
    funnelpulse_ok(dir.path(), &args);
    // Means and deviations are sums of doubles: the order of addition differs by a few ulps.
    assert_close_rows("classic on cluster", classic_table(&lake).await, classic_table(&run.lake).await, 1e-9);
    assert_close_rows("v2 on cluster", v2_table(&lake).await, v2_table(&run.lake).await, 1e-9);
}
