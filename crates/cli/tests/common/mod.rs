//! Shared helpers of the end-to-end tests: running our binaries, a local
//! multi-process cluster, reading tables back with plain DataFusion, and an
//! independent reference implementation of the semantics.

#![allow(dead_code)]

pub mod anomalies;
pub mod reference;
pub mod stream;
pub mod tables;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

pub const FUNNELPULSE: &str = env!("CARGO_BIN_EXE_funnelpulse");
/// The cluster binaries live in packages of their own; `cargo test` builds them
/// (for those packages' own tests) into the same folder as `funnelpulse`.
pub static SCHEDULER: LazyLock<PathBuf> = LazyLock::new(|| beside_funnelpulse("funnelpulse-scheduler"));
pub static EXECUTOR: LazyLock<PathBuf> = LazyLock::new(|| beside_funnelpulse("funnelpulse-executor"));

fn beside_funnelpulse(binary: &str) -> PathBuf {
    let path = Path::new(FUNNELPULSE).with_file_name(binary);
    assert!(path.exists(), "{} is missing: run the tests with `cargo test --workspace`", path.display());
    path
}

/// Runs `funnelpulse ARGS` in `dir`, with a clean FUNNELPULSE_* environment.
pub fn funnelpulse(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(FUNNELPULSE);
    command.current_dir(dir).args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("FUNNELPULSE_")) {
        command.env_remove(key);
    }
    command.envs(env.iter().copied());
    command.output().expect("funnelpulse runs")
}

/// Like [`funnelpulse`], failing the test with the output when it fails.
pub fn funnelpulse_ok(dir: &Path, args: &[&str]) -> String {
    let out = funnelpulse(dir, args, &[]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "funnelpulse {args:?} failed:\n{text}");
    text
}

/// Generated raw data (cached per test binary run).
pub fn generate(dir: &Path, rows: u64, days: u32) -> PathBuf {
    let raw = dir.join("raw");
    funnelpulse_ok(
        dir,
        &["generate", "--out", raw.to_str().unwrap(), "--rows", &rows.to_string(), "--days", &days.to_string()],
    );
    raw
}

pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct free ports (all held open while they are picked).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Our scheduler and executors as separate processes on 127.0.0.1, with
/// fast heartbeats (1 s) and a short executor timeout (10 s) so that the
/// fault tests see a lost executor declared dead quickly.
pub struct LocalCluster {
    pub scheduler_port: u16,
    scheduler: Child,
    executors: Vec<Child>,
    work: tempfile::TempDir,
}

impl LocalCluster {
    pub fn start(executors: usize) -> Self {
        let work = tempfile::tempdir().unwrap();
        let ports = free_ports(1 + 2 * executors);
        let scheduler_port = ports[0];
        let scheduler = spawn_scheduler(work.path(), scheduler_port, "scheduler");
        let mut cluster = Self { scheduler_port, scheduler, executors: Vec::new(), work };
        wait_for_port(scheduler_port);
        for i in 0..executors {
            let dir = cluster.work.path().join(format!("executor{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let executor = Command::new(&*EXECUTOR)
                .args(["--bind-host", "127.0.0.1", "--external-host", "127.0.0.1"])
                .args(["--port", &ports[1 + 2 * i].to_string(), "--grpc-port", &ports[2 + 2 * i].to_string()])
                .args(["--scheduler-host", "127.0.0.1", "--scheduler-port", &scheduler_port.to_string()])
                .args(["--concurrent-tasks", "2", "--heartbeat-interval-seconds", "1"])
                .args(["--work-dir", dir.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(log_file(cluster.work.path(), &format!("executor{i}")))
                .spawn()
                .unwrap();
            cluster.executors.push(executor);
        }
        cluster.wait_for_executors(executors);
        cluster
    }

    pub fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.scheduler_port)
    }

    /// SIGKILLs executor `i`: its shuffle files and running tasks are gone.
    pub fn kill_executor(&mut self, i: usize) {
        self.executors[i].kill().unwrap();
        self.executors[i].wait().unwrap();
    }

    /// SIGSTOPs executor `i`: it keeps its sockets but answers nothing, as a
    /// VM cut off the network would (SIGKILL on drop still ends it).
    pub fn freeze_executor(&mut self, i: usize) {
        self.signal_executor(i, "-STOP");
    }

    /// SIGCONTs a frozen executor: the cut-off node is back.
    pub fn thaw_executor(&mut self, i: usize) {
        self.signal_executor(i, "-CONT");
    }

    fn signal_executor(&self, i: usize, signal: &str) {
        let pid = self.executors[i].id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    }

    /// SIGKILLs the scheduler (all its state is in memory) and starts a new
    /// one on the same port; the executors re-register by heartbeat.
    pub fn restart_scheduler(&mut self) {
        self.scheduler.kill().unwrap();
        self.scheduler.wait().unwrap();
        self.scheduler = spawn_scheduler(self.work.path(), self.scheduler_port, "scheduler-restarted");
        wait_for_port(self.scheduler_port);
    }

    /// Jobs the scheduler lists with status `status` (e.g. "Running").
    pub fn jobs_with_status(&self, status: &str) -> usize {
        let body = http_get(self.scheduler_port, "/api/jobs").unwrap_or_default();
        body.matches(&format!("\"status\":\"{status}\"")).count()
    }

    /// Every process's log, for a failing test's message.
    pub fn logs(&self) -> String {
        let mut logs: Vec<String> = std::fs::read_dir(self.work.path())
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                format!("{:?} (last lines):\n{}", e.file_name(), tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect();
        logs.sort();
        logs.join("\n")
    }

    /// Polls the scheduler's REST API until `n` executors are registered.
    pub fn wait_for_executors(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let body = http_get(self.scheduler_port, "/api/executors").unwrap_or_default();
            if body.matches("\"id\"").count() >= n {
                return;
            }
            if Instant::now() >= deadline {
                panic!("executors did not register: {body}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(format!("{name}.log"))).unwrap()
}

fn spawn_scheduler(dir: &Path, port: u16, log: &str) -> Child {
    Command::new(&*SCHEDULER)
        .args(["--bind-host", "127.0.0.1", "--external-host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--executor-timeout-seconds", "10"])
        .stdout(Stdio::null())
        .stderr(log_file(dir, log))
        .spawn()
        .unwrap()
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for p in self.executors.iter_mut().chain([&mut self.scheduler]) {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A minimal HTTP/1.1 GET on loopback.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// Copies a folder tree (a lake, for runs that must start from the same state).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() { copy_dir(&path, &target) } else { std::fs::copy(&path, &target).map(|_| ()).unwrap() }
    }
}
