//! Crash points for the tests: `FUNNELPULSE_FAULT=<point>` aborts the process
//! (like a kill -9, no clean-up) when it reaches `<point>`. Points:
//! `after-staging:<table>` (a table is staged, nothing committed) and
//! `during-commit` (the journal is written and one file has been moved).
//!
//! `FUNNELPULSE_PAUSE=<point>` stops the process at `<point>` instead (it
//! prints `paused at <point>` and sleeps), so that a test can kill it there
//! with a real SIGKILL.

pub fn crash_point(point: &str) {
    if std::env::var("FUNNELPULSE_FAULT").is_ok_and(|wanted| wanted == point) {
        eprintln!("FUNNELPULSE_FAULT: aborting at {point}");
        std::process::abort();
    }
}

pub fn pause_point(point: &str) {
    if std::env::var("FUNNELPULSE_PAUSE").is_ok_and(|wanted| wanted == point) {
        eprintln!("paused at {point}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
