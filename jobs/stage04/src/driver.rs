//! The driver: a stream's run under its checkpoint's lease — bind the
//! checkpoint to the options, finish or re-run what a killed run left, then
//! ask the source for batches until a bounded run has taken its input or a
//! signal (the binary's handler) stops it, and flush if asked.

use std::time::{Duration, Instant};

use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::prelude::{SessionConfig, SessionContext};
use funnelpulse_core::tables::GOLD_STREAM_FUNNEL_HOURLY_BRAND;
use funnelpulse_engine::{ClockArgs, Engine, StageProgress, shutdown};
use funnelpulse_engine::{Context, bail};
use funnelpulse_lake::{AsOf, Lake};

use crate::args::{CHECKPOINT, STREAM_INPUT, SourceKind, Stage04Args};
use crate::batch::{self, BatchContext, Before, execute};
use crate::checkpoint::{Checkpoint, Metadata, Offsets, Position, Quarantined};
use crate::lease::Lease;
use crate::progress::BatchProgress;
use crate::report::Stage04Report;
use crate::sink;
use crate::source::{self, FileSource, KafkaSource, Next, StreamSource};
use crate::state::{self, StateStore};

/// What a stream works with.
struct Places {
    /// The folder the batches' file paths are relative to (the source
    /// folder, or the checkpoint for sources that stage their records).
    files: Lake,
    checkpoint: Checkpoint,
    stream: StreamSource,
    /// The source as the checkpoint's metadata names it.
    source_name: String,
}

pub(crate) fn open_checkpoint(
    lake: &Lake,
    args: &Stage04Args,
    stores: &dyn ObjectStoreRegistry,
) -> funnelpulse_engine::Result<Checkpoint> {
    let url = args.checkpoint.clone().unwrap_or_else(|| lake.url_of(CHECKPOINT));
    let folder = Lake::open(&url, stores).with_context(|| format!("checkpoint {url}"))?;
    Ok(Checkpoint::new(folder).retaining(args.min_batches_to_retain))
}

fn open_places(
    lake: &Lake,
    args: &Stage04Args,
    stores: &dyn ObjectStoreRegistry,
) -> funnelpulse_engine::Result<Places> {
    let checkpoint = open_checkpoint(lake, args, stores)?;
    match args.source {
        SourceKind::Files => {
            let url = args.stream_source.clone().unwrap_or_else(|| lake.url_of(STREAM_INPUT));
            let folder = Lake::open(&url, stores).with_context(|| format!("stream source {url}"))?;
            let source = FileSource::new(folder.clone(), args.max_files_per_trigger, args.file_settle);
            Ok(Places {
                source_name: folder.url().to_string(),
                files: folder,
                checkpoint,
                stream: StreamSource::Files(source),
            })
        }
        SourceKind::Kafka => {
            funnelpulse_engine::ensure!(
                args.stream_source.is_none(),
                "--stream-source is a folder for --source files; with --source kafka give --topic"
            );
            let source = KafkaSource::new(&args.kafka, &checkpoint)?;
            Ok(Places {
                source_name: args.kafka.source_name(),
                files: checkpoint.folder.clone(),
                checkpoint,
                stream: StreamSource::Kafka(Box::new(source)),
            })
        }
    }
}

/// Plain DataFusion with our object stores, for the client's small reads.
fn local_context() -> funnelpulse_engine::Result<SessionContext> {
    let config = SessionConfig::new();
    let runtime = funnelpulse_engine::cluster::runtime_env(&config)?;
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

/// Runs the stream under the checkpoint's lease: completes or re-runs an unfinished batch, then runs batches
/// until a bounded run has taken its input or a signal stops it, then flushes if asked.
pub async fn run(engine: &Engine, lake: &Lake, args: &Stage04Args) -> funnelpulse_engine::Result<Stage04Report> {
    funnelpulse_engine::ensure!(args.max_files_per_trigger >= 1, "--max-files-per-trigger must be at least 1");
    funnelpulse_engine::ensure!(
        args.kafka.max_records_per_trigger >= 1,
        "--max-records-per-trigger must be at least 1"
    );
    let progress = StageProgress::start("04");
    funnelpulse_engine::staged::prepare_lake(lake).await?;
    let stores = engine.ctx.runtime_env().object_store_registry.clone();
    let Places { files, checkpoint, stream, source_name } = open_places(lake, args, stores.as_ref())?;
    let local = local_context()?;
    let lease = Lease::acquire(&checkpoint.folder, args.lease_ttl).await?;
    let outcome =
        run_holding(engine, lake, args, &lease, &local, checkpoint, files, stream, source_name, progress).await;
    lease.release().await;
    outcome
}

/// Stage 04 once the checkpoint is ours.
#[allow(clippy::too_many_arguments)]
async fn run_holding(
    engine: &Engine,
    lake: &Lake,
    args: &Stage04Args,
    lease: &Lease,
    local: &SessionContext,
    checkpoint: Checkpoint,
    files: Lake,
    mut stream: StreamSource,
    source_name: String,
    progress: StageProgress,
) -> funnelpulse_engine::Result<Stage04Report> {
    if args.reset_stream {
        reset(lake, &checkpoint).await?;
        progress.line("reset: checkpoint and stream output tables deleted");
    }
    let state = state::store(args.dedup_within_watermark);
    let metadata = bind_checkpoint(lake, &checkpoint, &mut stream, &source_name, args, state.as_ref(), local).await?;
    let cx = BatchContext {
        engine,
        lease,
        local,
        lake,
        source: &files,
        checkpoint: &checkpoint,
        metadata: &metadata,
        state: state.as_ref(),
    };
    // A signal (the binary's handler) stops the stream after the batch in progress.
    let _graceful = shutdown::graceful();
    let mut report = Stage04Report::new(lake.table_url(&GOLD_STREAM_FUNNEL_HOURLY_BRAND));
    let mut position = resume(&cx, &mut stream, &progress, &mut report).await?;
    // Bounded runs take what is there now; continuous runs poll.
    if let Some(note) = stream.start(&position, args.available_now).await? {
        progress.line(note);
    }
    while !shutdown::requested() {
        progress.step(format!("batch {}: looking for new input", position.next_batch));
        let planning = Instant::now();
        match stream.next(&position, &checkpoint).await? {
            Next::Done => break,
            Next::Idle { waiting, warning } => {
                warning.into_iter().for_each(|w| progress.line(w));
                progress.step(waiting);
                shutdown::sleep(args.trigger_interval).await;
            }
            Next::Batch { mut offsets, warning } => {
                warning.into_iter().for_each(|w| progress.line(w));
                offsets.future_cutoff = Some(future_cutoff(&args.clock, &position));
                batch::pause("before-offsets", offsets.batch_id);
                lease.check().await?;
                checkpoint.write_offsets(&offsets).await?;
                batch::pause("after-offsets", offsets.batch_id);
                progress.step(format!("batch {}: running", offsets.batch_id));
                let commit = run_logged(&cx, &stream, offsets, &mut position, planning.elapsed()).await?;
                stream.committed(&position).await;
                progress.line(commit.to_string());
                report.add(commit);
                funnelpulse_engine::memory::release_free_memory();
            }
        }
    }
    if args.flush_at_end && position.state_batch.is_some() {
        let offsets = Offsets { flush: true, ..Offsets::new(position.next_batch, position.watermark) };
        lease.check().await?;
        checkpoint.write_offsets(&offsets).await?;
        progress.step("flushing open windows");
        let commit = run_logged(&cx, &stream, offsets, &mut position, Duration::ZERO).await?;
        progress.line(commit.to_string());
        report.add(commit);
    }
    report.elapsed = progress.elapsed();
    progress.finish();
    Ok(report)
}

// Semantics: docs/semantics.md#which-rows-a-batch-counts
/// The future cutoff of the next batch: the clock plus the skew, never
/// earlier than a cutoff already logged (a clock set back must not make an
/// event counted in an open window one from the future).
fn future_cutoff(clock: &ClockArgs, position: &Position) -> i64 {
    clock.cutoff_now().max(position.future_cutoff.unwrap_or(i64::MIN))
}

/// Runs a logged batch; a file that turns out to be damaged is quarantined
/// and the batch runs again without it.
async fn run_logged(
    cx: &BatchContext<'_>,
    stream: &StreamSource,
    mut offsets: Offsets,
    position: &mut Position,
    plan: Duration,
) -> funnelpulse_engine::Result<BatchProgress> {
    let before = Before { watermark: position.watermark, state_batch: position.state_batch, totals: position.totals };
    let commit = match execute(cx, &offsets, before, plan).await {
        Ok(commit) => commit,
        Err(error) => {
            if let Some(rebuilt) = stream.rebuilt(cx.checkpoint).await {
                return Err(rebuilt);
            }
            let mut damaged = Vec::new();
            for file in &offsets.files {
                if let Err(reason) = source::decode_fully(cx.source, file).await {
                    damaged.push(Quarantined { path: file.path.clone(), reason });
                }
            }
            if damaged.is_empty() {
                return Err(error.context(format!(
                    "batch {} failed; its files are readable, so the next run re-runs it",
                    offsets.batch_id
                )));
            }
            offsets.files.retain(|f| !damaged.iter().any(|d| d.path == f.path));
            offsets.quarantined.extend(damaged);
            cx.checkpoint.write_offsets(&offsets).await?;
            execute(cx, &offsets, before, plan).await?
        }
    };
    position.consume(&offsets);
    position.next_batch = commit.batch_id + 1;
    position.watermark = commit.watermark;
    position.state_batch = commit.state_batch;
    position.totals = commit.totals.unwrap_or_default();
    cx.checkpoint.prune_log(position, commit.batch_id).await?;
    Ok(commit.progress)
}

/// Completes the last commit and re-runs a batch that was logged but not committed.
async fn resume(
    cx: &BatchContext<'_>,
    stream: &mut StreamSource,
    progress: &StageProgress,
    report: &mut Stage04Report,
) -> funnelpulse_engine::Result<Position> {
    let (mut position, last) = cx.checkpoint.position().await?;
    if let Some(commit) = &last {
        sink::finish_commit(cx.lake, cx.checkpoint, cx.metadata, commit).await?;
        cx.checkpoint.append_progress(&commit.progress).await?;
    }
    if let Some(pending) = position.pending.take() {
        progress.line(format!("re-running batch {} (started by a run that did not finish)", pending.batch_id));
        stream.prepare_rerun(&pending).await?;
        let commit = run_logged(cx, stream, pending, &mut position, Duration::ZERO).await?;
        stream.committed(&position).await;
        progress.line(commit.to_string());
        report.add(commit);
    }
    Ok(position)
}

/// Checks that the checkpoint belongs to these options, or starts a new one.
async fn bind_checkpoint(
    lake: &Lake,
    checkpoint: &Checkpoint,
    stream: &mut StreamSource,
    source_name: &str,
    args: &Stage04Args,
    state: &dyn StateStore,
    local: &SessionContext,
) -> funnelpulse_engine::Result<Metadata> {
    let dead_letters = matches!(stream, StreamSource::Kafka(_));
    let mut wanted = Metadata::new(
        source_name,
        &lake.table_url(&GOLD_STREAM_FUNNEL_HOURLY_BRAND),
        args.watermark.as_micros() as i64,
        state.aggregation(),
    );
    if let Some(mut existing) = checkpoint.metadata().await? {
        let differences = existing.differences(&wanted);
        if !differences.is_empty() {
            bail!(
                "checkpoint {} was started with other options ({}); use another --checkpoint, or --reset-stream to \
                 start over",
                checkpoint.url(),
                differences.join("; ")
            );
        }
        if let StreamSource::Kafka(kafka) = stream {
            kafka.bind(&existing.kafka_start);
        }
        if let StreamSource::Files(files) = stream
            && files.bind(checkpoint, &mut existing, false).await?
        {
            checkpoint.write_metadata(&existing).await?;
        }
        // A checkpoint of an older version may lack a table added since (future_events).
        sink::create_empty_tables(lake, local, dead_letters).await?;
        return Ok(existing);
    }
    for table in sink::output_tables(dead_letters) {
        let files = lake.snapshot(&table, &AsOf::Latest).await?.map(|s| s.files.len()).unwrap_or(0);
        funnelpulse_engine::ensure!(
            files == 0,
            "{} already holds rows written with another checkpoint; --reset-stream empties it and starts over",
            table.name
        );
    }
    match stream {
        StreamSource::Kafka(kafka) => {
            wanted.kafka_start = kafka.starting_positions().await?;
            kafka.bind(&wanted.kafka_start);
        }
        StreamSource::Files(files) => {
            files.bind(checkpoint, &mut wanted, true).await?;
        }
    }
    checkpoint.write_metadata(&wanted).await?;
    sink::create_empty_tables(lake, local, dead_letters).await?;
    Ok(wanted)
}

/// `--reset-stream`: the checkpoint goes, and the output tables are emptied.
async fn reset(lake: &Lake, checkpoint: &Checkpoint) -> funnelpulse_engine::Result<()> {
    checkpoint.clear().await?;
    sink::empty_tables(lake).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_future_cutoff_never_moves_back() {
        let clock = ClockArgs::default();
        let fresh = Position::default();
        let now = chrono::Utc::now().timestamp_micros();
        let hour = 3_600_000_000;
        assert!((now + hour..now + hour + 60_000_000).contains(&future_cutoff(&clock, &fresh)));
        // A cutoff logged by a clock that was ahead is kept.
        let ahead = Position { future_cutoff: Some(now + 10 * hour), ..Default::default() };
        assert_eq!(future_cutoff(&clock, &ahead), now + 10 * hour);
    }

    #[test]
    fn offsets_of_older_versions_have_no_future_cutoff() {
        let old: Offsets =
            serde_json::from_str(r#"{"batch_id":3,"files":[],"quarantined":[],"watermark":null,"flush":false}"#)
                .unwrap();
        assert_eq!(old.future_cutoff, None);
    }
}
