//! Stage 04: the streaming hourly brand funnel — micro-batches over new
//! files, each a set of Ballista jobs, with an event-time watermark, append
//! output and exactly-once results across crashes.
//!
//! - [`source`]: what a batch consumes: new files of a folder (name order,
//!   settled, checked) or offset ranges of a Kafka topic (staged as Parquet);
//! - [`checkpoint`]: the write-ahead log, state and commits that make a
//!   killed run resume with identical output;
//! - [`batch`]: one micro-batch's jobs, reconciliation and commit;
//! - [`progress`]: per-batch progress and `funnelpulse stream status`.

pub mod batch;
pub mod checkpoint;
pub mod lease;
pub mod progress;
pub mod source;

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::prelude::{SessionConfig, SessionContext};
use funnelpulse_core::tables::{FUTURE_EVENTS, GOLD_STREAM_FUNNEL_HOURLY_BRAND, LATE_EVENTS, STREAM_DEAD_LETTERS};
use funnelpulse_engine::{ClockArgs, Engine, StageProgress, shutdown};
use funnelpulse_lake::{AsOf, Lake};

use crate::batch::{BatchContext, Before, OUTPUT_TABLES, execute, finish_commit, output_table_schemas};
use crate::checkpoint::{Checkpoint, Metadata, Offsets, Position, Quarantined};
use crate::lease::Lease;
use crate::progress::{BatchProgress, Status, Totals};
use crate::source::{FileSource, KafkaSource, KafkaSourceArgs, Next, StreamSource};

/// Default source, relative to the lake root (stage 03's output).
pub const STREAM_INPUT: &str = "stream_input/";
/// Default checkpoint, relative to the lake root.
pub const CHECKPOINT: &str = "checkpoints/stream_hourly_brand/";
// Semantics: docs/semantics.md#de-duplication-within-the-watermark
/// What the checkpoint aggregates; a checkpoint of another aggregation is refused.
fn aggregation(dedup: bool) -> &'static str {
    if dedup {
        "hourly_brand: silver filters, de-duplicated within open windows, 1 hour windows"
    } else {
        "hourly_brand: silver filters, no de-duplication, 1 hour windows"
    }
}

/// Where the events come from.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceKind {
    /// New Parquet files in a folder (--stream-source; stage 03 writes them).
    #[default]
    Files,
    /// A Kafka topic (--bootstrap-servers, --topic; `funnelpulse kafka replay` fills it).
    Kafka,
}

// Semantics: docs/semantics.md#streaming-funnel-stage-04
/// Options of stage 04, the streaming hourly brand funnel.
#[derive(clap::Args, Debug, Clone)]
pub struct Stage04Args {
    /// Where the stream's events come from.
    #[arg(long = "source", value_enum, env = "FUNNELPULSE_STREAM_SOURCE_KIND", default_value_t)]
    pub source: SourceKind,
    /// Options of the Kafka source (`--source kafka`).
    #[command(flatten)]
    pub kafka: KafkaSourceArgs,
    /// Folder whose new Parquet files are the stream (local or gs://) [default: <lake>/stream_input/].
    #[arg(long, env = "FUNNELPULSE_STREAM_SOURCE")]
    pub stream_source: Option<String>,
    /// Checkpoint folder [default: <lake>/checkpoints/stream_hourly_brand/].
    #[arg(long, env = "FUNNELPULSE_CHECKPOINT")]
    pub checkpoint: Option<String>,
    /// New files taken by one micro-batch at most.
    #[arg(long, env = "FUNNELPULSE_MAX_FILES_PER_TRIGGER", default_value_t = 2)]
    pub max_files_per_trigger: usize,
    /// Watermark delay: windows close when the latest event time minus this passes their end.
    #[arg(long, env = "FUNNELPULSE_WATERMARK", default_value = "2h", value_parser = funnelpulse_engine::args::parse_duration)]
    pub watermark: Duration,
    /// Process the files present at the start, then stop (bounded run).
    #[arg(long)]
    pub available_now: bool,
    /// At the end of the run, emit every open window (and close them for good).
    #[arg(long)]
    pub flush_at_end: bool,
    /// Continuous mode: how often the source folder is polled when there is nothing new.
    #[arg(long, env = "FUNNELPULSE_TRIGGER_INTERVAL", default_value = "2s", value_parser = funnelpulse_engine::args::parse_duration)]
    pub trigger_interval: Duration,
    /// A file is taken only once it has not been modified for this long.
    #[arg(long, env = "FUNNELPULSE_FILE_SETTLE", default_value = "2s", value_parser = funnelpulse_engine::args::parse_duration)]
    pub file_settle: Duration,
    /// Start over: delete the checkpoint and the stream's output tables first.
    #[arg(long)]
    pub reset_stream: bool,
    /// De-duplicate events (silver's key and choice of row) while their window is open; the
    /// classic streaming job does not.
    #[arg(long, env = "FUNNELPULSE_DEDUP_WITHIN_WATERMARK")]
    pub dedup_within_watermark: bool,
    /// One stream per checkpoint: a stream that has not renewed its lease for
    /// this long (killed, or cut off) can be replaced by another.
    #[arg(long, env = "FUNNELPULSE_LEASE_TTL", default_value = "30s", value_parser = funnelpulse_engine::args::parse_duration)]
    pub lease_ttl: Duration,
    /// `--max-clock-skew` (shared with stage 01's count of the same events).
    #[command(flatten)]
    pub clock: ClockArgs,
    /// Batches whose offsets, commit and progress lines the checkpoint keeps (as Spark's
    /// minBatchesToRetain); older ones are folded and deleted every 10 batches.
    #[arg(long, env = "FUNNELPULSE_MIN_BATCHES_TO_RETAIN", default_value_t = checkpoint::DEFAULT_RETAIN,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub min_batches_to_retain: u64,
}

impl Default for Stage04Args {
    fn default() -> Self {
        Self {
            source: SourceKind::Files,
            kafka: KafkaSourceArgs::default(),
            stream_source: None,
            checkpoint: None,
            max_files_per_trigger: 2,
            watermark: Duration::from_secs(7200),
            available_now: false,
            flush_at_end: false,
            trigger_interval: Duration::from_secs(2),
            file_settle: Duration::from_secs(2),
            reset_stream: false,
            dedup_within_watermark: false,
            lease_ttl: Duration::from_secs(30),
            clock: ClockArgs::default(),
            min_batches_to_retain: checkpoint::DEFAULT_RETAIN,
        }
    }
}

/// Batch durations kept for the run's p50: a stream that runs for days keeps
/// its sums, its last batch and this many durations, not every batch.
const RECENT_DURATIONS: usize = 10_000;

/// What one run of stage 04 did, printed when it ends.
#[derive(Debug, Default)]
pub struct Stage04Report {
    /// Sums over this run's batches.
    pub totals: Totals,
    /// This run's last batch.
    pub last: Option<BatchProgress>,
    /// The durations of this run's latest batches (flushes aside), oldest first.
    recent_ms: VecDeque<u64>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// URL of the output table (gold_stream_funnel_hourly_brand).
    pub output: String,
}

impl Stage04Report {
    fn add(&mut self, batch: BatchProgress) {
        self.totals.add(&batch);
        if !batch.flush {
            if self.recent_ms.len() == RECENT_DURATIONS {
                self.recent_ms.pop_front();
            }
            self.recent_ms.push_back(batch.durations.total_ms);
        }
        self.last = Some(batch);
    }

    /// The median duration of the latest batches, in ms.
    fn p50_ms(&self) -> u64 {
        let mut sorted: Vec<u64> = self.recent_ms.iter().copied().collect();
        sorted.sort_unstable();
        sorted.get(sorted.len().saturating_sub(1) / 2).copied().unwrap_or(0)
    }
}

impl fmt::Display for Stage04Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.totals;
        let seconds = self.elapsed.as_secs_f64().max(1e-3);
        write!(
            f,
            "stage 04 done in {:.1}s: {} batches, {} files, {} rows ({:.0} rows/s), {} windows emitted, {} late rows, \
             {} files quarantined, {} dead letters, {} events from the future; batch p50 {} ms; ",
            seconds,
            t.batches,
            t.files,
            t.input_rows,
            t.input_rows as f64 / seconds,
            t.emitted_windows,
            t.late_rows,
            t.quarantined,
            t.dead_letters,
            t.future_rows,
            self.p50_ms(),
        )?;
        match &self.last {
            Some(last) => writeln!(
                f,
                "watermark {}, {} windows open; output at {}",
                last.watermark.as_deref().unwrap_or("none"),
                last.open_windows,
                self.output
            ),
            None => writeln!(f, "nothing new; output at {}", self.output),
        }
    }
}

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

fn open_checkpoint(lake: &Lake, args: &Stage04Args, stores: &dyn ObjectStoreRegistry) -> anyhow::Result<Checkpoint> {
    let url = args.checkpoint.clone().unwrap_or_else(|| lake.url_of(CHECKPOINT));
    let folder = Lake::open(&url, stores).with_context(|| format!("checkpoint {url}"))?;
    Ok(Checkpoint::new(folder).retaining(args.min_batches_to_retain))
}

fn open_places(lake: &Lake, args: &Stage04Args, stores: &dyn ObjectStoreRegistry) -> anyhow::Result<Places> {
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
            anyhow::ensure!(
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
fn local_context() -> anyhow::Result<SessionContext> {
    let config = SessionConfig::new();
    let runtime = funnelpulse_engine::cluster::runtime_env(&config)?;
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

/// Runs the stream under the checkpoint's lease: completes or re-runs an unfinished batch, then runs batches
/// until a bounded run has taken its input or a signal stops it, then flushes if asked.
pub async fn run(engine: &Engine, lake: &Lake, args: &Stage04Args) -> anyhow::Result<Stage04Report> {
    anyhow::ensure!(args.max_files_per_trigger >= 1, "--max-files-per-trigger must be at least 1");
    anyhow::ensure!(args.kafka.max_records_per_trigger >= 1, "--max-records-per-trigger must be at least 1");
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
) -> anyhow::Result<Stage04Report> {
    if args.reset_stream {
        reset(lake, &checkpoint).await?;
        progress.line("reset: checkpoint and stream output tables deleted");
    }
    let metadata = bind_checkpoint(lake, &checkpoint, &mut stream, &source_name, args, local).await?;
    let cx = BatchContext {
        engine,
        lease,
        local,
        lake,
        source: &files,
        checkpoint: &checkpoint,
        metadata: &metadata,
        dedup: args.dedup_within_watermark,
    };
    // A signal (the binary's handler) stops the stream after the batch in progress.
    let _graceful = shutdown::graceful();
    let mut report = Stage04Report { output: lake.table_url(&GOLD_STREAM_FUNNEL_HOURLY_BRAND), ..Default::default() };
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
) -> anyhow::Result<BatchProgress> {
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
) -> anyhow::Result<Position> {
    let (mut position, last) = cx.checkpoint.position().await?;
    if let Some(commit) = &last {
        finish_commit(cx, commit).await?;
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

/// The stream's output tables: with a source that turns records away, the dead letters too.
fn output_tables(stream: &StreamSource) -> Vec<funnelpulse_core::TableSpec> {
    let mut tables = vec![GOLD_STREAM_FUNNEL_HOURLY_BRAND, LATE_EVENTS, FUTURE_EVENTS];
    if matches!(stream, StreamSource::Kafka(_)) {
        tables.push(STREAM_DEAD_LETTERS);
    }
    tables
}

/// Checks that the checkpoint belongs to these options, or starts a new one.
async fn bind_checkpoint(
    lake: &Lake,
    checkpoint: &Checkpoint,
    stream: &mut StreamSource,
    source_name: &str,
    args: &Stage04Args,
    local: &SessionContext,
) -> anyhow::Result<Metadata> {
    let mut wanted = Metadata::new(
        source_name,
        &lake.table_url(&GOLD_STREAM_FUNNEL_HOURLY_BRAND),
        args.watermark.as_micros() as i64,
        aggregation(args.dedup_within_watermark),
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
        create_empty_tables(lake, &existing, local, matches!(stream, StreamSource::Kafka(_))).await?;
        return Ok(existing);
    }
    for table in output_tables(stream) {
        let files = lake.snapshot(&table, &AsOf::Latest).await?.map(|s| s.files.len()).unwrap_or(0);
        anyhow::ensure!(
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
    create_empty_tables(lake, &wanted, local, matches!(stream, StreamSource::Kafka(_))).await?;
    Ok(wanted)
}

/// A new stream's tables exist (empty) before the first window closes.
async fn create_empty_tables(
    lake: &Lake,
    metadata: &Metadata,
    local: &SessionContext,
    dead_letters: bool,
) -> anyhow::Result<()> {
    let _ = metadata;
    for (table, schema) in output_table_schemas(local, dead_letters)? {
        lake.ensure_table(&table, schema).await?;
    }
    Ok(())
}

/// `--reset-stream`: the checkpoint goes, and the output tables are emptied
/// (a new version without rows; the earlier ones stay readable by version
/// until `funnelpulse lake vacuum`).
async fn reset(lake: &Lake, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    checkpoint.clear().await?;
    let run = funnelpulse_lake::new_run_id();
    for table in OUTPUT_TABLES {
        lake.truncate(&table, &format!("reset-{run}")).await?;
    }
    Ok(())
}

/// Files quarantined by committed batches (not by the one pending).
fn committed_quarantine(position: &Position) -> Vec<Quarantined> {
    let pending = position.pending.iter().flat_map(|p| &p.quarantined);
    let pending: std::collections::HashSet<&str> = pending.map(|q| q.path.as_str()).collect();
    position.quarantined.iter().filter(|q| !pending.contains(q.path.as_str())).cloned().collect()
}

/// `funnelpulse stream status`: what the checkpoint says, and what waits in
/// the source (for a Kafka stream, when the brokers are given).
pub async fn status(lake: &Lake, args: &Stage04Args, stores: &dyn ObjectStoreRegistry) -> anyhow::Result<Status> {
    let checkpoint = open_checkpoint(lake, args, stores)?;
    let metadata = checkpoint
        .metadata()
        .await?
        .with_context(|| format!("no stream checkpoint at {} (run stage 04 first)", checkpoint.url()))?;
    let (position, _) = checkpoint.position().await?;
    let mut rebuilt = None;
    let waiting = match metadata.source.strip_prefix("kafka:") {
        Some(topic) if args.kafka.bootstrap_servers.is_some() => {
            let kafka = KafkaSourceArgs { topic: topic.to_string(), ..args.kafka.clone() };
            let mut source = KafkaSource::new(&kafka, &checkpoint)?;
            source.bind(&metadata.kafka_start);
            StreamSource::Kafka(Box::new(source)).waiting(&position).await?
        }
        Some(_) => "records waiting in the topic: unknown (give --bootstrap-servers to see the lag)".to_string(),
        None => {
            let folder = Lake::open(&metadata.source, stores)?;
            let current = folder.generation("").await?.map(|g| g.id);
            // (A checkpoint from before generations is judged by its files at the next run.)
            if metadata.source_generation.is_some() && current != metadata.source_generation {
                let now = current.map_or("no generation marker".to_string(), |id| format!("generation {id}"));
                rebuilt = Some(format!(
                    "the source was rebuilt since this checkpoint read it (it holds {now}): the next run refuses it; \
                     --reset-stream starts over on the new files"
                ));
            }
            StreamSource::Files(FileSource::new(folder, 1, Duration::ZERO)).waiting(&position).await?
        }
    };
    Ok(Status {
        checkpoint: checkpoint.url(),
        source: metadata.source.clone(),
        output: metadata.output.clone(),
        watermark_delay: humantime::format_duration(Duration::from_micros(metadata.watermark_micros as u64))
            .to_string(),
        totals: position.totals,
        recent: checkpoint.recent_progress(5).await?,
        quarantined: committed_quarantine(&position),
        waiting,
        rebuilt,
        pending_batch: position.pending.map(|p| p.batch_id),
    })
}

/// The streaming hourly brand funnel.
pub struct Stage04;

impl funnelpulse_engine::Stage for Stage04 {
    const ID: &'static str = "04";
    const ABOUT: &'static str = "streaming hourly brand funnel over new files or Kafka, exactly once, on Ballista";
    type Args = Stage04Args;
    type Report = Stage04Report;

    async fn run(engine: &Engine, lake: &Lake, args: &Stage04Args) -> anyhow::Result<Stage04Report> {
        run(engine, lake, args).await
    }
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
