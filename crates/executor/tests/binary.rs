//! `funnelpulse-executor` and `funnelpulse-scheduler` as processes: the
//! executor registers with the scheduler, which lists it in its REST API.
//! (The end-to-end tests in crates/cli run whole pipelines on such a cluster.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXECUTOR: &str = env!("CARGO_BIN_EXE_funnelpulse-executor");

/// Kills the process when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn an_executor_registers_with_the_scheduler() {
    // `cargo test` builds the scheduler (for its package's test) into the same folder.
    let scheduler_binary = Path::new(EXECUTOR).with_file_name("funnelpulse-scheduler");
    let work = tempfile::tempdir().unwrap();
    let (scheduler_port, port, grpc_port) = (free_port(), free_port(), free_port());
    let _scheduler = Running(
        Command::new(&scheduler_binary)
            .args(["--bind-host", "127.0.0.1", "--external-host", "127.0.0.1", "--port", &scheduler_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let _executor = Running(
        Command::new(EXECUTOR)
            .args(["--bind-host", "127.0.0.1", "--external-host", "127.0.0.1"])
            .args(["--port", &port.to_string(), "--grpc-port", &grpc_port.to_string()])
            .args(["--scheduler-host", "127.0.0.1", "--scheduler-port", &scheduler_port.to_string()])
            .args(["--heartbeat-interval-seconds", "1", "--work-dir", work.path().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = get(scheduler_port, "/api/executors").unwrap_or_default();
        if listed.contains(&format!("{port}")) && listed.contains("\"id\"") {
            return;
        }
        assert!(Instant::now() < deadline, "the executor did not register: {listed}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
