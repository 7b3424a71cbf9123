//! Crash points for the tests: `FUNNELPULSE_FAULT=<point>` aborts the process
//! (like a kill -9, no clean-up) when it reaches `<point>`. Points:
//! `after-staging:<table>` (a table is written, nothing committed),
//! `after-commit:<table>` (that table is committed, the stage's later ones
//! not), `after-staging:stream_input` (stage 03's files are staged, no
//! journal yet) and `during-commit` (stage 03's journal is written and one
//! file has been moved). `FUNNELPULSE_PAUSE` stops at these points too.
//! `stray-file:<table>` does not abort: it copies one of the table's staged
//! files under a new name before the staged rows are checked, as a task that
//! died midway on a lost executor leaves a partial file beside its retry's.
//!
//! `FUNNELPULSE_PAUSE=<point>` stops the process at `<point>` instead (it
//! prints `paused at <point>` and sleeps), so that a test can kill it there
//! with a real SIGKILL. `FUNNELPULSE_PAUSE=<point>:<ms>` only waits that
//! long and goes on (`before-commit:<table>`: a slow commit, which another
//! run can overtake).
//!
//! Only with the cargo feature `fault-points` (the tests' builds enable it
//! through the cli's dev-dependency): in any other build these functions do
//! nothing, so no environment variable can make a production binary abort.

/// Aborts the process when `FUNNELPULSE_FAULT` names `point` (pausing first if `FUNNELPULSE_PAUSE` does).
pub fn crash_point(point: &str) {
    if !cfg!(feature = "fault-points") {
        return;
    }
    pause_point(point);
    if armed(point) {
        log::error!("FUNNELPULSE_FAULT: aborting at {point}");
        std::process::abort();
    }
}

/// Stops at `point`, or waits there (`<point>:<ms>`), when `FUNNELPULSE_PAUSE` names it.
pub fn pause_point(point: &str) {
    if !cfg!(feature = "fault-points") {
        return;
    }
    let wanted = std::env::var("FUNNELPULSE_PAUSE").unwrap_or_default();
    if let Some(ms) = wanted.strip_prefix(point).and_then(|rest| rest.strip_prefix(':')) {
        if let Ok(ms) = ms.parse::<u64>() {
            log::info!("pausing {ms} ms at {point}");
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        return;
    }
    if wanted == point {
        log::info!("paused at {point}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Whether `FUNNELPULSE_FAULT` names `point`.
pub fn armed(point: &str) -> bool {
    cfg!(feature = "fault-points") && std::env::var("FUNNELPULSE_FAULT").is_ok_and(|wanted| wanted == point)
}

/// At `stray-file:<table>`, copies the first staged Parquet file of `table`
/// beside itself (see the module's comment).
pub async fn stray_file_point(
    lake: &crate::Lake,
    run_id: &str,
    table: &funnelpulse_core::TableSpec,
) -> crate::Result<()> {
    if !armed(&format!("stray-file:{}", table.name)) {
        return Ok(());
    }
    use object_store::ObjectStoreExt;
    let staged = lake.list_rel(&crate::Lake::run_rel(run_id, table)).await?;
    if let Some(file) = staged.iter().find(|f| f.ends_with(".parquet")) {
        let stray = format!("{}.stray.parquet", file.trim_end_matches(".parquet"));
        lake.store().copy(&lake.path_of(file), &lake.path_of(&stray)).await?;
        log::warn!("FUNNELPULSE_FAULT: left a stray copy of {file}");
    }
    Ok(())
}
