//! `funnelpulse-scheduler` as a process: it listens on its port. (A port in
//! use: crates/cli/tests/user_errors.rs; whole pipelines on a cluster of these
//! processes: the other tests there.)

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCHEDULER: &str = env!("CARGO_BIN_EXE_funnelpulse-scheduler");

#[test]
fn the_scheduler_listens_on_its_port() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut scheduler = Command::new(SCHEDULER)
        .args(["--bind-host", "127.0.0.1", "--external-host", "127.0.0.1", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let listening = loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break true;
        }
        if Instant::now() > deadline || scheduler.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = scheduler.kill();
    let _ = scheduler.wait();
    assert!(listening, "the scheduler never listened on {port}");
}
