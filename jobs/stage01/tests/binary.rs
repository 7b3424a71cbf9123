//! `funnelpulse-stage01`, the stage's own binary: the engine's generic stage
//! main (`funnelpulse_engine::stage_main`) parses its arguments, runs the
//! stage embedded and prints its report; bad arguments are refused by name.

use std::process::Command;

const STAGE01: &str = env!("CARGO_BIN_EXE_funnelpulse-stage01");

const RAW: &str = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-10-01 10:00:00 UTC,view,1,10,a.b,acme,1.50,7,s1
2019-10-01 10:05:00 UTC,cart,1,10,a.b,acme,1.50,7,s1
2019-10-01 10:06:00 UTC,purchase,1,10,a.b,acme,1.50,7,s1
";

#[test]
fn the_stage_binary_runs_the_stage_and_prints_its_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("raw")).unwrap();
    std::fs::write(dir.path().join("raw/events.csv"), RAW).unwrap();
    let lake = dir.path().join("lake");
    let output = Command::new(STAGE01)
        .args(["--raw", dir.path().join("raw").to_str().unwrap(), "--lake", lake.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("stage 01 done in"), "{stdout}");
    assert!(stdout.contains("--bad-rows Keep"), "{stdout}");
    assert!(lake.join("tables/gold_funnel_hourly_brand/_delta_log").is_dir(), "gold was committed");
}

#[test]
fn its_arguments_are_checked_by_name() {
    let help = Command::new(STAGE01).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Stage 01: raw CSV"), "{text}");
    assert!(text.contains("--max-clock-skew") && text.contains("--scheduler"), "{text}");

    let bad = Command::new(STAGE01).args(["--raw", "x", "--bad-rows", "nope"]).output().unwrap();
    let text = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(text.contains("invalid value 'nope' for '--bad-rows") && text.contains("keep, quarantine, fail"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let missing = Command::new(STAGE01).current_dir(dir.path()).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--raw is required"), "{missing:?}");
}
