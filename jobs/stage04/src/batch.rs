//! One micro-batch: Ballista jobs over the batch's files and the previous
//! open windows, a reconciliation of what they wrote, and the commit.
//!
//! 1. *aggregate*: one Ballista job writes the batch's partial aggregates
//!    per (window, brand, silver) into the checkpoint; read back here, they
//!    give the counts (input, silver, late, on-time views/carts/purchases)
//!    and the latest event time, which advances the watermark;
//! 2. *write*: two Ballista jobs at once write the open windows (checkpoint
//!    state, as the [`crate::state`] store keeps them) and the windows the new watermark closes (staged in the lake);
//!    a third, when there are late events, writes them (staged); a fourth,
//!    when the source turned records away (Kafka), writes the dead letters;
//!    a fifth, when events are from the future (later than the batch's
//!    logged cutoff: the clock plus `--max-clock-skew`), writes those — they
//!    are in no window and not in the watermark;
//! 3. *check*: the partials hold as many rows as the files' footers;
//!    views, carts and purchases of the new state plus the closed
//!    windows must equal those of the old state plus the batch's on-time
//!    events, and the late rows written must equal the late rows counted —
//!    a job that lost or doubled rows (e.g. a lost executor) never commits;
//!    the same for the events from the future;
//! 4. *commit*: the commit record (with the output files) is written, then
//!    the files are appended to the tables (one Delta commit per table, which
//!    carries the batch id: see [`sink::finish_commit`]).

use std::time::{Duration, Instant};

use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::lit;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext};
use funnelpulse_core::TableSpec;
use funnelpulse_core::event_time::is_future;
use funnelpulse_core::stream::{
    WINDOW_MICROS, advance_watermark, batch_partials, future_rows, late_rows, partials_file_schema, partials_summary,
};
use funnelpulse_core::tables::{
    FUTURE_EVENTS, GOLD_STREAM_FUNNEL_HOURLY_BRAND, LATE_EVENTS, STREAM_DEAD_LETTERS, STREAM_PARTIALS, STREAM_STATE,
};
use funnelpulse_engine::Context;
use funnelpulse_engine::tables::write_partitioned;
use funnelpulse_engine::{Engine, check, first_row_i64};
use funnelpulse_lake::Lake;
use funnelpulse_lake::fault::pause_point;

use crate::checkpoint::{Checkpoint, Commit, Metadata, Offsets};
use crate::progress::{BatchProgress, Durations};
use crate::sink;
use crate::state::{Advance, StateStore, Step, WindowTotals, has_parquet, read_events, read_folder, window_totals};

/// Everything a batch touches.
pub struct BatchContext<'a> {
    /// The Ballista session the batch's jobs run on.
    pub engine: &'a Engine,
    /// The checkpoint's lease: checked before the commit record is written.
    pub lease: &'a crate::lease::Lease,
    /// Plain DataFusion in this process, for reading back small results.
    pub local: &'a SessionContext,
    /// The lake of the output tables, where the batch stages its files before the commit.
    pub lake: &'a Lake,
    /// The folder the batch's file paths are relative to: the source folder, or the checkpoint (Kafka).
    pub source: &'a Lake,
    /// Where the batch's offsets, partials, state and commit record go.
    pub checkpoint: &'a Checkpoint,
    /// The checkpoint's options; its id names the batch's files and its Delta appends.
    pub metadata: &'a Metadata,
    /// How the open windows are kept between batches (`--dedup-within-watermark`).
    pub state: &'a dyn StateStore,
}

/// The stream's position before a batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Before {
    /// Watermark after the last commit (µs since the epoch); none before the first event.
    pub watermark: Option<i64>,
    /// The batch whose `batches/<id>/state/` holds the open windows; none when no window is open.
    pub state_batch: Option<u64>,
    /// Every batch committed before.
    pub totals: crate::progress::Totals,
}

/// Test hook: `FUNNELPULSE_PAUSE=stream:<point>` or `stream:<point>:<batch>`
/// stops the process there so that a test can SIGKILL it (see `fault`).
pub(crate) fn pause(point: &str, batch_id: u64) {
    pause_point(&format!("stream:{point}"));
    pause_point(&format!("stream:{point}:{batch_id}"));
}

/// What the batch's partials say (read in this process).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    input_rows: i64,
    silver_rows: i64,
    late_rows: i64,
    max_event_time: Option<i64>,
    views: i64,
    carts: i64,
    purchases: i64,
    future_rows: i64,
}

async fn summarise_partials(
    local: &SessionContext,
    url: &str,
    watermark: Option<i64>,
) -> funnelpulse_engine::Result<Counts> {
    let schema = partials_file_schema();
    let partials = local.read_parquet(url, ParquetReadOptions::default().schema(&schema)).await?;
    let v = first_row_i64(partials_summary(partials, watermark)?).await?;
    let n = |i: usize| v[i].unwrap_or(0);
    Ok(Counts {
        input_rows: n(0),
        silver_rows: n(1),
        late_rows: n(2),
        max_event_time: v[3],
        views: n(4),
        carts: n(5),
        purchases: n(6),
        future_rows: n(7),
    })
}

// Semantics: docs/semantics.md#watermark
/// Runs a logged batch up to its commit record and applies it. The same
/// offsets and previous state always give the same rows.
pub async fn execute(
    cx: &BatchContext<'_>,
    offsets: &Offsets,
    before: Before,
    plan: Duration,
) -> funnelpulse_engine::Result<Commit> {
    let started = Instant::now();
    let id = offsets.batch_id;
    let run = sink::staging_run(cx.metadata, id);
    // Leftovers of an earlier attempt of this batch.
    sink::discard_staged(cx.lake, &run).await?;
    cx.checkpoint.prune_batches(before.state_batch).await?;
    let mut durations = Durations { plan_ms: plan.as_millis() as u64, ..Default::default() };
    let old_state = match before.state_batch {
        Some(batch) => cx.state.totals(cx.local, &cx.checkpoint.folder, &Checkpoint::state_rel(batch)).await?,
        None => WindowTotals::default(),
    };

    // 1. aggregate: the batch's partials, staged in the checkpoint.
    let t = Instant::now();
    let input = read_input(cx, offsets).await?;
    let counts = aggregate(cx, offsets, input.as_ref()).await?;
    durations.aggregate_ms = t.elapsed().as_millis() as u64;
    let watermark = next_watermark(cx, offsets, &old_state, &counts);

    // 2. write: open windows, closed windows, late, future and dead-letter rows.
    let t = Instant::now();
    let step = Step {
        input_urls: input_urls(cx, offsets),
        old_state_url: before.state_batch.filter(|_| old_state.rows > 0).map(|b| cx.checkpoint.state_url(b)),
        partials_url: (counts.silver_rows > counts.late_rows).then(|| partials_url(cx, id)),
        watermark_before: offsets.watermark,
        watermark_after: watermark,
        future_cutoff: offsets.future_cutoff,
        flush: offsets.flush,
    };
    let state_written = write_windows(cx, &step, &run, id).await?;
    write_set_aside(cx, offsets, &run, &counts, input).await?;
    durations.write_ms = t.elapsed().as_millis() as u64;
    pause("after-write", id);

    // 3. check
    let t = Instant::now();
    let new_state = if state_written {
        cx.state.totals(cx.local, &cx.checkpoint.folder, &Checkpoint::state_rel(id)).await?
    } else if offsets.flush {
        WindowTotals::default()
    } else {
        old_state
    };
    let closed = check_outputs(cx, offsets, &run, &counts, &old_state, &new_state).await?;
    durations.check_ms = t.elapsed().as_millis() as u64;

    // 4. commit
    let t = Instant::now();
    let state_batch = if state_written {
        (new_state.rows > 0).then_some(id)
    } else if offsets.flush {
        None
    } else {
        before.state_batch
    };
    let mut progress = batch_progress(offsets, &counts, closed.rows, new_state.rows);
    progress.set_watermark(watermark, counts.max_event_time);
    let mut totals = before.totals;
    totals.add(&progress);
    let outputs = sink::staged_outputs(cx.lake, &run).await?;
    let mut commit =
        Commit { batch_id: id, watermark, state_batch, outputs, moves: Vec::new(), progress, totals: Some(totals) };
    cx.lease.check().await?;
    cx.checkpoint.write_commit(&commit).await?;
    pause("after-commit-record", id);
    sink::finish_commit(cx.lake, cx.checkpoint, cx.metadata, &commit).await?;
    durations.commit_ms = t.elapsed().as_millis() as u64;

    durations.total_ms = (started.elapsed() + plan).as_millis() as u64;
    let seconds = (durations.total_ms as f64 / 1000.0).max(1e-3);
    commit.progress.input_rows_per_second = commit.progress.input_rows as f64 / seconds;
    commit.progress.durations = durations;
    cx.checkpoint.append_progress(&commit.progress).await?;
    Ok(commit)
}

/// The URLs of the batch's input files.
fn input_urls(cx: &BatchContext<'_>, offsets: &Offsets) -> Vec<String> {
    offsets.files.iter().map(|f| cx.source.url_of(&f.path)).collect()
}

/// The URL of the batch's partial aggregates in the checkpoint.
fn partials_url(cx: &BatchContext<'_>, id: u64) -> String {
    cx.checkpoint.folder.url_of(&Checkpoint::partials_rel(id))
}

/// The batch's events on the cluster; none on a flush or an empty batch.
async fn read_input(cx: &BatchContext<'_>, offsets: &Offsets) -> funnelpulse_engine::Result<Option<DataFrame>> {
    let urls = input_urls(cx, offsets);
    if urls.is_empty() {
        return Ok(None);
    }
    Ok(Some(read_events(&cx.engine.ctx, urls).await?))
}

/// The aggregate job: writes the batch's partials and reads back what they
/// say, checking that they hold every row of the files.
async fn aggregate(
    cx: &BatchContext<'_>,
    offsets: &Offsets,
    input: Option<&DataFrame>,
) -> funnelpulse_engine::Result<Counts> {
    let Some(input) = input else {
        return Ok(Counts::default());
    };
    let id = offsets.batch_id;
    let url = partials_url(cx, id);
    write_partitioned(batch_partials(input.clone(), offsets.future_cutoff)?, &STREAM_PARTIALS, &url)
        .await
        .context("aggregate job")?;
    let counts = if has_parquet(&cx.checkpoint.folder, &Checkpoint::partials_rel(id)).await? {
        summarise_partials(cx.local, &url, offsets.watermark).await?
    } else {
        Counts::default()
    };
    let file_rows: u64 = offsets.files.iter().map(|f| f.rows).sum();
    check(
        &format!("batch {id}: rows aggregated = rows in the files' footers"),
        counts.input_rows as u64 == file_rows,
        || format!("{} vs {file_rows}", counts.input_rows),
    )?;
    Ok(counts)
}

/// The watermark after the batch. Flushing closes every open window: later
/// events for them are late.
fn next_watermark(cx: &BatchContext<'_>, offsets: &Offsets, old_state: &WindowTotals, counts: &Counts) -> Option<i64> {
    if offsets.flush {
        let last_end = old_state.max_window_start.map(|s| s + WINDOW_MICROS);
        advance_watermark(offsets.watermark, last_end, 0)
    } else {
        advance_watermark(offsets.watermark, counts.max_event_time, cx.metadata.watermark_micros)
    }
}

/// Writes the open windows (the new state) and the closed ones (staged
/// output) as two Ballista jobs running at once; true when a new state was
/// written.
async fn write_windows(cx: &BatchContext<'_>, step: &Step, run: &str, id: u64) -> funnelpulse_engine::Result<bool> {
    let Some(Advance { open, closed }) = cx.state.advance(&cx.engine.ctx, step).await? else {
        return Ok(false);
    };
    let state_url = cx.checkpoint.state_url(id);
    let output_url = cx.lake.run_files_url(run, &GOLD_STREAM_FUNNEL_HOURLY_BRAND);
    let state = async {
        if let Some(open) = open {
            write_partitioned(open, &STREAM_STATE, &state_url).await.context("state job")?;
        }
        Ok::<_, funnelpulse_engine::Error>(())
    };
    let output = async {
        write_partitioned(closed, &GOLD_STREAM_FUNNEL_HOURLY_BRAND, &output_url).await.context("output job")?;
        Ok::<_, funnelpulse_engine::Error>(())
    };
    futures::try_join!(state, output)?;
    Ok(!step.flush)
}

/// Writes the rows a batch sets aside: late events, events from the future,
/// and the records its source turned away.
async fn write_set_aside(
    cx: &BatchContext<'_>,
    offsets: &Offsets,
    run: &str,
    counts: &Counts,
    input: Option<DataFrame>,
) -> funnelpulse_engine::Result<()> {
    let id = offsets.batch_id;
    let cutoff = offsets.future_cutoff;
    if counts.late_rows > 0 {
        // The input without the events from the future: what windows and late events are made of.
        let present = input.clone().context("late rows without input")?.filter(!is_future(cutoff))?;
        let url = cx.lake.run_files_url(run, &LATE_EVENTS);
        write_partitioned(late_rows(present, offsets.watermark, id)?, &LATE_EVENTS, &url)
            .await
            .context("late events job")?;
    }
    if let (true, Some(input), Some(cutoff)) = (counts.future_rows > 0, input, cutoff) {
        let url = cx.lake.run_files_url(run, &FUTURE_EVENTS);
        write_partitioned(future_rows(input, cutoff, id)?, &FUTURE_EVENTS, &url).await.context("future events job")?;
    }
    if let Some(dead) = &offsets.dead_letters {
        let letters = cx.engine.ctx.read_parquet(cx.source.url_of(&dead.path), ParquetReadOptions::default()).await?;
        let url = cx.lake.run_files_url(run, &STREAM_DEAD_LETTERS);
        write_partitioned(letters, &STREAM_DEAD_LETTERS, &url).await.context("dead letters job")?;
    }
    Ok(())
}

/// Reads back what the batch staged and checks it against what it counted;
/// returns the closed windows' totals.
async fn check_outputs(
    cx: &BatchContext<'_>,
    offsets: &Offsets,
    run: &str,
    counts: &Counts,
    old_state: &WindowTotals,
    new_state: &WindowTotals,
) -> funnelpulse_engine::Result<WindowTotals> {
    let id = offsets.batch_id;
    let closed = match read_folder(cx.local, cx.lake, &Lake::run_rel(run, &GOLD_STREAM_FUNNEL_HOURLY_BRAND)).await? {
        Some(windows) => window_totals(windows).await?,
        None => WindowTotals::default(),
    };
    let late = staged_rows(cx, run, &LATE_EVENTS).await?;
    reconcile(counts, old_state, new_state, &closed, late, id, cx.state.removes_events())?;
    let future = staged_rows(cx, run, &FUTURE_EVENTS).await?;
    check(&format!("batch {id}: events from the future written = counted"), future == counts.future_rows, || {
        format!("{future} vs {}", counts.future_rows)
    })?;
    let dead_letters = staged_rows(cx, run, &STREAM_DEAD_LETTERS).await?;
    let dead_logged = offsets.dead_letters.as_ref().map_or(0, |f| f.rows);
    check(
        &format!("batch {id}: dead letters written = records turned away"),
        dead_letters as u64 == dead_logged,
        || format!("{dead_letters} vs {dead_logged}"),
    )?;
    Ok(closed)
}

/// Rows the batch staged for `table`, read in this process.
async fn staged_rows(cx: &BatchContext<'_>, run: &str, table: &TableSpec) -> funnelpulse_engine::Result<i64> {
    let Some(rows) = read_folder(cx.local, cx.lake, &Lake::run_rel(run, table)).await? else {
        return Ok(0);
    };
    Ok(first_row_i64(rows.aggregate(vec![], vec![count(lit(1i64)).alias("rows")])?).await?[0].unwrap_or(0))
}

/// The batch's line in the progress log (watermark and timings are set after).
fn batch_progress(offsets: &Offsets, counts: &Counts, emitted: i64, open: i64) -> BatchProgress {
    BatchProgress {
        batch_id: offsets.batch_id,
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        files: offsets.files.iter().map(|f| f.path.clone()).collect(),
        quarantined: offsets.quarantined.clone(),
        input_rows: counts.input_rows as u64,
        silver_rows: counts.silver_rows as u64,
        late_rows: counts.late_rows as u64,
        emitted_windows: emitted as u64,
        open_windows: open as u64,
        flush: offsets.flush,
        kafka_ranges: offsets.kafka.as_ref().map(|k| k.ranges.clone()).unwrap_or_default(),
        dead_letters: offsets.dead_letters.as_ref().map_or(0, |f| f.rows),
        future_rows: counts.future_rows as u64,
        ..Default::default()
    }
}

// Semantics: docs/semantics.md#reconciliation-checks
/// Views, carts and purchases of the new state plus the closed windows
/// equal (at most, when the store removes duplicates) those of the old state
/// plus the batch's on-time events; the late rows written equal those counted.
fn reconcile(
    counts: &Counts,
    old_state: &WindowTotals,
    new_state: &WindowTotals,
    closed: &WindowTotals,
    late_written: i64,
    id: u64,
    removes_events: bool,
) -> funnelpulse_engine::Result<()> {
    let pairs = [
        ("views", new_state.views + closed.views, old_state.views + counts.views),
        ("carts", new_state.carts + closed.carts, old_state.carts + counts.carts),
        ("purchases", new_state.purchases + closed.purchases, old_state.purchases + counts.purchases),
    ];
    for (what, after, before) in pairs {
        let holds = if removes_events { after <= before } else { after == before };
        check(
            &format!(
                "batch {id}: {what} in open + closed windows = (≤ with de-duplication) previous open windows + on-time events"
            ),
            holds,
            || format!("{after} vs {before}"),
        )?;
    }
    check(&format!("batch {id}: late rows written = late rows counted"), late_written == counts.late_rows, || {
        format!("{late_written} vs {}", counts.late_rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(views: i64, carts: i64, purchases: i64) -> WindowTotals {
        WindowTotals { rows: 1, views, carts, purchases, max_window_start: None }
    }

    #[test]
    fn sums_must_balance_and_de_duplication_may_only_remove() {
        let counts = Counts { views: 3, carts: 2, purchases: 1, late_rows: 1, ..Default::default() };
        let old = windows(1, 1, 0);
        let new = windows(2, 1, 0);
        // open 2+2 views = old 1 + 3 on-time; carts 1+2 = 1+2; purchases 0+1 = 0+1.
        let closed = windows(2, 2, 1);
        reconcile(&counts, &old, &new, &closed, 1, 7, false).unwrap();
        // A lost view fails the summed store but not the de-duplicating one; a doubled view fails both.
        let lost = windows(1, 2, 1);
        let error = reconcile(&counts, &old, &new, &lost, 1, 7, false).unwrap_err();
        assert!(format!("{error:#}").contains("batch 7: views in open + closed windows"), "{error:#}");
        reconcile(&counts, &old, &new, &lost, 1, 7, true).unwrap();
        let doubled = windows(3, 2, 1);
        assert!(reconcile(&counts, &old, &new, &doubled, 1, 7, true).is_err());
        // Late rows written must equal those counted, whatever the store.
        let error = reconcile(&counts, &old, &new, &closed, 0, 7, true).unwrap_err();
        assert!(format!("{error:#}").contains("late rows written = late rows counted"), "{error:#}");
    }
}
