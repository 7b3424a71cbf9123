//! Helpers of the stage 04 tests: running a stream, killing it at a pause
//! point, reading its output and progress.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::FUNNELPULSE;
use super::reference::MEASURES;
use super::tables::{Row, read_rows, sorted};

pub const OUTPUT: &str = "gold_stream_funnel_hourly_brand";

pub fn output_columns() -> Vec<&'static str> {
    let mut columns = vec!["window_start", "window_end", "brand"];
    columns.extend(MEASURES);
    columns.push("window_date");
    columns
}

pub async fn output_rows(lake: &Path) -> Vec<Row> {
    sorted(read_rows(lake, OUTPUT, "window_date", &output_columns()).await)
}

/// `funnelpulse run 04` bounded, files taken as soon as they are listed.
pub fn stream_args<'a>(lake: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "04", "--lake", lake, "--available-now", "--flush-at-end", "--file-settle", "0s"];
    args.extend(extra);
    args
}

pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(FUNNELPULSE);
    command.current_dir(dir).args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("FUNNELPULSE_")) {
        command.env_remove(key);
    }
    command
}

/// Runs until the process reaches `point`, then kills it with SIGKILL.
#[allow(clippy::zombie_processes)] // waited for after the kill; a panic before it ends the test anyway
pub fn kill_at(dir: &Path, args: &[&str], point: &str) -> String {
    let mut child = command(dir, args)
        .env("FUNNELPULSE_PAUSE", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(&format!("paused at {point}")) {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return seen;
        }
    }
    panic!("the run never reached {point}:\n{seen}");
}

/// The progress lines the checkpoint keeps (its segments `progress/<first batch>.jsonl`), oldest first.
pub fn progress_lines(lake: &Path) -> Vec<serde_json::Value> {
    let folder = lake.join("checkpoints/stream_hourly_brand/progress");
    let mut segments: Vec<_> =
        std::fs::read_dir(&folder).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    segments.sort();
    let text: String = segments.iter().map(|s| std::fs::read_to_string(s).unwrap()).collect();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

pub fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM: the stream stops after the batch in progress and exits cleanly.
pub fn terminate(child: &mut Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = std::mem::replace(child, Command::new("true").spawn().unwrap()).wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{text}");
    assert!(text.contains("stopping after the batch in progress") && text.contains("stage 04 done"), "{text}");
}
