//! The checkpoint: what makes the stream exactly-once.
//!
//! Layout under the checkpoint folder (local or `gs://`):
//! - `metadata.json`: the options the checkpoint was started with; a run with
//!   other options (source, watermark, aggregation, output) is refused;
//! - `offsets/<id>.json`: the write-ahead log: a batch's files, the
//!   watermark it runs with, the files quarantined — written *before* the
//!   batch runs, so a restart re-runs exactly the same batch;
//! - `offsets/folded-<id>.json`: what the offsets of batches up to `id` say
//!   that a restart needs (files seen and quarantined, Kafka positions),
//!   folded into one file so that older offsets can be deleted;
//! - `batches/<id>/state/`: open windows after batch `id` (Parquet);
//! - `commits/<id>.json`: written once the batch's output is staged and
//!   checked — the commit point. It lists the output files of each table;
//!   they are appended to the tables' Delta logs, each append carrying the
//!   batch id, so a restart re-applies it only where it is missing. It also
//!   carries the stream's running totals;
//! - `progress/<first id>.jsonl`: one line of [`BatchProgress`] per committed
//!   batch, [`LOG_STEP`] batches per segment (object stores cannot append: a
//!   batch rewrites its segment only, a bounded write);
//! - `input/<id>.parquet`, `input/<id>.dead_letters.parquet`: a batch's
//!   records staged by a source that is not a folder of files (Kafka),
//!   deleted once the batch is committed.
//!
//! **Retention** (as Spark's `minBatchesToRetain`): every [`LOG_STEP`]
//! batches, offsets, commits and progress segments older than the last
//! `--min-batches-to-retain` batches are deleted, after the fold is written.
//! The last commit is always among those kept, and an uncommitted batch is
//! newer than it; so the checkpoint holds at most retain + [`LOG_STEP`]
//! batches of files, and a restart or `stream status` reads a bounded number.
//!
//! On start: re-apply the last commit's appends, then re-run the batch whose
//! offsets have no commit, if any. Outputs of a batch are a function of its
//! offsets and the previous state only, so the re-run writes the same rows.
//!
//! Semantics: docs/semantics.md#checkpoint-files

use std::collections::{BTreeMap, HashSet};

use funnelpulse_engine::Context;
use funnelpulse_lake::{DataFile, Lake};
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutPayload};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use funnelpulse_kafka::source::PartitionRange;

use crate::progress::{BatchProgress, Totals};

/// Format of the checkpoint files; bumped when they change.
const FORMAT: u32 = 1;

/// Batches between two clean-ups of the log, and batches per progress segment.
pub const LOG_STEP: u64 = 10;

/// Offsets and commits kept by default (Spark's `minBatchesToRetain`).
pub const DEFAULT_RETAIN: u64 = 100;

/// The options a checkpoint is bound to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Metadata {
    /// Version of the checkpoint's file format; a checkpoint of another version is refused.
    pub format: u32,
    /// Random id: names this checkpoint's staged files in the lake.
    pub id: String,
    /// The source: the folder's URL, or `kafka:<topic>`.
    pub source: String,
    /// URL of the output table (gold_stream_funnel_hourly_brand).
    pub output: String,
    /// Watermark delay (`--watermark`) in µs.
    pub watermark_micros: i64,
    /// What the windows aggregate, in words (with or without de-duplication).
    pub aggregation: String,
    /// When the checkpoint was started (UTC, RFC 3339).
    pub created: String,
    /// Kafka source: the offset each partition started from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kafka_start: BTreeMap<i32, i64>,
    /// File source: the generation of the folder (stage 03's `_generation.json`)
    /// whose files the checkpoint reads; none for a folder without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_generation: Option<String>,
}

impl Metadata {
    /// Options of a new checkpoint, with a new random id; no Kafka start or source generation yet.
    pub fn new(source: &str, output: &str, watermark_micros: i64, aggregation: &str) -> Self {
        Self {
            format: FORMAT,
            id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
            source: source.to_string(),
            output: output.to_string(),
            watermark_micros,
            aggregation: aggregation.to_string(),
            created: chrono::Utc::now().to_rfc3339(),
            kafka_start: BTreeMap::new(),
            source_generation: None,
        }
    }

    /// The differences that make this checkpoint unusable for `wanted`.
    pub fn differences(&self, wanted: &Metadata) -> Vec<String> {
        let mut out = Vec::new();
        let mut compare = |what: &str, have: String, want: String| {
            if have != want {
                out.push(format!("{what}: checkpoint has {have}, this run asks for {want}"));
            }
        };
        compare("format", self.format.to_string(), wanted.format.to_string());
        compare("source", self.source.clone(), wanted.source.clone());
        compare("output", self.output.clone(), wanted.output.clone());
        compare(
            "watermark",
            humantime::format_duration(std::time::Duration::from_micros(self.watermark_micros as u64)).to_string(),
            humantime::format_duration(std::time::Duration::from_micros(wanted.watermark_micros as u64)).to_string(),
        );
        compare("aggregation", self.aggregation.clone(), wanted.aggregation.clone());
        out
    }
}

/// A source file as recorded in the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoggedFile {
    /// Path relative to the source folder.
    pub path: String,
    /// Size in bytes when the batch was logged.
    pub size: u64,
    /// Rows, from the file's footer: the batch's jobs must account for each.
    #[serde(default)]
    pub rows: u64,
}

/// A source file set aside for good instead of read, with the reason.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Quarantined {
    /// Path relative to the source folder.
    pub path: String,
    /// Why: no usable Parquet footer, missing event columns, or data found damaged.
    pub reason: String,
}

/// `offsets/<id>.json`: what a batch consumes, decided before it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offsets {
    /// The batch; ids count from 0 and name its files in the checkpoint.
    pub batch_id: u64,
    /// Files the batch reads (for Kafka, its records staged in the checkpoint).
    pub files: Vec<LoggedFile>,
    /// Files set aside when the batch was planned, or found damaged when it ran.
    pub quarantined: Vec<Quarantined>,
    /// Watermark in force while the batch runs (µs), none before the first event.
    pub watermark: Option<i64>,
    /// The flush at the end of a bounded run: every open window is emitted.
    pub flush: bool,
    /// Records the source turned away (Kafka records that are not events),
    /// staged for the dead-letter table; path relative to the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<LoggedFile>,
    /// Kafka source: the offset ranges the batch consumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaOffsets>,
    /// Events later than this (µs) are from the future: the clock plus
    /// `--max-clock-skew` when the batch was planned, logged so that a re-run
    /// sets the same events aside (none in logs of older versions: nothing is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub future_cutoff: Option<i64>,
}

impl Offsets {
    /// A batch that consumes nothing yet.
    pub fn new(batch_id: u64, watermark: Option<i64>) -> Self {
        Self {
            batch_id,
            files: Vec::new(),
            quarantined: Vec::new(),
            watermark,
            flush: false,
            dead_letters: None,
            kafka: None,
            future_cutoff: None,
        }
    }
}

/// Kafka source: what a batch consumes of the topic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KafkaOffsets {
    /// The topic read.
    pub topic: String,
    /// Offset ranges read, one per partition with records.
    pub ranges: Vec<PartitionRange>,
    /// Records read from the ranges: events plus dead letters.
    pub records: u64,
}

/// `commits/<id>.json`: the batch is done once this exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    /// The batch this record commits.
    pub batch_id: u64,
    /// Watermark after the batch (µs since the epoch); none before the first event.
    pub watermark: Option<i64>,
    /// The batch whose `batches/<id>/state/` holds the open windows (none: no open window).
    pub state_batch: Option<u64>,
    /// The batch's files of each output table (table name, files), written in
    /// place and appended to the tables' Delta logs with a `txn` action
    /// (application id = the checkpoint's id, version = the batch id).
    #[serde(default)]
    pub outputs: Vec<(String, Vec<DataFile>)>,
    /// The moves of a checkpoint written before the tables were Delta tables:
    /// such a checkpoint cannot be resumed.
    #[serde(default, skip_serializing)]
    pub moves: Vec<(String, String)>,
    /// The batch's progress; its durations and rate are still zero in the written record.
    pub progress: BatchProgress,
    /// Every batch up to this one (none: written before the totals were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<Totals>,
}

/// `offsets/folded-<id>.json`: the offsets of batches up to `up_to`, as a restart needs them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Folded {
    /// The last commit when the fold was written: a restart reads the offsets after it only.
    pub up_to: u64,
    /// Files taken or quarantined (relative to the source), sorted.
    pub seen: Vec<String>,
    /// Files quarantined by those batches, with the reason.
    pub quarantined: Vec<Quarantined>,
    /// Kafka source: the next offset of each partition after those batches.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kafka_next: BTreeMap<i32, i64>,
    /// The latest future cutoff those batches logged (µs); none if none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub future_cutoff: Option<i64>,
}

/// Where the stream stands after the last commit.
#[derive(Debug, Clone, Default)]
pub struct Position {
    /// Id of the next batch: the last commit's plus one, 0 before any commit.
    pub next_batch: u64,
    /// Watermark after the last commit (µs since the epoch); none before the first event.
    pub watermark: Option<i64>,
    /// The batch whose `batches/<id>/state/` holds the open windows; none when no window is open.
    pub state_batch: Option<u64>,
    /// Files taken or quarantined by any batch (relative to the source).
    pub seen: HashSet<String>,
    /// A batch logged but not committed: re-run it first.
    pub pending: Option<Offsets>,
    /// Kafka source: the next offset of each partition after every logged batch.
    pub kafka_next: BTreeMap<i32, i64>,
    /// The latest future cutoff logged: the next one is never earlier, so
    /// that an event once in a window is never from the future later.
    pub future_cutoff: Option<i64>,
    /// Files taken by the logged batches still kept, with their logged size
    /// (what a checkpoint from before generations is checked against).
    pub taken: Vec<LoggedFile>,
    /// Files quarantined by any logged batch, with the reason.
    pub quarantined: Vec<Quarantined>,
    /// Every committed batch.
    pub totals: Totals,
}

impl Position {
    /// Takes a logged batch into account (again: idempotent).
    pub fn consume(&mut self, offsets: &Offsets) {
        self.seen.extend(offsets.files.iter().map(|f| f.path.clone()));
        self.taken.extend(offsets.files.iter().cloned());
        self.future_cutoff = self.future_cutoff.max(offsets.future_cutoff);
        let ranges = offsets.kafka.iter().flat_map(|k| &k.ranges).map(|r| (r.partition, r.end));
        self.absorb(&offsets.quarantined, ranges);
    }

    /// Takes the batches a fold stands for into account.
    fn consume_folded(&mut self, folded: &Folded) {
        self.seen.extend(folded.seen.iter().cloned());
        self.future_cutoff = self.future_cutoff.max(folded.future_cutoff);
        self.absorb(&folded.quarantined, folded.kafka_next.iter().map(|(&p, &next)| (p, next)));
    }

    fn absorb(&mut self, quarantined: &[Quarantined], kafka_next: impl Iterator<Item = (i32, i64)>) {
        for q in quarantined {
            self.seen.insert(q.path.clone());
            if !self.quarantined.iter().any(|known| known.path == q.path) {
                self.quarantined.push(q.clone());
            }
        }
        for (partition, end) in kafka_next {
            let next = self.kafka_next.entry(partition).or_insert(end);
            *next = (*next).max(end);
        }
    }

    /// The fold of every logged batch, for a checkpoint whose last commit is `up_to`.
    fn folded(&self, up_to: u64) -> Folded {
        let mut seen: Vec<String> = self.seen.iter().cloned().collect();
        seen.sort();
        Folded {
            up_to,
            seen,
            quarantined: self.quarantined.clone(),
            kafka_next: self.kafka_next.clone(),
            future_cutoff: self.future_cutoff,
        }
    }
}

/// A stream's checkpoint folder (layout in the module docs) and how many batches it retains.
pub struct Checkpoint {
    /// The checkpoint folder, local or `gs://`.
    pub folder: Lake,
    /// Batches whose offsets, commit and progress are kept (at least 1).
    retain: u64,
}

fn id_name(id: u64) -> String {
    format!("{id:010}")
}

fn id_of(rel: &str) -> Option<u64> {
    rel.rsplit('/').next()?.strip_suffix(".json")?.parse().ok()
}

fn folded_rel(id: u64) -> String {
    format!("offsets/folded-{}.json", id_name(id))
}

fn folded_id(rel: &str) -> Option<u64> {
    rel.rsplit('/').next()?.strip_prefix("folded-")?.strip_suffix(".json")?.parse().ok()
}

/// The progress segment holding batch `id`.
fn segment_rel(id: u64) -> String {
    format!("progress/{}.jsonl", id_name(id - id % LOG_STEP))
}

fn segment_first(rel: &str) -> Option<u64> {
    rel.strip_prefix("progress/")?.strip_suffix(".jsonl")?.parse().ok()
}

/// Before the segments: one file rewritten whole by every batch (read, then deleted).
const LEGACY_PROGRESS: &str = "progress.jsonl";

impl Checkpoint {
    /// The checkpoint in `folder`, retaining [`DEFAULT_RETAIN`] batches.
    pub fn new(folder: Lake) -> Self {
        Self { folder, retain: DEFAULT_RETAIN }
    }

    /// Keeps the offsets, commits and progress of the last `batches` batches.
    pub fn retaining(self, batches: u64) -> Self {
        Self { retain: batches.max(1), ..self }
    }

    /// URL of the checkpoint folder.
    pub fn url(&self) -> String {
        self.folder.url().to_string()
    }

    async fn read_json<T: DeserializeOwned>(&self, rel: &str) -> funnelpulse_engine::Result<Option<T>> {
        let Some(bytes) = self.folder.read_if_present(rel).await? else { return Ok(None) };
        let value = serde_json::from_slice(&bytes)
            .with_context(|| format!("checkpoint file {} is damaged", self.folder.url_of(rel)))?;
        Ok(Some(value))
    }

    /// One put: readers see the old or the new file, never part of one.
    async fn write_json<T: Serialize>(&self, rel: &str, value: &T) -> funnelpulse_engine::Result<()> {
        let bytes = serde_json::to_vec_pretty(value)?;
        self.folder
            .store()
            .put(&self.folder.path_of(rel), PutPayload::from(bytes))
            .await
            .with_context(|| format!("writing {}", self.folder.url_of(rel)))?;
        Ok(())
    }

    /// Reads `metadata.json`; none for a checkpoint not started yet.
    pub async fn metadata(&self) -> funnelpulse_engine::Result<Option<Metadata>> {
        self.read_json("metadata.json").await
    }

    /// Writes `metadata.json` (one put).
    pub async fn write_metadata(&self, metadata: &Metadata) -> funnelpulse_engine::Result<()> {
        self.write_json("metadata.json", metadata).await
    }

    async fn ids(&self, folder: &str) -> funnelpulse_engine::Result<Vec<u64>> {
        let mut ids: Vec<u64> = self.folder.list_rel(folder).await?.iter().filter_map(|r| id_of(r)).collect();
        ids.sort();
        Ok(ids)
    }

    /// Logs a batch's offsets (`offsets/<id>.json`), before the batch runs.
    pub async fn write_offsets(&self, offsets: &Offsets) -> funnelpulse_engine::Result<()> {
        self.write_json(&format!("offsets/{}.json", id_name(offsets.batch_id)), offsets).await
    }

    /// Writes the commit record (`commits/<id>.json`): the batch's commit point.
    pub async fn write_commit(&self, commit: &Commit) -> funnelpulse_engine::Result<()> {
        self.write_json(&format!("commits/{}.json", id_name(commit.batch_id)), commit).await
    }

    /// Reads batch `id`'s commit record, none if absent; fails for a checkpoint written before the tables
    /// were Delta tables.
    pub async fn commit_of(&self, id: u64) -> funnelpulse_engine::Result<Option<Commit>> {
        let commit: Option<Commit> = self.read_json(&format!("commits/{}.json", id_name(id))).await?;
        if commit.as_ref().is_some_and(|c| !c.moves.is_empty()) {
            funnelpulse_engine::bail!(
                "checkpoint {} was written by an older FunnelPulse (before the tables were Delta tables) and cannot \
                 be resumed: start the stream over with --reset-stream",
                self.url()
            );
        }
        Ok(commit)
    }

    /// The newest commit record; none before the first commit.
    pub async fn last_commit(&self) -> funnelpulse_engine::Result<Option<Commit>> {
        match self.ids("commits/").await?.last() {
            Some(&id) => self.commit_of(id).await,
            None => Ok(None),
        }
    }

    /// Reads the log: the last commit, every file seen, and a pending batch.
    /// Reads the latest fold and the offsets after it only: a bounded number.
    pub async fn position(&self) -> funnelpulse_engine::Result<(Position, Option<Commit>)> {
        let last = self.last_commit().await?;
        let mut position = Position::default();
        if let Some(c) = &last {
            position.next_batch = c.batch_id + 1;
            position.watermark = c.watermark;
            position.state_batch = c.state_batch;
            position.totals = match c.totals {
                Some(totals) => totals,
                None => self.legacy_totals(c).await?,
            };
        }
        let listed = self.folder.list_rel("offsets/").await?;
        let mut folded_up_to = None;
        if let Some(id) = listed.iter().filter_map(|r| folded_id(r)).max() {
            let folded: Folded = self.read_json(&folded_rel(id)).await?.context("fold vanished")?;
            position.consume_folded(&folded);
            folded_up_to = Some(folded.up_to);
        }
        let mut ids: Vec<u64> =
            listed.iter().filter_map(|r| id_of(r)).filter(|&id| folded_up_to.is_none_or(|up| id > up)).collect();
        ids.sort();
        let reads = ids.iter().map(|&id| async move {
            let rel = format!("offsets/{}.json", id_name(id));
            let offsets: Offsets = self.read_json(&rel).await?.context("offsets vanished")?;
            Ok::<_, funnelpulse_engine::Error>((id, offsets))
        });
        let logged: Vec<(u64, Offsets)> = futures::stream::iter(reads).buffered(16).try_collect().await?;
        for (id, offsets) in logged {
            position.consume(&offsets);
            if id == position.next_batch {
                position.pending = Some(offsets);
            } else {
                funnelpulse_engine::ensure!(
                    id < position.next_batch,
                    "checkpoint {}: offsets of batch {id} without a commit of batch {} — the log is damaged",
                    self.url(),
                    position.next_batch
                );
            }
        }
        Ok((position, last))
    }

    /// Totals of a checkpoint written before commits carried them: its
    /// progress log was never rotated, so it holds every batch.
    async fn legacy_totals(&self, last: &Commit) -> funnelpulse_engine::Result<Totals> {
        let mut lines = self.all_progress().await?;
        if !lines.iter().any(|p| p.batch_id == last.batch_id) {
            lines.push(last.progress.clone());
        }
        let mut totals = Totals::default();
        lines.iter().for_each(|p| totals.add(p));
        Ok(totals)
    }

    /// After batch `committed` (the last commit; nothing is pending): every
    /// [`LOG_STEP`] batches, folds the offsets, then deletes the offsets,
    /// commits and progress segments of batches older than the last `retain`.
    pub async fn prune_log(&self, position: &Position, committed: u64) -> funnelpulse_engine::Result<()> {
        let keep_from = (committed + 1).saturating_sub(self.retain);
        let offsets = self.folder.list_rel("offsets/").await?;
        let old = |rel: &String| id_of(rel).is_some_and(|id| id < keep_from);
        if offsets.iter().filter(|r| old(r)).count() < LOG_STEP as usize {
            return Ok(());
        }
        // The fold first: once it is written, the offsets it stands for may go.
        self.write_json(&folded_rel(committed), &position.folded(committed)).await?;
        let stale_fold = |rel: &String| folded_id(rel).is_some_and(|id| id < committed);
        let mut doomed: Vec<String> = offsets.iter().filter(|r| old(r)).cloned().collect();
        doomed.extend(self.folder.list_rel("commits/").await?.into_iter().filter(old));
        let segments = self.folder.list_rel("progress/").await?;
        doomed.extend(segments.into_iter().filter(|r| segment_first(r).is_some_and(|f| f + LOG_STEP <= keep_from)));
        doomed.push(LEGACY_PROGRESS.to_string());
        // Older folds last: a restart in between still finds a fold and the offsets after it.
        doomed.extend(offsets.iter().filter(|r| stale_fold(r)).cloned());
        for rel in doomed {
            self.delete(&rel).await?;
        }
        Ok(())
    }

    async fn delete(&self, rel: &str) -> funnelpulse_engine::Result<()> {
        Ok(self.folder.delete_if_present(rel).await?)
    }

    /// Folder (relative to the checkpoint) of a batch's open windows.
    pub fn state_rel(batch: u64) -> String {
        format!("batches/{}/state/", id_name(batch))
    }

    /// URL of a batch's open windows (see [`Checkpoint::state_rel`]).
    pub fn state_url(&self, batch: u64) -> String {
        self.folder.url_of(&Self::state_rel(batch))
    }

    /// Folder (relative to the checkpoint) of a batch's partial aggregates.
    pub fn partials_rel(batch: u64) -> String {
        format!("batches/{}/partials/", id_name(batch))
    }

    /// A batch's staged records (sources that stage, like Kafka).
    pub fn input_rel(batch: u64) -> String {
        format!("input/{}.parquet", id_name(batch))
    }

    /// A batch's staged dead letters.
    pub fn dead_letters_rel(batch: u64) -> String {
        format!("input/{}.dead_letters.parquet", id_name(batch))
    }

    /// Deletes the staged input of batches up to `last` (committed: never read again).
    pub async fn prune_inputs(&self, last: u64) -> funnelpulse_engine::Result<()> {
        for rel in self.folder.list_rel("input/").await? {
            let id = rel.trim_start_matches("input/").split('.').next().and_then(|n| n.parse::<u64>().ok());
            if id.is_some_and(|id| id <= last) {
                self.delete(&rel).await?;
            }
        }
        Ok(())
    }

    /// Deletes every `batches/<id>/` except `keep` (partial outputs of a
    /// failed attempt, states no longer needed).
    pub async fn prune_batches(&self, keep: Option<u64>) -> funnelpulse_engine::Result<()> {
        let keep = keep.map(|k| format!("batches/{}/", id_name(k)));
        for rel in self.folder.list_rel("batches/").await? {
            if keep.as_ref().is_some_and(|k| rel.starts_with(k.as_str())) {
                continue;
            }
            self.delete(&rel).await?;
        }
        // A local checkpoint: the emptied folders too (bounded: the checkpoint is).
        self.folder.remove_empty_dirs("");
        Ok(())
    }

    /// Appends a batch's progress to its segment (unless it is there: a
    /// restart after a commit re-appends the commit's progress). Rewrites
    /// that segment only: at most [`LOG_STEP`] lines.
    pub async fn append_progress(&self, progress: &BatchProgress) -> funnelpulse_engine::Result<()> {
        let rel = segment_rel(progress.batch_id);
        let mut lines = self.progress_file(&rel).await?;
        if lines.iter().any(|p| p.batch_id == progress.batch_id) {
            return Ok(());
        }
        lines.push(progress.clone());
        let mut text = String::new();
        for line in &lines {
            text.push_str(&serde_json::to_string(line)?);
            text.push('\n');
        }
        self.folder
            .store()
            .put(&self.folder.path_of(&rel), PutPayload::from(text.into_bytes()))
            .await
            .with_context(|| format!("writing {}", self.folder.url_of(&rel)))?;
        Ok(())
    }

    async fn progress_file(&self, rel: &str) -> funnelpulse_engine::Result<Vec<BatchProgress>> {
        let Some(bytes) = self.folder.read_if_present(rel).await? else { return Ok(Vec::new()) };
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("{} has a damaged line", self.folder.url_of(rel))))
            .collect()
    }

    /// The progress of the last `n` committed batches at most (newest segments only).
    pub async fn recent_progress(&self, n: usize) -> funnelpulse_engine::Result<Vec<BatchProgress>> {
        let segments = self.folder.list_rel("progress/").await?;
        let mut lines: Vec<BatchProgress> = Vec::new();
        for rel in segments.iter().rev() {
            let mut older = self.progress_file(rel).await?;
            older.append(&mut lines);
            lines = older;
            if lines.len() >= n {
                break;
            }
        }
        if lines.len() < n {
            let mut legacy = self.progress_file(LEGACY_PROGRESS).await?;
            legacy.retain(|p| !lines.iter().any(|l| l.batch_id == p.batch_id));
            legacy.append(&mut lines);
            lines = legacy;
        }
        lines.sort_by_key(|p| p.batch_id);
        Ok(lines.split_off(lines.len().saturating_sub(n)))
    }

    /// Every line kept: the segments and a checkpoint's older progress file.
    pub async fn all_progress(&self) -> funnelpulse_engine::Result<Vec<BatchProgress>> {
        self.recent_progress(usize::MAX).await
    }

    /// Deletes everything in the checkpoint (`--reset`).
    /// Deletes the checkpoint, but not its lease (held by the stream that clears it).
    pub async fn clear(&self) -> funnelpulse_engine::Result<()> {
        for rel in self.folder.list_rel("").await?.into_iter().filter(|rel| !rel.starts_with("lease/")) {
            self.delete(&rel).await?;
        }
        self.folder.remove_empty_dirs("");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_round_trip_through_file_names() {
        assert_eq!(id_of(&format!("offsets/{}.json", id_name(42))), Some(42));
        assert_eq!(id_of("offsets/notes.txt"), None);
        assert_eq!(id_of(&folded_rel(42)), None, "a fold is not a batch's offsets");
        assert_eq!(folded_id(&folded_rel(42)), Some(42));
        assert_eq!(segment_rel(42), "progress/0000000040.jsonl");
        assert_eq!(segment_first(&segment_rel(42)), Some(40));
    }

    #[test]
    fn other_options_are_named() {
        let a = Metadata::new("file:///in/", "file:///lake/", 7_200_000_000, "hourly_brand");
        let mut b = a.clone();
        assert!(a.differences(&b).is_empty());
        b.watermark_micros = 3_600_000_000;
        b.source = "file:///other/".into();
        let diff = a.differences(&b).join("; ");
        assert!(diff.contains("watermark: checkpoint has 2h, this run asks for 1h"), "{diff}");
        assert!(diff.contains("source"), "{diff}");
    }
}
