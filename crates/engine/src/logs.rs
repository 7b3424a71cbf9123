//! Where log records go, the same way in every binary.
//!
//! Libraries report through `log` and never print: a stage's retry, a
//! cancelled job or a Kafka reconnect is an `info!`/`warn!` record. The
//! binaries install this logger, which prints our own records (targets
//! `funnelpulse…`) as plain lines for the person at the terminal (`warning: …`
//! for warnings), and every other crate's records with time, level and
//! target. Every line is scrubbed of registered secrets (reqwest, for one,
//! puts URLs in its records).

use std::io::Write;

use log::Level;

/// A command's default: our records from info up; other crates' warnings,
/// except Ballista's and DataFusion's, which log a failed job's error once per
/// task at ERROR level, when the one-line error already says it.
pub const QUIET: &str = "warn,funnelpulse=info,ballista=off,ballista_core=off,ballista_scheduler=off,\
                         ballista_executor=off,datafusion=off";
/// With `-v`: every crate's warnings, ours from debug.
pub const VERBOSE: &str = "warn,funnelpulse=debug";
/// The cluster binaries: a service's log, everything from info.
pub const SERVICE: &str = "info";

/// Installs the logger; `RUST_LOG` overrides `default_filter`.
pub fn init(default_filter: &str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter))
        .format(|buf, record| {
            let text = funnelpulse_core::redact::scrub(&record.args().to_string());
            if record.target().starts_with("funnelpulse") {
                match record.level() {
                    Level::Info | Level::Debug | Level::Trace => writeln!(buf, "{text}"),
                    Level::Warn => writeln!(buf, "warning: {text}"),
                    Level::Error => writeln!(buf, "error: {text}"),
                }
            } else {
                writeln!(buf, "[{} {:<5} {}] {text}", buf.timestamp(), record.level(), record.target())
            }
        })
        .init();
}
