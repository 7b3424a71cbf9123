//! `gs://` for real, offline: the `funnelpulse` binary runs stages with its
//! lake in `gs://test-bucket/some/prefix`, through object_store's GCS client
//! (unchanged, XML API), against local fakes: `fakes/gcs_fake.py` (the GCS
//! XML API) and `fakes/metadata_fake.py` (the GCE metadata server, which
//! hands out the access token). See docs/gcs-testing.md.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::tables::{batch_tables, read_rows, sorted};
use common::{FUNNELPULSE, generate};

const BUCKET: &str = "test-bucket";
const PREFIX: &str = "some/prefix";

/// A fake server (python3 child process) and the port it listens on.
struct Fake {
    child: Child,
    port: u16,
}

impl Fake {
    fn start(script: &str, args: &[&str]) -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes").join(script);
        let mut child = Command::new("python3")
            .arg(&path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("port ").and_then(|p| p.parse().ok());
        let port = port.unwrap_or_else(|| panic!("{script} did not start: {line:?}"));
        Self { child, port }
    }

    /// One HTTP/1.1 request on loopback: (status, body).
    fn call(&self, method: &str, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (head.split(' ').nth(1).unwrap().parse().unwrap(), body.to_string())
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.call("GET", path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fake bucket (mirrored to disk), the fake metadata server, and a home
/// without gcloud credentials.
struct FakeGcp {
    gcs: Fake,
    metadata: Fake,
    dir: tempfile::TempDir,
}

impl FakeGcp {
    /// The metadata server hands out `issued`; the bucket accepts only `accepted`.
    fn start(issued: &str, accepted: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        // A small list page, so that listings go through continuation tokens.
        let gcs = Fake::start(
            "gcs_fake.py",
            &["--bucket", BUCKET, "--mirror", mirror.to_str().unwrap(), "--token", accepted, "--page-size", "1"],
        );
        let metadata = Fake::start("metadata_fake.py", &["--token", issued]);
        Self { gcs, metadata, dir }
    }

    fn lake_url(&self) -> String {
        format!("gs://{BUCKET}/{PREFIX}")
    }

    /// The lake as files on disk (the fake's mirror of the bucket).
    fn mirrored_lake(&self) -> PathBuf {
        self.dir.path().join("mirror").join(BUCKET).join(PREFIX)
    }

    /// object_store's standard variables for a bucket at the fake endpoint
    /// and credentials from the (fake) GCE metadata server.
    fn metadata_env(&self) -> Vec<(String, String)> {
        let metadata = format!("127.0.0.1:{}", self.metadata.port);
        vec![
            ("GOOGLE_BASE_URL".into(), format!("http://127.0.0.1:{}", self.gcs.port)),
            ("GCE_METADATA_HOST".into(), metadata.clone()),
            // object_store falls back to this address: keep it on the fake too.
            ("GCE_METADATA_IP".into(), metadata),
        ]
    }

    /// `funnelpulse ARGS` with `env`, and nothing from this environment that
    /// could pick other credentials (GOOGLE_*, a gcloud home) or route
    /// loopback through a proxy.
    fn funnelpulse(&self, cwd: &Path, args: &[&str], env: &[(String, String)]) -> Output {
        let mut command = Command::new(FUNNELPULSE);
        command.current_dir(cwd).args(args);
        for (key, _) in std::env::vars() {
            let proxy = key.to_ascii_lowercase().ends_with("_proxy");
            if proxy || ["FUNNELPULSE_", "GOOGLE_", "GCE_", "SERVICE_ACCOUNT"].iter().any(|p| key.starts_with(p)) {
                command.env_remove(key);
            }
        }
        command.env("HOME", self.dir.path().join("home")).envs(env.iter().map(|(k, v)| (k, v)));
        command.output().expect("funnelpulse runs")
    }

    /// Keys in the bucket below the lake root, with their sizes.
    fn lake_objects(&self) -> BTreeMap<String, u64> {
        let root = format!("{BUCKET}/{PREFIX}/");
        let objects = self.gcs.json("/_fake/objects");
        let mut out = BTreeMap::new();
        for (key, size) in objects.as_object().unwrap() {
            let rel = key.strip_prefix(&root).unwrap_or_else(|| panic!("object outside the lake root: {key}"));
            out.insert(rel.to_string(), size.as_u64().unwrap());
        }
        out
    }

    fn gcs_requests(&self) -> Vec<serde_json::Value> {
        self.gcs.json("/_fake/requests").as_array().unwrap().clone()
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn assert_ok(out: &Output, what: &str) -> String {
    let text = text(out);
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// A token nobody could guess, so that seeing it proves where it came from.
fn new_token() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("ya29.fake-metadata-token-{}-{nanos}", std::process::id())
}

/// Tables of stages 01 and 02 (stage 01 makes the first 4): the batch tables,
/// with bronze_rejects (empty here, but its folder is committed) second.
fn tables() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let mut tables = batch_tables();
    tables.insert(1, ("bronze_rejects", "event_date", vec!["event_date"]));
    tables
}

/// Data files of a local lake, relative to its root.
fn local_files(root: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    files
}

/// `tables/<t>/<col>=<value>/` of every data file, after checking that the
/// lake holds only tables: each a Delta log and its runs' data files,
/// `tables/<t>/run-<run>/<col>=<value>/*.parquet`, nothing staged elsewhere.
fn table_layout(files: &BTreeSet<String>) -> BTreeSet<String> {
    let partition_col: BTreeMap<_, _> = tables().into_iter().map(|(t, p, _)| (t, p)).collect();
    let mut folders = BTreeSet::new();
    for file in files {
        let parts: Vec<&str> = file.split('/').collect();
        let in_table = parts.len() >= 3 && parts[0] == "tables" && partition_col.contains_key(parts[1]);
        if in_table && parts[2] == "_delta_log" {
            continue;
        }
        let ok = in_table
            && parts.len() == 5
            && parts[2].starts_with("run-")
            && partition_col.get(parts[1]).is_some_and(|col| parts[3].starts_with(&format!("{col}=")))
            && parts[4].ends_with(".parquet");
        assert!(ok, "unexpected object in the lake: {file} (all: {files:#?})");
        folders.insert(format!("{}/{}/{}/", parts[0], parts[1], parts[3]));
    }
    folders
}

/// The first `n` tables of [`tables`] (stage 01 makes 4, stage 02 the 3 others)
/// hold the same rows in both lakes.
async fn assert_same_tables(gs_lake: &Path, local_lake: &Path, n: usize) {
    for (table, partition, columns) in tables().into_iter().take(n) {
        let on_gs = read_rows(gs_lake, table, partition, &columns).await;
        let local = read_rows(local_lake, table, partition, &columns).await;
        if table != "bronze_rejects" {
            assert!(!local.is_empty(), "{table} is empty");
        }
        assert_eq!(on_gs.len(), local.len(), "{table}: row counts differ between gs:// and local");
        assert_eq!(sorted(on_gs), sorted(local), "{table} differs between gs:// and local");
    }
}

/// Raw input and the same stages run on a local lake, for comparison.
struct Reference {
    dir: tempfile::TempDir,
    raw: PathBuf,
    lake: PathBuf,
}

fn reference(stages: &[&str]) -> Reference {
    let dir = tempfile::tempdir().unwrap();
    let raw = generate(dir.path(), 3_000, 2);
    let lake = dir.path().join("lake");
    let mut args = vec!["run"];
    args.extend(stages);
    args.extend(["--raw", raw.to_str().unwrap(), "--lake", lake.to_str().unwrap()]);
    let out = common::funnelpulse(dir.path(), &args, &[]);
    assert_ok(&out, "the local run");
    Reference { dir, raw, lake }
}

#[tokio::test]
async fn stages_on_gs_use_the_metadata_token_and_equal_the_local_lake() {
    let local = reference(&["01", "02"]);
    let token = new_token();
    let gcp = FakeGcp::start(&token, &token);
    let lake = gcp.lake_url();
    let args = ["run", "01", "02", "--raw", local.raw.to_str().unwrap(), "--lake", &lake];
    let out =
        assert_ok(&gcp.funnelpulse(local.dir.path(), &args, &gcp.metadata_env()), "funnelpulse run 01 02 on gs://");
    assert!(out.contains("stage 01 done") && out.contains("stage 02 done"), "{out}");

    // The credential came from the metadata server, asked the way GCE wants.
    let token_path = "/computeMetadata/v1/instance/service-accounts/default/token";
    let asked = gcp.metadata.json("/_fake/requests");
    let asked = asked.as_array().unwrap();
    assert!(
        asked.iter().any(|r| r["path"] == token_path && r["flavor"] == "Google" && r["status"] == 200),
        "the metadata server was not asked for a token: {asked:?}"
    );
    // Every request to the bucket carried that token, and the lake used the
    // API it needs: uploads, listings (paged), ranged reads. Commits copy
    // nothing: the files are written in place and one log entry commits them.
    let requests = gcp.gcs_requests();
    let bearer = format!("Bearer {token}");
    let strangers: Vec<_> = requests.iter().filter(|r| r["authorization"] != bearer.as_str()).collect();
    assert!(strangers.is_empty(), "requests without the metadata token: {strangers:?}");
    let failed: Vec<_> =
        requests.iter().filter(|r| r["status"].as_u64().is_none_or(|s| s >= 400 && s != 404)).collect();
    assert!(failed.is_empty(), "requests that failed: {failed:?}");
    let kind = |r: &serde_json::Value| {
        let (method, query) = (r["method"].as_str().unwrap(), r["query"].as_str().unwrap());
        match method {
            "GET" if query.contains("list-type=2") && query.contains("continuation-token") => "list, next page",
            "GET" if query.contains("list-type=2") => "list",
            "GET" if r["range"].is_string() => "ranged read",
            "PUT" if r["copy_source"].is_string() => "copy",
            "PUT" => "upload",
            "DELETE" => "delete",
            _ => "other",
        }
    };
    let kinds: BTreeSet<_> = requests.iter().map(kind).collect();
    for wanted in ["list", "list, next page", "ranged read", "upload"] {
        assert!(kinds.contains(wanted), "no {wanted} request: saw {kinds:?}");
    }
    let copies = requests.iter().filter(|r| kind(r) == "copy").count();
    assert_eq!(copies, 0, "a commit copied objects");
    let commits: Vec<_> = requests
        .iter()
        .filter(|r| kind(r) == "upload" && r["key"].as_str().is_some_and(|k| k.contains("/_delta_log/0")))
        .collect();
    assert!(
        commits.iter().all(|r| r["if_generation_match"].as_str() == Some("0")),
        "a log entry was written without put-if-absent: {commits:?}"
    );

    // Only the current tables remain, in the same partitions as the local lake.
    let objects = gcp.lake_objects();
    let gs_files: BTreeSet<String> = objects.keys().cloned().collect();
    let local_files: BTreeSet<String> =
        local_files(&local.lake).into_iter().filter(|f| f.starts_with("tables/")).collect();
    assert_eq!(table_layout(&gs_files), table_layout(&local_files), "partition folders differ");
    assert_eq!(gs_files.len(), local_files.len(), "numbers of data files differ");
    assert_same_tables(&gcp.mirrored_lake(), &local.lake, 7).await;
}

#[tokio::test]
async fn a_token_the_bucket_refuses_fails_the_stage_and_writes_nothing() {
    let local = reference(&["01"]);
    let gcp = FakeGcp::start(&new_token(), &new_token());
    let lake = gcp.lake_url();
    let args = ["run", "01", "--raw", local.raw.to_str().unwrap(), "--lake", &lake];
    let out = gcp.funnelpulse(local.dir.path(), &args, &gcp.metadata_env());
    let text = text(&out);
    assert!(!out.status.success(), "the stage succeeded with a refused token:\n{text}");
    assert!(text.contains("401") || text.contains("Unauthenticated"), "no clear error:\n{text}");
    assert!(gcp.lake_objects().is_empty(), "objects written with a refused token: {:?}", gcp.lake_objects());
}

/// A commit the bucket refuses (here: writes to silver's Delta log) fails the
/// stage after the tables before it were committed; silver keeps its version,
/// and the next run brings every table to a complete run's rows.
#[tokio::test]
async fn a_refused_commit_fails_the_stage_and_the_next_run_completes_the_tables() {
    let local = reference(&["01"]);
    let token = new_token();
    let gcp = FakeGcp::start(&token, &token);
    let lake = gcp.lake_url();
    let args = ["run", "01", "--raw", local.raw.to_str().unwrap(), "--lake", &lake];

    let refuse = format!("/_fake/fault?method=PUT&prefix={PREFIX}/tables/silver_events/_delta_log/&status=403");
    assert_eq!(gcp.gcs.call("PUT", &refuse).0, 200);
    let out = gcp.funnelpulse(local.dir.path(), &args, &gcp.metadata_env());
    assert!(!out.status.success(), "the commit succeeded although the log write was refused:\n{}", text(&out));
    assert!(text(&out).contains("silver_events"), "the error names the table: {}", text(&out));
    let stuck = gcp.lake_objects();
    assert!(stuck.keys().any(|k| k.starts_with("tables/bronze_events/_delta_log/")), "bronze was not committed");
    assert!(!stuck.keys().any(|k| k.starts_with("tables/silver_events/")), "silver has files: {stuck:?}");
    assert_eq!(gcp.gcs.call("DELETE", "/_fake/fault").0, 200);

    assert_ok(&gcp.funnelpulse(local.dir.path(), &args, &gcp.metadata_env()), "the run after the refused commit");
    assert_same_tables(&gcp.mirrored_lake(), &local.lake, 4).await;
}

/// For emulators without OAuth: a service-account key with `disable_oauth`
/// and `gcs_base_url` (object_store's own switches) and no metadata server.
#[tokio::test]
async fn a_key_with_disable_oauth_reaches_an_emulator_without_tokens() {
    let local = reference(&["01"]);
    let gcp = FakeGcp::start(&new_token(), "");
    let key = format!(
        r#"{{"private_key": "unused", "private_key_id": "unused", "client_email": "emulator@example.invalid", "disable_oauth": true, "gcs_base_url": "http://127.0.0.1:{}"}}"#,
        gcp.gcs.port
    );
    let lake = gcp.lake_url();
    let args = ["run", "01", "--raw", local.raw.to_str().unwrap(), "--lake", &lake];
    // No GOOGLE_BASE_URL (it would win over the key's gcs_base_url); the
    // metadata server is reachable, to show that it is not asked.
    let metadata = format!("127.0.0.1:{}", gcp.metadata.port);
    let env = [
        ("GOOGLE_SERVICE_ACCOUNT_KEY".to_string(), key),
        ("GCE_METADATA_HOST".to_string(), metadata.clone()),
        ("GCE_METADATA_IP".to_string(), metadata),
    ];
    assert_ok(&gcp.funnelpulse(local.dir.path(), &args, &env), "funnelpulse run 01 with disable_oauth");
    let asked = gcp.metadata.json("/_fake/requests");
    assert_eq!(asked.as_array().unwrap().len(), 0, "the metadata server was asked: {asked:?}");
    let requests = gcp.gcs_requests();
    assert!(!requests.is_empty(), "the emulator was not used");
    let sent: Vec<_> =
        requests.iter().filter(|r| r["authorization"].as_str().is_some_and(|a| a.trim() != "Bearer")).collect();
    assert!(sent.is_empty(), "credentials were sent: {sent:?}");
    assert_same_tables(&gcp.mirrored_lake(), &local.lake, 4).await;
}

/// No credentials at all (no key, no gcloud login, no metadata server, as on a
/// laptop): one short error that says which ways there are to provide one.
#[tokio::test]
async fn missing_credentials_say_how_to_provide_them() {
    let local = reference(&["01"]);
    let gcp = FakeGcp::start(&new_token(), &new_token());
    let closed = format!("127.0.0.1:{}", common::free_port()); // no metadata server there
    let env = [
        ("GOOGLE_BASE_URL".to_string(), format!("http://127.0.0.1:{}", gcp.gcs.port)),
        ("GCE_METADATA_HOST".to_string(), closed.clone()),
        ("GCE_METADATA_IP".to_string(), closed),
    ];
    let lake = gcp.lake_url();
    let args = ["run", "01", "--raw", local.raw.to_str().unwrap(), "--lake", &lake];
    let started = std::time::Instant::now();
    let out = gcp.funnelpulse(local.dir.path(), &args, &env);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "ran without credentials:\n{stderr}");
    assert!(stderr.contains("no Google credentials for gs://"), "no hint:\n{stderr}");
    assert!(stderr.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{stderr}");
    let error_lines = stderr.lines().filter(|l| !l.starts_with('[')).count();
    assert!(error_lines <= 3, "more than a few lines:\n{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(120), "took {:?}", started.elapsed());
    assert!(gcp.lake_objects().is_empty(), "objects written without credentials");
}
