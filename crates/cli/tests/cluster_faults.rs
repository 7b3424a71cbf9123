//! A cluster that loses an executor or its scheduler in the middle of a
//! stage: the stage ends with the correct tables (cancelling what hangs and
//! retrying on a fresh connection) or fails clearly with the previous tables
//! intact — it never commits a wrong table.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use common::tables::{Row, assert_same_rows, read_first};
use common::{FUNNELPULSE, LocalCluster, funnelpulse_ok, generate};
use funnelpulse_engine::args::ClusterArgs;
use funnelpulse_engine::attempts::is_cluster_failure;
use funnelpulse_engine::session::{Engine, EngineMode};
use futures::StreamExt;

/// Raw data, and the tables of stages 01–02 run embedded on it.
struct Fixture {
    dir: tempfile::TempDir,
    raw: PathBuf,
    expected: Vec<(&'static str, Vec<Row>)>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let raw = generate(dir.path(), 150_000, 6);
    let lake = dir.path().join("reference-lake");
    funnelpulse_ok(dir.path(), &["run", "01", "02", "--raw", raw.to_str().unwrap(), "--lake", lake.to_str().unwrap()]);
    let expected = read_first(&lake, 6).await;
    Fixture { dir, raw, expected }
}

/// `funnelpulse run 01 02` against the cluster, output in `<dir>/<name>.log`.
fn start_stages(fixture: &Fixture, cluster: &LocalCluster, lake: &Path, name: &str) -> (Child, PathBuf) {
    start_stages_with(fixture, cluster, lake, name, "30s", 2)
}

fn start_stages_with(
    fixture: &Fixture,
    cluster: &LocalCluster,
    lake: &Path,
    name: &str,
    job_timeout: &str,
    stage_retries: u32,
) -> (Child, PathBuf) {
    let log = fixture.dir.path().join(format!("{name}.log"));
    let child = Command::new(FUNNELPULSE)
        .current_dir(fixture.dir.path())
        .args(["run", "01", "02", "--raw", fixture.raw.to_str().unwrap(), "--lake", lake.to_str().unwrap()])
        .args([
            "--scheduler",
            &cluster.url(),
            "--job-timeout",
            job_timeout,
            "--stage-retries",
            &stage_retries.to_string(),
            "--cluster-wait",
            "60s",
        ])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .spawn()
        .unwrap();
    (child, log)
}

/// Waits until the stage is well under way: some jobs done, one running.
fn wait_mid_stage(cluster: &LocalCluster, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while cluster.jobs_with_status("Completed") < 3 || cluster.jobs_with_status("Running") == 0 {
        assert!(child.try_wait().unwrap().is_none(), "the stages ended before the fault was injected");
        assert!(Instant::now() < deadline, "no job got under way:\n{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the stages to end; they must end, whatever happened.
fn wait_end(child: &mut Child, cluster: &LocalCluster, log: &Path) -> (ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the stages hung after the fault:\n{}\n{}", output(log), cluster.logs());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    (status, output(log))
}

fn output(log: &Path) -> String {
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    format!("{}{}", read(log), read(&log.with_extension("err")))
}

async fn assert_tables(lake: &Path, expected: &[(&'static str, Vec<Row>)], context: &str) {
    for ((table, actual), (_, wanted)) in read_first(lake, 6).await.into_iter().zip(expected) {
        assert_same_rows(&format!("{table} ({context})"), actual, wanted.clone());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_executor_killed_mid_stage_never_leaves_a_wrong_table() {
    let fixture = fixture().await;
    let mut cluster = LocalCluster::start(2);
    // A previous version of the tables, from other data: a failed run must leave it as it was.
    let lake = fixture.dir.path().join("lake");
    let older_dir = fixture.dir.path().join("older");
    std::fs::create_dir_all(&older_dir).unwrap();
    let older = generate(&older_dir, 3_000, 2);
    funnelpulse_ok(
        fixture.dir.path(),
        &["run", "01", "02", "--raw", older.to_str().unwrap(), "--lake", lake.to_str().unwrap()],
    );
    let previous = read_first(&lake, 6).await;

    let (mut child, log) = start_stages(&fixture, &cluster, &lake, "executor-killed");
    wait_mid_stage(&cluster, &mut child);
    cluster.kill_executor(0);
    let (status, output) = wait_end(&mut child, &cluster, &log);
    if status.success() {
        assert_tables(&lake, &fixture.expected, "after losing an executor").await;
    } else {
        assert!(output.contains("error:"), "no clear error:\n{output}");
        assert_tables(&lake, &previous, "a failed run must keep the previous version").await;
    }
    eprintln!("outcome: {}\n{output}", if status.success() { "completed" } else { "failed clearly" });
    // With one executor left, the retry should get through.
    assert!(status.success(), "the stages failed although one executor was left:\n{output}\n{}", cluster.logs());
    // And the survivor still gets tasks: with push scheduling, Ballista 55
    // can leak its slots with the lost executor's tasks and starve it.
    let url = cluster.url();
    let again = common::funnelpulse(
        fixture.dir.path(),
        &[
            "run",
            "02",
            "--lake",
            lake.to_str().unwrap(),
            "--scheduler",
            &url,
            "--job-timeout",
            "30s",
            "--stage-retries",
            "0",
        ],
        &[],
    );
    let text = format!("{}{}", String::from_utf8_lossy(&again.stdout), String::from_utf8_lossy(&again.stderr));
    assert!(again.status.success(), "the surviving executor gets no task:\n{text}\n{}", cluster.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_scheduler_makes_the_stage_resubmit_and_commit_once() {
    let fixture = fixture().await;
    let mut cluster = LocalCluster::start(2);
    let lake = fixture.dir.path().join("lake");
    let (mut child, log) = start_stages(&fixture, &cluster, &lake, "scheduler-restarted");
    wait_mid_stage(&cluster, &mut child);
    cluster.restart_scheduler();
    let (status, output) = wait_end(&mut child, &cluster, &log);
    assert!(status.success(), "the stages did not survive the scheduler restart:\n{output}\n{}", cluster.logs());
    assert!(output.contains("attempt 1 of 3 failed on the cluster"), "the lost scheduler went unnoticed:\n{output}");
    // Row for row equal: no table is missing rows or holds them twice.
    assert_tables(&lake, &fixture.expected, "after a scheduler restart").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_executor_that_stops_answering_mid_stage_never_leaves_a_wrong_table() {
    let fixture = fixture().await;
    let mut cluster = LocalCluster::start(2);
    let lake = fixture.dir.path().join("lake");
    let (mut child, log) = start_stages(&fixture, &cluster, &lake, "executor-frozen");
    wait_mid_stage(&cluster, &mut child);
    cluster.freeze_executor(1);
    let (status, output) = wait_end(&mut child, &cluster, &log);
    eprintln!("{output}");
    assert!(status.success(), "the stages failed although one executor was left:\n{output}\n{}", cluster.logs());
    assert_tables(&lake, &fixture.expected, "after an executor stopped answering").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_job_is_cancelled_by_the_job_timeout_and_the_stage_retried() {
    let fixture = fixture().await;
    let mut cluster = LocalCluster::start(2);
    let lake = fixture.dir.path().join("lake");
    // No executor answers: the running job cannot end by itself. The job
    // timeout (5 s) is shorter than the scheduler's executor timeout (10 s).
    // Until the scheduler declares the still-frozen executor dead, a retry
    // may be given to it and time out too: allow a few (a loaded machine is slow).
    let (mut child, log) = start_stages_with(&fixture, &cluster, &lake, "all-frozen", "5s", 5);
    wait_mid_stage(&cluster, &mut child);
    cluster.freeze_executor(0);
    cluster.freeze_executor(1);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !output(&log).contains("attempt 1 of 6 failed on the cluster") {
        assert!(child.try_wait().unwrap().is_none(), "the stages ended without a retry:\n{}", output(&log));
        assert!(Instant::now() < deadline, "no attempt failed:\n{}\n{}", output(&log), cluster.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    // One node comes back; the retry waits for it.
    cluster.thaw_executor(0);
    let (status, output) = wait_end(&mut child, &cluster, &log);
    eprintln!("{output}");
    assert!(status.success(), "the retry did not get through:\n{output}\n{}", cluster.logs());
    // The freeze lands in a running job (the job timeout cancels it) or, when that job's
    // tasks were done, in the client's fetch of its result (the fetch timeout ends it):
    // since empty tables are scanned as nothing (Delta), a short count job can be the one.
    let cancelled = output.contains("(the job timeout): cancelling it");
    let fetch_timed_out = output.contains("failed to fetch partition") && output.contains("Timeout expired");
    assert!(cancelled || fetch_timed_out, "neither the watchdog nor the fetch timeout ended the hang:\n{output}");
    assert!(output.contains("retrying (attempt 2 of 6)"), "{output}");
    assert_tables(&lake, &fixture.expected, "after a cancelled job and a retry").await;
}

/// Rows of the table whose result the client streams from a frozen executor:
/// ~100 MB of Arrow, far more than the sockets and HTTP/2 windows buffer.
const RESULT_ROWS: usize = 4_000_000;

/// A Parquet file of `RESULT_ROWS` rows of barely compressible numbers.
async fn write_numbers(file: &Path) {
    let ctx = datafusion::prelude::SessionContext::new();
    let sql = format!(
        "COPY (SELECT value AS a, value * 2654435761 % 1000000007 AS b, value * 40503 % 65537 AS c \
         FROM generate_series(1, {RESULT_ROWS})) TO '{}' STORED AS PARQUET",
        file.display()
    );
    ctx.sql(&sql).await.unwrap().collect().await.unwrap();
}

/// The executor holding a completed job's result stops answering while the
/// client streams it. The job watchdog cannot help (the job is Completed),
/// and Ballista sets no timeout on that fetch: our HTTP/2 pings end the
/// stream with an error the stage runner retries — never a hang, never a
/// quietly short result.
#[tokio::test(flavor = "multi_thread")]
async fn a_result_stream_from_an_executor_that_stops_answering_fails_within_the_fetch_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("numbers.parquet");
    write_numbers(&file).await;
    let mut cluster = LocalCluster::start(1);
    let options = ClusterArgs { fetch_timeout: Duration::from_secs(3), ..ClusterArgs::default() };
    let engine = Engine::connect_with(EngineMode::Remote { scheduler: cluster.url() }, &options).await.unwrap();
    let table = engine.ctx.read_parquet(file.to_str().unwrap(), Default::default()).await.unwrap();
    let mut stream = table.execute_stream().await.unwrap();
    let mut rows = stream.next().await.expect("no first batch").unwrap().num_rows();

    cluster.freeze_executor(0);
    let frozen_at = Instant::now();
    let read_rest = async {
        while let Some(batch) = stream.next().await {
            match batch {
                Ok(batch) => rows += batch.num_rows(),
                Err(error) => return Some(error),
            }
        }
        None
    };
    let ending = tokio::time::timeout(Duration::from_secs(90), read_rest).await;
    let waited = frozen_at.elapsed();
    cluster.thaw_executor(0);

    let ending = ending.unwrap_or_else(|_| panic!("the result stream hung on a frozen executor ({rows} rows read)"));
    let error = ending.unwrap_or_else(|| {
        panic!("the stream ended without an error after {rows} of {RESULT_ROWS} rows from a frozen executor")
    });
    assert!(rows < RESULT_ROWS, "{rows} rows although the executor was frozen");
    assert!(is_cluster_failure(&funnelpulse_engine::Error::from(error)), "a stage would not retry this error");
    assert!(waited < Duration::from_secs(30), "the stall was noticed only after {waited:?}");
}
