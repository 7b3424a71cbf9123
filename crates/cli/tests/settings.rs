//! Settings: funnelpulse.toml's keys are the flags' long names, a value of
//! the wrong type or an unknown key is refused in one line, and an invalid
//! value names where it came from (flag, FUNNELPULSE_* variable, or the
//! file's key and path).

mod common;

use std::path::Path;
use std::process::Output;

use common::funnelpulse;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// Fails with exactly one line of stderr, which is returned.
fn refused(out: Output) -> String {
    let text = stderr(&out);
    assert!(!out.status.success(), "accepted:\n{text}");
    assert_eq!(text.lines().count(), 1, "not one line:\n{text}");
    text
}

fn write_config(dir: &Path, text: &str) {
    std::fs::write(dir.join("funnelpulse.toml"), text).unwrap();
}

#[test]
fn every_key_of_the_file_is_a_flag_name() {
    let dir = tempfile::tempdir().unwrap();
    // Kafka's flags, whose variables are FUNNELPULSE_KAFKA_TOPIC, …_STREAM_SOURCE_KIND and
    // …_KAFKA_BOOTSTRAP_SERVERS: `--help` shows the values the file set.
    write_config(dir.path(), "topic = 'from-file'\nsource = 'kafka'\nbootstrap-servers = '127.0.0.1:9'\n");
    let out = funnelpulse(dir.path(), &["run", "--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    for shown in ["FUNNELPULSE_KAFKA_TOPIC=from-file", "STREAM_SOURCE_KIND=kafka", "BOOTSTRAP_SERVERS=127.0.0.1:9"] {
        assert!(help.contains(shown), "{shown} not in:\n{help}");
    }
    // The variable's name is not a key: the flag's name is suggested.
    write_config(dir.path(), "kafka-topic = 'x'\n");
    let error = refused(funnelpulse(dir.path(), &["run", "--help"], &[]));
    assert!(error.contains("unknown setting \"kafka-topic\": did you mean \"topic\"?"), "{error}");
    assert!(error.contains("funnelpulse.toml"), "{error}");
    write_config(dir.path(), "bad_rows = 'keep'\n");
    let error = refused(funnelpulse(dir.path(), &["run", "01"], &[]));
    assert!(error.contains("did you mean \"bad-rows\"?"), "{error}");
    write_config(dir.path(), "colour = 'red'\n");
    let error = refused(funnelpulse(dir.path(), &["run", "01"], &[]));
    assert!(error.contains("unknown setting \"colour\"") && error.contains("lake"), "{error}");
    // One-off actions stay on the command line.
    write_config(dir.path(), "reset-stream = true\n");
    let error = refused(funnelpulse(dir.path(), &["run", "04"], &[]));
    assert!(error.contains("command-line flag only: give --reset-stream on the command line"), "{error}");
}

#[test]
fn a_value_of_the_wrong_type_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("settings/custom.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "lake = 5\n").unwrap();
    let env = [("FUNNELPULSE_CONFIG", config.to_str().unwrap())];
    let error = refused(funnelpulse(dir.path(), &["run", "02"], &env));
    assert!(error.contains("custom.toml") && error.contains("\"lake\""), "{error}");
    assert!(error.contains("must be a string in quotes, not the number 5"), "{error}");
    assert!(!dir.path().join("5").exists(), "a lake named 5 was made");
    std::fs::write(&config, "sample-rows = '1000'\n").unwrap();
    let error = refused(funnelpulse(dir.path(), &["run", "02"], &env));
    assert!(error.contains("must be a number"), "{error}");
    std::fs::write(&config, "lake = [\n").unwrap();
    let error = refused(funnelpulse(dir.path(), &["run", "02"], &env));
    assert!(error.contains("custom.toml is not valid TOML at line "), "{error}");
}

#[test]
fn an_invalid_value_names_the_flag_variable_or_file_key_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let run01 = ["run", "01", "--raw", "raw", "--lake", "lake"];
    // From the command line: the flag.
    let error = refused(funnelpulse(dir.path(), &[&run01[..], &["--bad-rows", "sometimes"]].concat(), &[]));
    assert_eq!(error, "error: invalid value \"sometimes\" for --bad-rows: possible values: keep, quarantine, fail");
    // From the environment: the variable.
    let error = refused(funnelpulse(dir.path(), &run01, &[("FUNNELPULSE_BAD_ROWS", "sometimes")]));
    assert!(error.contains("for --bad-rows (from FUNNELPULSE_BAD_ROWS): possible values"), "{error}");
    // From the file: its key and path.
    write_config(dir.path(), "bad-rows = 'sometimes'\nwatermark = 'soon'\n");
    let error = refused(funnelpulse(dir.path(), &run01, &[]));
    assert!(error.contains("for --bad-rows (from key \"bad-rows\" in funnelpulse.toml): possible values"), "{error}");
    let error = refused(funnelpulse(dir.path(), &["run", "04"], &[("FUNNELPULSE_BAD_ROWS", "keep")]));
    assert!(error.contains("--watermark (from key \"watermark\"") && error.contains("examples: 2h"), "{error}");
    // Values checked after parsing before are checked while parsing now, with their source.
    std::fs::remove_file(dir.path().join("funnelpulse.toml")).unwrap();
    let error = refused(funnelpulse(dir.path(), &["run", "05"], &[("FUNNELPULSE_V2_FDR", "2")]));
    assert!(error.contains("for --v2-fdr (from FUNNELPULSE_V2_FDR): must be between 0 and 1"), "{error}");
    let error = refused(funnelpulse(dir.path(), &["run", "01"], &[("FUNNELPULSE_SCHEDULER", "localhost:50050")]));
    assert!(error.contains("--scheduler (from FUNNELPULSE_SCHEDULER): must look like df://HOST:PORT"), "{error}");
    let error = refused(funnelpulse(dir.path(), &["run", "03", "--stream-files", "0"], &[]));
    assert!(error.contains("for --stream-files: must be a whole number, at least 1"), "{error}");
}
