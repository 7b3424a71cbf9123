//! Crash points for the tests: `FUNNELPULSE_FAULT=<point>` aborts the process
//! (like a kill -9, no clean-up) when it reaches `<point>`. Points:
//! `after-staging:<table>` (a table is staged, nothing committed) and
//! `during-commit` (the journal is written and one file has been moved).

pub fn crash_point(point: &str) {
    if std::env::var("FUNNELPULSE_FAULT").is_ok_and(|wanted| wanted == point) {
        eprintln!("FUNNELPULSE_FAULT: aborting at {point}");
        std::process::abort();
    }
}
