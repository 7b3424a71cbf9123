//! One micro-batch: Ballista jobs over the batch's files and the previous
//! open windows, a reconciliation of what they wrote, and the commit.
//!
//! 1. *aggregate*: one Ballista job writes the batch's partial aggregates
//!    per (window, brand, silver) into the checkpoint; read back here, they
//!    give the counts (input, silver, late, on-time views/carts/purchases)
//!    and the latest event time, which advances the watermark;
//! 2. *write*: two Ballista jobs at once write the open windows (checkpoint
//!    state) and the windows the new watermark closes (staged in the lake);
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
//!    carries the batch id: see [`finish_commit`]).

use std::time::{Duration, Instant};

use anyhow::Context;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::functions_aggregate::expr_fn::{count, max, sum};
use datafusion::logical_expr::{cast, col, lit};
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext};
use funnelpulse_core::event_time::is_future;
use funnelpulse_core::schema::RAW_COLUMNS;
use funnelpulse_core::stream::{
    WINDOW_MICROS, advance_watermark, batch_partials, closed_rows, closed_rows_from_events, dedup_open_rows,
    future_rows, late_rows, merge, partials_file_schema, partials_summary, still_open, still_open_rows,
};
use funnelpulse_core::tables::{
    FUTURE_EVENTS, GOLD_STREAM_FUNNEL_HOURLY_BRAND, LATE_EVENTS, STREAM_DEAD_LETTERS, STREAM_PARTIALS, STREAM_STATE,
};
use funnelpulse_engine::tables::write_partitioned;
use funnelpulse_engine::{Engine, check, first_row_i64};
use funnelpulse_lake::Lake;
use funnelpulse_lake::fault::pause_point;

use crate::checkpoint::{Checkpoint, Commit, Metadata, Offsets};
use crate::progress::{BatchProgress, Durations};
use crate::source::input_schema;

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
    /// `--dedup-within-watermark`: the state keeps the open windows' events, not their sums.
    pub dedup: bool,
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

/// The stream's output tables (a stream with a file source writes no dead letters).
pub const OUTPUT_TABLES: [funnelpulse_core::TableSpec; 4] =
    [GOLD_STREAM_FUNNEL_HOURLY_BRAND, LATE_EVENTS, FUTURE_EVENTS, STREAM_DEAD_LETTERS];

/// The run of a batch, which names its files' folder in each output table:
/// `stream-<checkpoint id>-b<batch>`.
pub fn staging_run(metadata: &Metadata, batch_id: u64) -> String {
    format!("stream-{}-b{batch_id:06}", metadata.id)
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

/// Totals of a folder of window rows (state or closed windows).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Totals {
    rows: i64,
    views: i64,
    carts: i64,
    purchases: i64,
    max_window_start: Option<i64>,
}

async fn read_input(ctx: &SessionContext, urls: Vec<String>) -> anyhow::Result<DataFrame> {
    let schema = input_schema();
    let df = ctx.read_parquet(urls, ParquetReadOptions::default().schema(&schema)).await?;
    Ok(df.select_columns(&RAW_COLUMNS)?)
}

/// Previous open windows and a batch's partials, read as one table (a
/// UNION of the two hangs Ballista 55: a task's metrics do not match its stage).
async fn read_windows(ctx: &SessionContext, urls: Vec<String>) -> anyhow::Result<DataFrame> {
    let schema = partials_file_schema();
    let options = ParquetReadOptions::default()
        .schema(&schema)
        .table_partition_cols(vec![(STREAM_PARTIALS.partition_col.to_string(), DataType::Utf8)]);
    Ok(ctx.read_parquet(urls, options).await?)
}

async fn summarise_partials(local: &SessionContext, url: &str, watermark: Option<i64>) -> anyhow::Result<Counts> {
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

async fn has_parquet(folder: &Lake, rel: &str) -> anyhow::Result<bool> {
    Ok(folder.list_rel(rel).await?.iter().any(|f| f.ends_with(".parquet")))
}

/// What a folder of Parquet files holds.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Window rows with views, carts, purchases (closed windows, summed state).
    Windows,
    /// Silver events (the state with de-duplication): totals per window.
    Events,
    /// Anything: only the row count (late events).
    Rows,
}

/// Totals of the Parquet files under `rel` of `folder`, read in this process.
async fn totals(local: &SessionContext, folder: &Lake, rel: &str, shape: Shape) -> anyhow::Result<Totals> {
    if !has_parquet(folder, rel).await? {
        return Ok(Totals::default());
    }
    let mut df = local.read_parquet(folder.url_of(rel), ParquetReadOptions::default()).await?;
    if shape == Shape::Rows {
        let rows = first_row_i64(df.aggregate(vec![], vec![count(lit(1i64)).alias("rows")])?).await?;
        return Ok(Totals { rows: rows[0].unwrap_or(0), ..Default::default() });
    }
    if shape == Shape::Events {
        let window = funnelpulse_core::funnel::hour_window_start().alias("window_start");
        let brand = funnelpulse_core::silver::brand_norm(col("brand")).alias("brand");
        df = df.aggregate(vec![window, brand], funnelpulse_core::funnel::funnel_counts())?;
    }
    let v = first_row_i64(df.aggregate(
        vec![],
        vec![
            count(lit(1i64)).alias("rows"),
            sum(col("views")).alias("views"),
            sum(col("carts")).alias("carts"),
            sum(col("purchases")).alias("purchases"),
            max(cast(col("window_start"), DataType::Int64)).alias("max_window_start"),
        ],
    )?)
    .await?;
    let n = |i: usize| v[i].unwrap_or(0);
    Ok(Totals { rows: n(0), views: n(1), carts: n(2), purchases: n(3), max_window_start: v[4] })
}

// Semantics: docs/semantics.md#watermark
/// Runs a logged batch up to its commit record and applies it. The same
/// offsets and previous state always give the same rows.
pub async fn execute(
    cx: &BatchContext<'_>,
    offsets: &Offsets,
    before: Before,
    plan: Duration,
) -> anyhow::Result<Commit> {
    let started = Instant::now();
    let id = offsets.batch_id;
    let run = staging_run(cx.metadata, id);
    // Leftovers of an earlier attempt of this batch.
    for table in OUTPUT_TABLES {
        cx.lake.discard_run_files(&run, &table).await?;
    }
    cx.checkpoint.prune_batches(before.state_batch).await?;

    let ctx = &cx.engine.ctx;
    let mut durations = Durations { plan_ms: plan.as_millis() as u64, ..Default::default() };
    let old_state_rel = before.state_batch.map(Checkpoint::state_rel);
    let state_shape = if cx.dedup { Shape::Events } else { Shape::Windows };
    let old_state = match &old_state_rel {
        Some(rel) => totals(cx.local, &cx.checkpoint.folder, rel, state_shape).await?,
        None => Totals::default(),
    };

    // 1. aggregate: the batch's partials, staged in the checkpoint.
    let t = Instant::now();
    let urls: Vec<String> = offsets.files.iter().map(|f| cx.source.url_of(&f.path)).collect();
    let input = if urls.is_empty() { None } else { Some(read_input(ctx, urls).await?) };
    let cutoff = offsets.future_cutoff;
    // The input without the events from the future: what windows and late events are made of.
    let present = input.clone().map(|i| i.filter(!is_future(cutoff))).transpose()?;
    let partials_rel = Checkpoint::partials_rel(id);
    let partials_url = cx.checkpoint.folder.url_of(&partials_rel);
    let mut counts = Counts::default();
    if let Some(input) = &input {
        write_partitioned(batch_partials(input.clone(), cutoff)?, &STREAM_PARTIALS, &partials_url)
            .await
            .context("aggregate job")?;
        if has_parquet(&cx.checkpoint.folder, &partials_rel).await? {
            counts = summarise_partials(cx.local, &partials_url, offsets.watermark).await?;
        }
        let file_rows: u64 = offsets.files.iter().map(|f| f.rows).sum();
        check(
            &format!("batch {id}: rows aggregated = rows in the files' footers"),
            counts.input_rows as u64 == file_rows,
            || format!("{} vs {file_rows}", counts.input_rows),
        )?;
    }
    durations.aggregate_ms = t.elapsed().as_millis() as u64;
    let watermark = if offsets.flush {
        // Flushing closes every open window: later events for them are late.
        let last_end = old_state.max_window_start.map(|s| s + WINDOW_MICROS);
        advance_watermark(offsets.watermark, last_end, 0)
    } else {
        advance_watermark(offsets.watermark, counts.max_event_time, cx.metadata.watermark_micros)
    };

    // 2. write: open windows, closed windows, late events.
    let t = Instant::now();
    let output_url = cx.lake.run_files_url(&run, &GOLD_STREAM_FUNNEL_HOURLY_BRAND);
    let old_state_url =
        old_state_rel.as_ref().filter(|_| old_state.rows > 0).map(|rel| cx.checkpoint.folder.url_of(rel));
    let closing = if offsets.flush { None } else { watermark };
    let state_url = cx.checkpoint.state_url(id);
    let state_written = if cx.dedup {
        // The open windows' events: the batch's files and the previous state's events, read as one table.
        let mut urls: Vec<String> = offsets.files.iter().map(|f| cx.source.url_of(&f.path)).collect();
        urls.extend(old_state_url);
        let writes = input.is_some() || (offsets.flush && !urls.is_empty());
        if writes {
            // The state's events passed an earlier cutoff, never a later one than this batch's.
            let rows = dedup_open_rows(read_input(ctx, urls).await?.filter(!is_future(cutoff))?, offsets.watermark)?;
            let open = (!offsets.flush).then(|| still_open_rows(rows.clone(), watermark)).transpose()?;
            write_windows(open, closed_rows_from_events(rows, closing)?, &state_url, &output_url).await?;
        }
        writes && !offsets.flush
    } else {
        let mut urls: Vec<String> = old_state_url.into_iter().collect();
        if counts.silver_rows > counts.late_rows {
            urls.push(partials_url.clone());
        }
        let writes = !urls.is_empty() && (input.is_some() || offsets.flush);
        if writes {
            let merged = merge(read_windows(ctx, urls).await?, offsets.watermark)?;
            let open = (!offsets.flush).then(|| still_open(merged.clone(), watermark)).transpose()?;
            write_windows(open, closed_rows(merged, closing)?, &state_url, &output_url).await?;
        }
        writes && !offsets.flush
    };
    if counts.late_rows > 0 {
        let present = present.clone().context("late rows without input")?;
        let late_url = cx.lake.run_files_url(&run, &LATE_EVENTS);
        write_partitioned(late_rows(present, offsets.watermark, id)?, &LATE_EVENTS, &late_url)
            .await
            .context("late events job")?;
    }
    if let (true, Some(input), Some(cutoff)) = (counts.future_rows > 0, &input, cutoff) {
        let url = cx.lake.run_files_url(&run, &FUTURE_EVENTS);
        write_partitioned(future_rows(input.clone(), cutoff, id)?, &FUTURE_EVENTS, &url)
            .await
            .context("future events job")?;
    }
    if let Some(dead) = &offsets.dead_letters {
        let letters = ctx.read_parquet(cx.source.url_of(&dead.path), ParquetReadOptions::default()).await?;
        let url = cx.lake.run_files_url(&run, &STREAM_DEAD_LETTERS);
        write_partitioned(letters, &STREAM_DEAD_LETTERS, &url).await.context("dead letters job")?;
    }
    durations.write_ms = t.elapsed().as_millis() as u64;
    pause("after-write", id);

    // 3. check
    let t = Instant::now();
    let new_state = if state_written {
        totals(cx.local, &cx.checkpoint.folder, &Checkpoint::state_rel(id), state_shape).await?
    } else if offsets.flush {
        Totals::default()
    } else {
        old_state
    };
    let closed =
        totals(cx.local, cx.lake, &Lake::run_rel(&run, &GOLD_STREAM_FUNNEL_HOURLY_BRAND), Shape::Windows).await?;
    let late = totals(cx.local, cx.lake, &Lake::run_rel(&run, &LATE_EVENTS), Shape::Rows).await?;
    reconcile(&counts, &old_state, &new_state, &closed, late.rows, id, cx.dedup)?;
    let future = totals(cx.local, cx.lake, &Lake::run_rel(&run, &FUTURE_EVENTS), Shape::Rows).await?;
    check(&format!("batch {id}: events from the future written = counted"), future.rows == counts.future_rows, || {
        format!("{} vs {}", future.rows, counts.future_rows)
    })?;
    let dead_letters = totals(cx.local, cx.lake, &Lake::run_rel(&run, &STREAM_DEAD_LETTERS), Shape::Rows).await?;
    let dead_logged = offsets.dead_letters.as_ref().map_or(0, |f| f.rows);
    check(
        &format!("batch {id}: dead letters written = records turned away"),
        dead_letters.rows as u64 == dead_logged,
        || format!("{} vs {dead_logged}", dead_letters.rows),
    )?;
    durations.check_ms = t.elapsed().as_millis() as u64;

    // 4. commit
    let t = Instant::now();
    let mut outputs = Vec::new();
    for table in OUTPUT_TABLES {
        let files = cx.lake.run_data_files(&run, &table).await?;
        if !files.is_empty() {
            outputs.push((table.name.to_string(), files));
        }
    }
    let state_batch = if state_written {
        (new_state.rows > 0).then_some(id)
    } else if offsets.flush {
        None
    } else {
        before.state_batch
    };
    let mut progress = BatchProgress {
        batch_id: id,
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        files: offsets.files.iter().map(|f| f.path.clone()).collect(),
        quarantined: offsets.quarantined.clone(),
        input_rows: counts.input_rows as u64,
        silver_rows: counts.silver_rows as u64,
        late_rows: counts.late_rows as u64,
        emitted_windows: closed.rows as u64,
        open_windows: new_state.rows as u64,
        flush: offsets.flush,
        kafka_ranges: offsets.kafka.as_ref().map(|k| k.ranges.clone()).unwrap_or_default(),
        dead_letters: dead_logged,
        future_rows: counts.future_rows as u64,
        ..Default::default()
    };
    progress.set_watermark(watermark, counts.max_event_time);
    let mut totals = before.totals;
    totals.add(&progress);
    let commit =
        Commit { batch_id: id, watermark, state_batch, outputs, moves: Vec::new(), progress, totals: Some(totals) };
    cx.lease.check().await?;
    cx.checkpoint.write_commit(&commit).await?;
    pause("after-commit-record", id);
    finish_commit(cx, &commit).await?;
    durations.commit_ms = t.elapsed().as_millis() as u64;

    let mut commit = commit;
    durations.total_ms = (started.elapsed() + plan).as_millis() as u64;
    let seconds = (durations.total_ms as f64 / 1000.0).max(1e-3);
    commit.progress.input_rows_per_second = commit.progress.input_rows as f64 / seconds;
    commit.progress.durations = durations;
    cx.checkpoint.append_progress(&commit.progress).await?;
    Ok(commit)
}

/// Writes the open windows (the new state) and the closed ones (staged
/// output) as two Ballista jobs running at once.
async fn write_windows(
    open: Option<DataFrame>,
    closed: DataFrame,
    state_url: &str,
    output_url: &str,
) -> anyhow::Result<()> {
    let state = async {
        if let Some(open) = open {
            write_partitioned(open, &STREAM_STATE, state_url).await.context("state job")?;
        }
        anyhow::Ok(())
    };
    let output = async {
        write_partitioned(closed, &GOLD_STREAM_FUNNEL_HOURLY_BRAND, output_url).await.context("output job")?;
        anyhow::Ok(())
    };
    futures::try_join!(state, output)?;
    Ok(())
}

/// Applies a commit record: appends its files to the tables, then removes
/// what the batch no longer needs. Idempotent (a restart calls it again):
/// each append carries the batch id as the stream's Delta `txn` version, and
/// a table that already holds the batch is left alone.
pub async fn finish_commit(cx: &BatchContext<'_>, commit: &Commit) -> anyhow::Result<()> {
    for (name, files) in &commit.outputs {
        let table =
            OUTPUT_TABLES.into_iter().find(|t| t.name == name).with_context(|| format!("unknown table {name}"))?;
        cx.lake
            .commit_append(&table, files.clone(), &cx.metadata.id, commit.batch_id as i64)
            .await
            .with_context(|| format!("committing batch {}", commit.batch_id))?;
        pause(&format!("after-append:{name}"), commit.batch_id);
    }
    pause("after-appends", commit.batch_id);
    cx.checkpoint.prune_batches(commit.state_batch).await?;
    cx.checkpoint.prune_inputs(commit.batch_id).await?;
    Ok(())
}

// Semantics: docs/semantics.md#reconciliation-checks
fn reconcile(
    counts: &Counts,
    old_state: &Totals,
    new_state: &Totals,
    closed: &Totals,
    late_written: i64,
    id: u64,
    dedup: bool,
) -> anyhow::Result<()> {
    let pairs = [
        ("views", new_state.views + closed.views, old_state.views + counts.views),
        ("carts", new_state.carts + closed.carts, old_state.carts + counts.carts),
        ("purchases", new_state.purchases + closed.purchases, old_state.purchases + counts.purchases),
    ];
    for (what, after, before) in pairs {
        // De-duplication may only remove events.
        let holds = if dedup { after <= before } else { after == before };
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

/// Columns of the output tables (the partition column last, a date), for
/// the empty tables a new stream starts with; `dead_letters`: with the
/// dead-letter table (sources that turn records away).
pub fn output_table_schemas(
    local: &SessionContext,
    dead_letters: bool,
) -> anyhow::Result<Vec<(funnelpulse_core::TableSpec, SchemaRef)>> {
    use datafusion::arrow::record_batch::RecordBatch;
    let no_windows = local.read_batch(RecordBatch::new_empty(partials_file_schema()))?;
    let closed = closed_rows(merge(no_windows, None)?, None)?;
    let late = late_rows(local.read_batch(RecordBatch::new_empty(input_schema()))?, None, 0)?;
    let future = future_rows(local.read_batch(RecordBatch::new_empty(input_schema()))?, 0, 0)?;
    let without_partition = |df: &DataFrame, pcol: &str| -> anyhow::Result<SchemaRef> {
        use datafusion::arrow::datatypes::{Field, Schema};
        let arrow = df.schema().as_arrow();
        let mut fields: Vec<Field> =
            arrow.fields().iter().filter(|f| f.name() != pcol).map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(pcol, DataType::Date32, true));
        Ok(std::sync::Arc::new(Schema::new(fields)))
    };
    let mut schemas = vec![
        (GOLD_STREAM_FUNNEL_HOURLY_BRAND, without_partition(&closed, GOLD_STREAM_FUNNEL_HOURLY_BRAND.partition_col)?),
        (LATE_EVENTS, without_partition(&late, LATE_EVENTS.partition_col)?),
        (FUTURE_EVENTS, without_partition(&future, FUTURE_EVENTS.partition_col)?),
    ];
    if dead_letters {
        let letters = local.read_batch(RecordBatch::new_empty(funnelpulse_kafka::decode::dead_letter_schema()))?;
        schemas.push((STREAM_DEAD_LETTERS, without_partition(&letters, STREAM_DEAD_LETTERS.partition_col)?));
    }
    Ok(schemas)
}
