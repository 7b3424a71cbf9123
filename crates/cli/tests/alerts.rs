//! Alerts: new anomalies posted to a webhook on loopback, each once across
//! runs, retried on server errors, failing clearly when the endpoint keeps failing.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::{free_port, funnelpulse, funnelpulse_ok, generate};

/// A webhook receiver on 127.0.0.1 answering each request with the next
/// status of `statuses` (then 200), keeping the JSON bodies it received.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    requests: Arc<Mutex<usize>>,
}

impl Receiver {
    fn start(statuses: Vec<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0usize));
        let (b, r) = (bodies.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                let mut target = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if target.is_empty() {
                        target = line.split(' ').nth(1).unwrap_or_default().to_string();
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let n = {
                    let mut count = r.lock().unwrap();
                    *count += 1;
                    *count
                };
                let status = statuses.get(n - 1).copied().unwrap_or(200);
                if status == 200 {
                    b.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
                }
                // A failure echoes the request's path and query, as many servers do ("Cannot POST /…").
                let reply = if status == 200 { "ok".to_string() } else { format!("no hook at {target}") };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        Self { port, bodies, requests }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/secret", self.port)
    }

    fn anomalies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().iter().flat_map(|b| b["anomalies"].as_array().unwrap().clone()).collect()
    }
}

/// Options that make small data flag v2 anomalies.
const PERMISSIVE_V2: [&str; 6] = ["--v2-fdr", "0.9", "--v2-min-change", "0.1", "--v2-min-views", "5"];

/// Stages 01 and 05 on small generated data, with `extra` options; returns the lake.
fn lake_with_anomalies(dir: &std::path::Path, extra: &[&str]) -> (PathBuf, String) {
    let raw = generate(dir, 80_000, 6);
    let lake = dir.join("lake");
    let mut args = vec!["run", "01", "05", "--raw", raw.to_str().unwrap(), "--lake", lake.to_str().unwrap()];
    args.extend(PERMISSIVE_V2);
    args.extend(extra);
    let out = funnelpulse_ok(dir, &args);
    (lake, out)
}

fn v2_rows(lake: &std::path::Path) -> usize {
    let script = format!(
        "import deltalake\nprint(deltalake.DeltaTable('{}/tables/gold_anomalies_hourly_brand_v2').to_pyarrow_table().num_rows)",
        lake.display()
    );
    let out = std::process::Command::new("python3").args(["-c", &script]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn alerts_are_sent_once_retried_and_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, _) = lake_with_anomalies(dir.path(), &[]);
    let lake_arg = lake.to_str().unwrap();
    let expected = v2_rows(&lake);
    assert!(expected > 0, "no anomalies to alert on");

    // The first attempt gets a 503: retried, then delivered.
    let receiver = Receiver::start(vec![503]);
    let out = funnelpulse_ok(dir.path(), &["alert", "--lake", lake_arg, "--alert-webhook", &receiver.url()]);
    assert!(out.contains("retrying"), "{out}");
    let sent = receiver.anomalies();
    assert_eq!(sent.len(), expected, "{out}");
    let first = receiver.bodies.lock().unwrap()[0].clone();
    assert!(first["text"].as_str().unwrap().starts_with("FunnelPulse: "), "{first}");
    for field in ["type", "brand", "window_start", "views", "purchases", "baseline", "score"] {
        assert!(!sent[0][field].is_null(), "{field} missing: {}", sent[0]);
    }

    // A second run sends nothing new.
    let out = funnelpulse_ok(dir.path(), &["alert", "--lake", lake_arg, "--webhook", &receiver.url()]);
    assert!(out.contains(&format!("{expected} sent before, 0 new sent")), "{out}");
    assert_eq!(receiver.anomalies().len(), expected);

    // A new lake version's anomalies are new; a failing endpoint fails the command after its retries.
    std::fs::remove_file(lake.join("alerts/gold_anomalies_hourly_brand_v2.sent.json")).unwrap();
    let broken = Receiver::start(vec![500; 100]);
    let out =
        funnelpulse(dir.path(), &["alert", "--lake", lake_arg, "--webhook", &broken.url(), "--retries", "2"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr
            .contains(&format!("alert webhook http://127.0.0.1:{}/… failed after 3 attempt(s): HTTP 500", broken.port)),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "the webhook's secret path leaked: {stderr}");
    assert_eq!(*broken.requests.lock().unwrap(), 3, "one attempt and two retries");

    // A client error is not retried.
    let refused = Receiver::start(vec![404; 100]);
    let out = funnelpulse(dir.path(), &["alert", "--lake", lake_arg, "--webhook", &refused.url()], &[]);
    assert!(!out.status.success());
    assert_eq!(*refused.requests.lock().unwrap(), 1);
}

#[test]
fn stage_05_sends_alerts_when_a_webhook_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![]);
    let (lake, out) = lake_with_anomalies(dir.path(), &["--alert-webhook", &receiver.url()]);
    assert!(out.contains("alerts: "), "{out}");
    let expected = v2_rows(&lake);
    assert!(expected > 0, "no anomalies to alert on");
    assert_eq!(receiver.anomalies().len(), expected);
}

/// The parts of [`secret_url`] that must never be printed.
const SECRETS: [&str; 6] = ["hookuser", "hunter2pass", "T0SECRET", "B0SECRET", "xoxSECRETTOKEN", "qSECRETTOKEN"];

/// A Slack-like webhook with credentials in every place a URL can hold them.
fn secret_url(port: u16) -> String {
    format!("http://hookuser:hunter2pass@127.0.0.1:{port}/services/T0SECRET/B0SECRET/xoxSECRETTOKEN?token=qSECRETTOKEN")
}

/// Runs `funnelpulse args` quietly and with `RUST_LOG=debug`; checks that no
/// output holds a secret, that stderr names the endpoint `127.0.0.1:port`, and
/// (quiet run) that it is at most `max_lines` lines. Returns the quiet run's output.
fn assert_no_secret(dir: &std::path::Path, args: &[&str], port: u16, max_lines: usize) -> std::process::Output {
    let mut quiet = None;
    for log in ["", "debug"] {
        let env: &[(&str, &str)] = if log.is_empty() { &[] } else { &[("RUST_LOG", log)] };
        let out = funnelpulse(dir, args, env);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        for secret in SECRETS {
            for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
                let leaks: Vec<&str> = text.lines().filter(|l| l.contains(secret)).take(3).collect();
                assert!(
                    leaks.is_empty(),
                    "{args:?} RUST_LOG={log:?}: {secret} leaked on {name}:\n{}",
                    leaks.join("\n")
                );
            }
        }
        let printed = if out.status.success() { &stdout } else { &stderr };
        assert!(
            printed.contains(&format!("127.0.0.1:{port}")),
            "{args:?} RUST_LOG={log:?}: the endpoint is not named:\n{stdout}{stderr}"
        );
        if log.is_empty() {
            assert!(stderr.lines().count() <= max_lines, "{args:?}: more than {max_lines} lines:\n{stderr}");
            quiet = Some(out);
        }
    }
    quiet.unwrap()
}

#[test]
fn a_failing_webhook_never_prints_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, _) = lake_with_anomalies(dir.path(), &[]);
    let lake_arg = lake.to_str().unwrap();

    // (With no anomaly nothing would be posted: the request counts below would fail.)
    // (a) Nothing listens: connection errors, one retry, then the error.
    let port = free_port();
    let url = secret_url(port);
    let out =
        assert_no_secret(dir.path(), &["alert", "--lake", lake_arg, "--webhook", &url, "--retries", "1"], port, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("retrying") && stderr.contains("error: alert webhook"), "{stderr}");

    // (b) A server failing every time (its reply echoes the path and query): two retries each run.
    let broken = Receiver::start(vec![500; 100]);
    let url = secret_url(broken.port);
    let out = assert_no_secret(
        dir.path(),
        &["alert", "--lake", lake_arg, "--webhook", &url, "--retries", "2"],
        broken.port,
        3,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 500"), "{out:?}");
    assert_eq!(*broken.requests.lock().unwrap(), 6, "one attempt and two retries per run");

    // (c) --dry-run: names the endpoint and what would be sent, posts nothing, records nothing.
    let out =
        assert_no_secret(dir.path(), &["alert", "--lake", lake_arg, "--webhook", &url, "--dry-run"], broken.port, 0);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("FunnelPulse: "), "{out:?}");
    assert_eq!(*broken.requests.lock().unwrap(), 6, "--dry-run posted");
    assert!(!lake.join("alerts/gold_anomalies_hourly_brand_v2.sent.json").exists());

    // Stage 05 with a webhook fails the same way.
    let args = ["run", "05", "--lake", lake_arg, "--alert-webhook", &url, "--alert-retries", "0"];
    let mut run_args = args.to_vec();
    run_args.extend(PERMISSIVE_V2);
    let out = assert_no_secret(dir.path(), &run_args, broken.port, 8);
    assert!(!out.status.success());

    // A value that is not a URL is not echoed either.
    let out = funnelpulse(
        dir.path(),
        &[
            "alert",
            "--lake",
            lake_arg,
            "--webhook",
            "hookuser:hunter2pass@127.0.0.1/services/T0SECRET/B0SECRET/xoxSECRETTOKEN",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(SECRETS.iter().all(|s| !stderr.contains(s)), "{stderr}");
}
