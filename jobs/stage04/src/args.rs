//! Stage 04's options.

use std::time::Duration;

use funnelpulse_engine::ClockArgs;

use crate::checkpoint;
use crate::source::KafkaSourceArgs;

/// Default source, relative to the lake root (stage 03's output).
pub const STREAM_INPUT: &str = "stream_input/";
/// Default checkpoint, relative to the lake root.
pub const CHECKPOINT: &str = "checkpoints/stream_hourly_brand/";

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
