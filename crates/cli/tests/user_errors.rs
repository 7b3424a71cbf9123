//! Failing commands as a user meets them: each fails fast with one short
//! message that says what failed, where (file, table, address) and what to
//! do, without Ballista's log lines or DataFusion's nested wrappers.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{EXECUTOR, LocalCluster, SCHEDULER, funnelpulse, funnelpulse_ok, generate};

/// stderr of a failed command, checked for the shape every error must have.
fn short_failure(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "expected a failure:\n{stderr}");
    let error_lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with('[')).collect(); // [NN] progress lines
    assert!(error_lines.len() <= 3, "more than a few lines:\n{stderr}");
    for noise in ["DataFusionError", "Shared(", "External(", " ERROR ", "Execution error: Execution error"] {
        assert!(!stderr.contains(noise), "{noise:?} in:\n{stderr}");
    }
    stderr
}

#[test]
fn a_scheduler_that_never_answered_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port(); // nothing listens there
    let scheduler = format!("df://127.0.0.1:{port}");
    let started = Instant::now();
    let out = funnelpulse(dir.path(), &["run", "01", "--scheduler", &scheduler], &[]);
    let stderr = short_failure(&out);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?} (--cluster-wait is for lost clusters)",
        started.elapsed()
    );
    assert!(stderr.contains(&format!("scheduler at {scheduler} does not answer")), "{stderr}");
    assert!(stderr.contains("start the cluster"), "{stderr}");
}

#[test]
fn bad_input_on_a_cluster_fails_once_without_retries() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("raw")).unwrap();
    std::fs::write(dir.path().join("raw/x.csv"), "event_time,event_type\n2019-10-01 10:00:00 UTC,view\n").unwrap();
    let cluster = LocalCluster::start(1);
    let started = Instant::now();
    let out =
        funnelpulse(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake", "--scheduler", &cluster.url()], &[]);
    let stderr = short_failure(&out);
    assert!(stderr.contains("x.csv") && stderr.contains("lacks column(s)"), "{stderr}");
    assert!(!stderr.contains("attempt"), "bad input was retried:\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}

#[test]
fn a_full_disk_says_so_and_leaves_the_tables_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 20_000, 3);
    // A 256 KB file system for the lake: the raw data does not fit as tables.
    let small = dir.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"]).arg(&small).status();
    assert!(mounted.is_ok_and(|s| s.success()), "cannot mount a small tmpfs (the test needs root, as CI has)");
    let _unmount = Unmount(small.clone());
    let out = funnelpulse(dir.path(), &["run", "01", "--raw", "raw", "--lake", "small/lake"], &[]);
    let stderr = short_failure(&out);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(stderr.contains("the disk is full"), "{stderr}");
    assert!(!small.join("lake/tables/bronze_events/_delta_log").exists(), "a table was committed on a full disk");
}

/// Unmounts the test's tmpfs at the end, even when it fails.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_table_file_that_disappears_names_the_table_and_the_likely_cause() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 3_000, 2);
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake"]);
    // As a concurrent run's vacuum would: a file of silver's current version is gone.
    let silver = dir.path().join("lake/tables/silver_events");
    let victim = first_parquet(&silver).expect("silver has files");
    std::fs::remove_file(&victim).unwrap();
    let out = funnelpulse(dir.path(), &["run", "02", "--lake", "lake"], &[]);
    let stderr = short_failure(&out);
    assert!(stderr.contains("silver_events"), "{stderr}");
    assert!(stderr.contains("another run replaced the table"), "{stderr}");
}

fn first_parquet(dir: &Path) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = first_parquet(&path) {
                return Some(found);
            }
        } else if path.extension().is_some_and(|e| e == "parquet") {
            return Some(path);
        }
    }
    None
}

#[test]
fn a_port_in_use_is_named_with_what_to_do() {
    let held = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let out = within_a_minute(Command::new(&*SCHEDULER).args(["--port", &port]).env("RUST_LOG", "off"));
    let stderr = short_failure(&out);
    assert!(stderr.contains(&port) || stderr.contains("in use"), "{stderr}");
    assert!(stderr.contains("a port is taken"), "{stderr}");
    let cluster = LocalCluster::start(0);
    let grpc = common::free_port().to_string();
    let mut executor = Command::new(&*EXECUTOR);
    executor
        .args(["--port", &port, "--grpc-port", &grpc, "--scheduler-host", "127.0.0.1"])
        .args(["--scheduler-port", &cluster.scheduler_port.to_string()])
        .env("RUST_LOG", "off");
    let out = within_a_minute(&mut executor);
    let stderr = short_failure(&out);
    assert!(stderr.contains("a port is taken"), "{stderr}");
}

/// The command's output, failing the test if it has not ended within a minute.
fn within_a_minute(command: &mut Command) -> Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{command:?} still runs after a minute instead of failing");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.wait_with_output().unwrap()
}

/// The user mistakes of issue 16, each one line naming what is wrong, with no
/// secret of the command line echoed back.
#[test]
fn every_user_mistake_is_one_line_naming_the_setting_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("empty")).unwrap();
    std::fs::create_dir_all(d.join("other")).unwrap();
    std::fs::write(d.join("other/mine.csv"), "x\n").unwrap();
    let closed = format!("df://127.0.0.1:{}", common::free_port());
    let lake_with_secret = "gs://bucket/lake?token=SECRET1";
    // Every Google endpoint on a closed loopback port: nothing leaves this machine.
    let nowhere = format!("127.0.0.1:{}", common::free_port());
    let nowhere_url = format!("http://{nowhere}");
    let no_gcp = vec![
        ("GOOGLE_BASE_URL", nowhere_url.as_str()),
        ("GCE_METADATA_HOST", nowhere.as_str()),
        ("GCE_METADATA_IP", nowhere.as_str()),
    ];
    // (arguments, environment, what the one line must name)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["run", "01", "--raw", "nowhere", "--lake", "lake"], vec![], "nowhere"),
        (vec!["run", "01", "--raw", "empty", "--lake", "lake"], vec![], "no raw CSV files"),
        (vec!["run", "01", "--raw", "other", "--lake", "lake"], vec![], "mine.csv"),
        (vec!["run", "01", "--raw", "empty"], vec![("FUNNELPULSE_BAD_ROWS", "sometimes")], "FUNNELPULSE_BAD_ROWS"),
        (vec!["run", "04", "--max-clock-skew", "soon"], vec![], "--max-clock-skew"),
        (vec!["run", "01", "--raw", "empty", "--scheduler", &closed], vec![], "does not answer"),
        (vec!["run", "05", "--lake", lake_with_secret], no_gcp.clone(), "gs://bucket"),
        (vec!["generate", "--out", "other", "--rows", "10"], vec![], "other"),
        (vec!["alert", "--lake", "lake"], vec![], "--alert-webhook"),
    ];
    for (args, env, named) in cases {
        let out = funnelpulse(d, &args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{args:?} succeeded:\n{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with('[') && !l.starts_with("running ")).collect();
        assert!(lines.len() <= 3, "{args:?}: more than a few lines:\n{stderr}");
        assert!(stderr.contains(named), "{args:?}: {named:?} not named:\n{stderr}");
        assert!(!stderr.contains("SECRET1"), "{args:?}: the secret leaked:\n{stderr}");
        for noise in ["DataFusionError", "Shared(", "External("] {
            assert!(!stderr.contains(noise), "{args:?}: {noise:?} in:\n{stderr}");
        }
    }
    // A settings file with a value of the wrong type names the key and the file.
    std::fs::write(d.join("funnelpulse.toml"), "lake = 5\n").unwrap();
    let out = funnelpulse(d, &["run", "05"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && stderr.contains("\"lake\"") && stderr.contains("funnelpulse.toml"), "{stderr}");
    assert!(stderr.trim().lines().count() <= 2, "{stderr}");
}
