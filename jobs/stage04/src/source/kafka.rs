//! The Kafka source: each batch is a set of offset ranges, decided before it
//! is read and logged with the batch, read, decoded and staged as Parquet in
//! the checkpoint (`input/<id>.parquet`, dead letters in
//! `input/<id>.dead_letters.parquet`). The batch's Ballista jobs read the
//! staged file as they read a source file; the staged files go once the
//! batch is committed.
//!
//! Exactly-once comes from the checkpoint, not from the consumer group: the
//! next batch starts where the logged ranges end, a batch logged but not
//! committed is re-run from its staged file (or, if that is gone, from the
//! same ranges read again), and one killed before its ranges were logged
//! leaves nothing behind that counts.

use std::collections::BTreeMap;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use funnelpulse_engine::Context;
use funnelpulse_kafka::KafkaArgs;
use funnelpulse_kafka::decode::{dead_letters_batch, decode, events_batch};
use funnelpulse_kafka::source::{PartitionRange, StartingOffsets, TopicReader, plan_ranges, starting_positions};
use funnelpulse_lake::Lake;
use object_store::{ObjectStoreExt, PutPayload};

use crate::checkpoint::{Checkpoint, KafkaOffsets, LoggedFile, Offsets, Position};
use crate::source::Next;

/// Options of the Kafka source (`--source kafka`).
#[derive(clap::Args, Debug, Clone)]
pub struct KafkaSourceArgs {
    /// With --source kafka: the brokers, HOST:PORT[,HOST:PORT…].
    #[arg(long, env = "FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// With --source kafka: the topic of the events.
    #[arg(long, env = "FUNNELPULSE_KAFKA_TOPIC", default_value = "funnelpulse_events")]
    pub topic: String,
    /// With --source kafka: where a new stream starts in each partition (a
    /// checkpoint's stream always goes on where it stopped).
    #[arg(long, value_enum, env = "FUNNELPULSE_KAFKA_STARTING_OFFSETS", default_value_t)]
    pub starting_offsets: StartingOffsets,
    /// With --source kafka: records taken by one micro-batch at most, shared evenly by the partitions.
    #[arg(long, env = "FUNNELPULSE_MAX_RECORDS_PER_TRIGGER", default_value_t = 200_000)]
    pub max_records_per_trigger: u64,
    /// With --source kafka: also commit the stream's positions to this consumer group, so that
    /// Kafka tools show its lag (the checkpoint, not the group, decides what is read).
    #[arg(long, env = "FUNNELPULSE_KAFKA_GROUP")]
    pub kafka_group: Option<String>,
    /// With --source kafka: the client's settings and sign-in.
    #[command(flatten)]
    pub client: funnelpulse_kafka::ClientArgs,
    /// With --source kafka: how long the broker may be unreachable before the stream stops.
    #[arg(long, env = "FUNNELPULSE_KAFKA_PATIENCE", default_value = "2m", value_parser = funnelpulse_engine::args::parse_duration)]
    pub kafka_patience: Duration,
}

impl Default for KafkaSourceArgs {
    fn default() -> Self {
        Self {
            bootstrap_servers: None,
            topic: "funnelpulse_events".into(),
            starting_offsets: StartingOffsets::Earliest,
            max_records_per_trigger: 200_000,
            kafka_group: None,
            client: Default::default(),
            kafka_patience: Duration::from_secs(120),
        }
    }
}

impl KafkaSourceArgs {
    /// The checkpoint binds the topic, not the brokers' addresses (which
    /// differ between a laptop and the cluster).
    pub fn source_name(&self) -> String {
        format!("kafka:{}", self.topic)
    }
}

/// A partition's next offset: after the last logged batch (or where the
/// stream started), else — a partition added since — its oldest record. A
/// position outside what the partition holds is an error, never a jump.
fn resume_at(logged: Option<i64>, low: i64, high: i64) -> Result<i64, String> {
    let at = logged.unwrap_or(low);
    if at > high {
        return Err(format!(
            "the stream is at offset {at}, but the partition ends at {high} (was the topic deleted and created \
             again?); --reset-stream starts over"
        ));
    }
    if at < low {
        return Err(format!(
            "the stream is at offset {at}, but the topic only holds offsets from {low} on (deleted by retention \
             while the stream was stopped?); --reset-stream starts over"
        ));
    }
    Ok(at)
}

/// Plans each batch's offset ranges of the topic and stages their records in the checkpoint.
pub struct KafkaSource {
    reader: TopicReader,
    /// The checkpoint folder, where batches are staged.
    folder: Lake,
    args: KafkaSourceArgs,
    /// Where the stream started in each partition (from the checkpoint's metadata).
    start: BTreeMap<i32, i64>,
    /// Bounded runs: the high watermarks at the start.
    snapshot: Option<BTreeMap<i32, i64>>,
    warned_group: bool,
}

impl KafkaSource {
    /// A source for `args.topic` (needs `--bootstrap-servers`) staging in `checkpoint`; consumer group
    /// `--kafka-group`, else `funnelpulse-stream`.
    pub fn new(args: &KafkaSourceArgs, checkpoint: &Checkpoint) -> funnelpulse_engine::Result<Self> {
        let servers = args
            .bootstrap_servers
            .clone()
            .context("--source kafka needs --bootstrap-servers HOST:PORT (or FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS)")?;
        let kafka = KafkaArgs { bootstrap_servers: servers, topic: args.topic.clone(), client: args.client.clone() };
        let group = args.kafka_group.clone().unwrap_or_else(|| "funnelpulse-stream".into());
        Ok(Self {
            reader: TopicReader::new(&kafka, &group, args.kafka_patience)?,
            folder: checkpoint.folder.clone(),
            args: args.clone(),
            start: BTreeMap::new(),
            snapshot: None,
            warned_group: false,
        })
    }

    /// Positions a new stream starts from (`--starting-offsets`), recorded in its metadata.
    pub async fn starting_positions(&self) -> funnelpulse_engine::Result<BTreeMap<i32, i64>> {
        Ok(starting_positions(&self.reader.watermarks().await?, self.args.starting_offsets))
    }

    /// The positions the checkpoint was started with.
    pub fn bind(&mut self, start: &BTreeMap<i32, i64>) {
        self.start = start.clone();
    }

    /// Where each partition stands (see [`resume_at`]).
    fn positions(
        &self,
        position: &Position,
        marks: &BTreeMap<i32, (i64, i64)>,
    ) -> funnelpulse_engine::Result<BTreeMap<i32, i64>> {
        let mut positions = BTreeMap::new();
        for (&p, &(low, high)) in marks {
            let logged = position.kafka_next.get(&p).or(self.start.get(&p)).copied();
            let at = resume_at(logged, low, high).map_err(|why| {
                funnelpulse_engine::plan_error!("partition {p} of topic {:?}: {why}", self.args.topic)
            })?;
            positions.insert(p, at);
        }
        Ok(positions)
    }

    /// Before the first batch: with `bounded` (`--available-now`) only the records present now will be taken.
    /// Returns a note with the records waiting.
    pub async fn start(&mut self, position: &Position, bounded: bool) -> funnelpulse_engine::Result<Option<String>> {
        let marks = self.reader.watermarks().await?;
        let positions = self.positions(position, &marks)?;
        let waiting: i64 = marks.iter().map(|(p, &(_, high))| (high - positions[p]).max(0)).sum();
        if bounded {
            self.snapshot = Some(marks.iter().map(|(&p, &(_, high))| (p, high)).collect());
        }
        Ok(Some(format!("topic {:?} ({} partitions): {waiting} records waiting", self.args.topic, marks.len())))
    }

    /// The next batch: offset ranges of at most `--max-records-per-trigger` records, read and staged; or
    /// idle, or done for a bounded run.
    pub async fn next(&mut self, position: &Position) -> funnelpulse_engine::Result<Next> {
        let marks = self.reader.watermarks().await?;
        let positions = self.positions(position, &marks)?;
        let ends = match &self.snapshot {
            Some(snapshot) => snapshot.clone(),
            None => marks.iter().map(|(&p, &(_, high))| (p, high)).collect(),
        };
        let ranges = plan_ranges(&positions, &ends, self.args.max_records_per_trigger);
        if ranges.is_empty() {
            return Ok(match self.snapshot {
                Some(_) => Next::Done,
                None => Next::Idle { waiting: format!("waiting for records in {:?}", self.args.topic), warning: None },
            });
        }
        let offsets = self.stage(position.next_batch, position.watermark, ranges).await?;
        Ok(Next::Batch { offsets, warning: None })
    }

    /// Reads `ranges`, decodes them and stages the events and dead letters in the checkpoint.
    async fn stage(
        &self,
        batch_id: u64,
        watermark: Option<i64>,
        ranges: Vec<PartitionRange>,
    ) -> funnelpulse_engine::Result<Offsets> {
        let records = self.reader.read(&ranges).await?;
        crate::batch::pause("after-read", batch_id);
        let count = records.len() as u64;
        let topic = self.args.topic.clone();
        let (events, dead_letters) = tokio::task::spawn_blocking(move || {
            let decoded = decode(records);
            let events = (!decoded.events.is_empty()).then(|| events_batch(&decoded.events)).transpose()?;
            let dead = (!decoded.dead_letters.is_empty())
                .then(|| dead_letters_batch(&topic, batch_id, &decoded.dead_letters))
                .transpose()?;
            Ok::<_, funnelpulse_engine::Error>((events, dead))
        })
        .await??;
        let mut offsets = Offsets::new(batch_id, watermark);
        if let Some(events) = events {
            offsets.files.push(self.put_parquet(&Checkpoint::input_rel(batch_id), &events).await?);
        }
        if let Some(dead) = dead_letters {
            offsets.dead_letters = Some(self.put_parquet(&Checkpoint::dead_letters_rel(batch_id), &dead).await?);
        }
        offsets.kafka = Some(KafkaOffsets { topic: self.args.topic.clone(), ranges, records: count });
        Ok(offsets)
    }

    async fn put_parquet(&self, rel: &str, batch: &RecordBatch) -> funnelpulse_engine::Result<LoggedFile> {
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None)?;
        writer.write(batch)?;
        writer.close()?;
        let size = bytes.len() as u64;
        self.folder
            .store()
            .put(&self.folder.path_of(rel), PutPayload::from(bytes))
            .await
            .with_context(|| format!("staging {}", self.folder.url_of(rel)))?;
        Ok(LoggedFile { path: rel.to_string(), size, rows: batch.num_rows() as u64 })
    }

    /// A logged batch whose staged files are gone is staged again from the
    /// same ranges; the topic must still give the same rows.
    pub async fn restage_if_missing(&self, offsets: &Offsets) -> funnelpulse_engine::Result<()> {
        let Some(kafka) = &offsets.kafka else { return Ok(()) };
        let logged: Vec<&LoggedFile> = offsets.files.iter().chain(&offsets.dead_letters).collect();
        let mut missing = false;
        for file in &logged {
            match self.folder.store().head(&self.folder.path_of(&file.path)).await {
                Ok(meta) if meta.size == file.size => {}
                Ok(_) | Err(object_store::Error::NotFound { .. }) => missing = true,
                Err(e) => return Err(e.into()),
            }
        }
        if !missing {
            return Ok(());
        }
        log::warn!("batch {}: staged records missing, reading the logged offsets again", offsets.batch_id);
        let again = self.stage(offsets.batch_id, offsets.watermark, kafka.ranges.clone()).await?;
        let rows = |o: &Offsets| (o.files.iter().map(|f| f.rows).sum::<u64>(), o.dead_letters.as_ref().map(|f| f.rows));
        funnelpulse_engine::ensure!(
            rows(&again) == rows(offsets),
            "batch {}: the topic no longer gives the records it logged (events, dead letters: {:?} then, {:?} now)",
            offsets.batch_id,
            rows(offsets),
            rows(&again)
        );
        Ok(())
    }

    /// Best effort: records the positions in the consumer group, if one was given.
    pub async fn committed(&mut self, position: &Position) {
        if self.args.kafka_group.is_none() || position.kafka_next.is_empty() {
            return;
        }
        if let Err(e) = self.reader.commit_group(&position.kafka_next).await
            && !self.warned_group
        {
            self.warned_group = true;
            log::warn!("the consumer group's offsets were not updated ({e:#}); the stream goes on");
        }
    }

    /// Records waiting in the topic after the logged batches (the lag), for `stream status`.
    pub async fn waiting(&self, position: &Position) -> funnelpulse_engine::Result<String> {
        let marks = self.reader.watermarks().await?;
        let positions = self.positions(position, &marks)?;
        let waiting: i64 = marks.iter().map(|(p, &(_, high))| (high - positions[p]).max(0)).sum();
        Ok(format!("{waiting} records waiting in topic {:?} (lag)", self.args.topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_resumes_where_it_stopped_or_at_the_oldest_record() {
        assert_eq!(resume_at(Some(7), 0, 10), Ok(7));
        assert_eq!(resume_at(Some(10), 0, 10), Ok(10));
        assert_eq!(resume_at(None, 4, 10), Ok(4));
    }

    #[test]
    fn offsets_the_partition_does_not_hold_are_refused() {
        assert!(resume_at(Some(12), 0, 10).unwrap_err().contains("deleted and created again"));
        assert!(resume_at(Some(2), 5, 10).unwrap_err().contains("retention"));
    }
}
