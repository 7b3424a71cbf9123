//! Reading a topic as a source of micro-batches: exact offset ranges, never
//! "whatever the consumer group has next".
//!
//! A batch is a list of [`PartitionRange`]s decided *before* it is read
//! ([`plan_ranges`]) and recorded in the stream's checkpoint, so that a
//! restarted run reads exactly the same records again ([`TopicReader::read`]).
//! The consumer never joins a group; committing to one is for lag
//! monitoring only ([`TopicReader::commit_group`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{KafkaContext, KafkaError};
use backon::{ExponentialBuilder, Retryable};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::topic::client_config;
use crate::{KafkaArgs, KafkaAuth};

/// Where a new stream starts in each partition.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartingOffsets {
    /// The oldest record the topic still holds.
    #[default]
    Earliest,
    /// Only records produced after the stream started.
    Latest,
}

/// Offsets `[start, end)` of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRange {
    /// Partition number.
    pub partition: i32,
    /// First offset of the range.
    pub start: i64,
    /// Offset after the last one of the range (exclusive).
    pub end: i64,
}

/// A record as read, before any decoding.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// Partition the record was read from.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's timestamp (ms since the epoch), when it has one.
    pub timestamp_ms: Option<i64>,
    /// The key's bytes; `None` for a record without a key.
    pub key: Option<Vec<u8>>,
    /// The value's bytes; `None` for a record without a value.
    pub value: Option<Vec<u8>>,
}

/// How long one metadata or offsets request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

// Semantics: docs/semantics.md#kafka-records-and-dead-letters
/// Splits at most `max_records` offsets over the partitions that have
/// records between their position and their end, in proportion to each
/// one's backlog (as Spark's `maxOffsetsPerTrigger` does): partitions
/// filled in event-time order then advance together in event time, so the
/// global watermark does not turn a lagging partition's events late. Each
/// partition with a backlog gets at least one offset (none starves) while
/// the limit allows. Deterministic: the same positions, ends and limit
/// always give the same ranges, so a restarted bounded run cuts the same
/// batches.
pub fn plan_ranges(positions: &BTreeMap<i32, i64>, ends: &BTreeMap<i32, i64>, max_records: u64) -> Vec<PartitionRange> {
    let backlog: Vec<(i32, i64, u64)> = ends
        .iter()
        .filter_map(|(&partition, &end)| {
            let start = positions.get(&partition).copied().unwrap_or(0);
            (end > start).then(|| (partition, start, (end - start) as u64))
        })
        .collect();
    let quotas = share(&backlog.iter().map(|b| b.2).collect::<Vec<_>>(), max_records);
    backlog
        .iter()
        .zip(quotas)
        .filter(|(_, quota)| *quota > 0)
        .map(|(&(partition, start, _), quota)| PartitionRange { partition, start, end: start + quota as i64 })
        .collect()
}

/// `limit` split over `backlogs` (see [`plan_ranges`]); ties go to the earlier entry.
fn share(backlogs: &[u64], limit: u64) -> Vec<u64> {
    let total: u64 = backlogs.iter().sum();
    if total <= limit {
        return backlogs.to_vec();
    }
    let mut quotas = vec![0u64; backlogs.len()];
    let k = backlogs.len() as u64;
    if limit < k {
        // Fewer offsets than partitions: one each to the largest backlogs.
        let mut order: Vec<usize> = (0..backlogs.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(backlogs[i]), i));
        order.iter().take(limit as usize).for_each(|&i| quotas[i] = 1);
        return quotas;
    }
    // One each, then the rest in proportion to what is left, largest remainders first.
    let rest = (limit - k) as u128;
    let left: Vec<u128> = backlogs.iter().map(|&b| (b - 1) as u128).collect();
    let left_total: u128 = left.iter().sum();
    let mut remainders = Vec::with_capacity(backlogs.len());
    for (i, &l) in left.iter().enumerate() {
        quotas[i] = 1 + (rest * l / left_total) as u64;
        remainders.push((rest * l % left_total, i));
    }
    let given: u64 = quotas.iter().sum();
    remainders.sort_by_key(|&(r, i)| (std::cmp::Reverse(r), i));
    remainders.iter().take((limit - given) as usize).for_each(|&(_, i)| quotas[i] += 1);
    quotas
}

/// A consumer assigned to exact ranges of one topic.
pub struct TopicReader {
    consumer: Arc<BaseConsumer<KafkaAuth>>,
    kafka: KafkaArgs,
    /// Tokens: refreshed by the polls of a read, and before a request when a
    /// stream has not read for a while.
    auth: KafkaAuth,
    /// Give up on an unreachable broker after this long.
    patience: Duration,
    /// What the last read left assigned and fetched ahead, for the next.
    carried: Arc<std::sync::Mutex<Carried>>,
}

/// What a read leaves for the next one: the partitions stay assigned, and
/// the records the consumer had already fetched past the ranges are kept.
/// A stream reads consecutive ranges, so the next batch starts where this one
/// ended: re-assigning would drop the consumer's prefetched records and make
/// the broker serve them twice (catch-up ran at 75 % of a plain consumer's rate).
#[derive(Debug, Default)]
struct Carried {
    /// Per partition, the offset the next range must start at (the last range's
    /// end) for the assignment to be kept. Empty after a failed read.
    next: BTreeMap<i32, i64>,
    /// Records at or past that offset, in offset order per partition.
    ahead: BTreeMap<i32, Vec<RawRecord>>,
}

/// Records kept ahead per partition at most; past it the partition is
/// re-assigned at its next range instead (the broker serves them again).
const AHEAD_LIMIT: usize = 200_000;

impl TopicReader {
    /// A reader of `kafka.topic`; `group` names the consumer group offsets are
    /// committed to (monitoring only).
    pub fn new(kafka: &KafkaArgs, group: &str, patience: Duration) -> crate::Result<Self> {
        let auth = kafka.client.auth();
        let mut config = client_config(kafka);
        if config.get("fetch.wait.max.ms").is_none() {
            // The consumer stays assigned between batches, so a caught-up stream's
            // fetch waits in the broker for new records; a broker that answers only
            // when that wait ends (tansu) added its 500 ms default to every live batch.
            config.set("fetch.wait.max.ms", "100");
        }
        let consumer: BaseConsumer<KafkaAuth> = config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A range whose records are gone (retention) is an error, never a silent jump.
            .set("auto.offset.reset", "error")
            .create_with_context(auth.clone())
            .context("creating the Kafka consumer")?;
        auth.prime(consumer.client())?;
        Ok(Self { consumer: Arc::new(consumer), kafka: kafka.clone(), auth, patience, carried: Default::default() })
    }

    /// The topic this reader reads.
    pub fn topic(&self) -> &str {
        &self.kafka.topic
    }

    /// One request never waits longer than the whole patience.
    fn request_timeout(&self) -> Duration {
        REQUEST_TIMEOUT.min(self.patience)
    }

    /// Runs a blocking librdkafka call, retrying it with backoff while the
    /// broker cannot be reached, up to the reader's patience.
    async fn blocking<T: Send + 'static>(
        &self,
        what: &str,
        call: impl Fn(&BaseConsumer<KafkaAuth>, &str) -> crate::Result<T> + Send + Sync + Clone + 'static,
    ) -> crate::Result<T> {
        let attempt = || {
            let (consumer, topic, call) = (self.consumer.clone(), self.kafka.topic.clone(), call.clone());
            let (auth, servers) = (self.auth.clone(), self.kafka.bootstrap_servers.clone());
            let carried = self.carried.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    auth.prime_if_due(consumer.client())?;
                    call(&consumer, &topic).map_err(|error| {
                        // A refused sign-in arrives as an error event: polled here, it ends
                        // the retries with its reason. The poll may take a record of the
                        // partitions left assigned: they are re-assigned at the next read.
                        *carried.lock().expect("carried records") = Carried::default();
                        let _ = consumer.unassign();
                        let _ = consumer.poll(crate::auth::EVENTS_WAIT);
                        match auth.refusal(&servers) {
                            Some(refusal) => KafkaError::Refused(refusal),
                            None => error,
                        }
                    })
                })
                .await?
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(5))
            .with_total_delay(Some(self.patience))
            .without_max_times();
        attempt
            .retry(backoff)
            .when(KafkaError::is_transient)
            .notify(|e: &KafkaError, wait: Duration| {
                let why = funnelpulse_core::error::chain_text(e);
                log::warn!("Kafka: {what} failed ({why}); retrying in {wait:.1?}");
            })
            .await
            .with_context(|| format!("{what} on {} (gave up after {:?})", self.kafka.bootstrap_servers, self.patience))
    }

    /// The topic's partitions; a missing topic is an error.
    pub async fn partitions(&self) -> crate::Result<Vec<i32>> {
        let timeout = self.request_timeout();
        self.blocking("reading the topic's metadata", move |consumer, topic| {
            let metadata = consumer.fetch_metadata(None, timeout).context("cannot reach the Kafka broker")?;
            let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
                return Err(KafkaError::Missing(format!("topic {topic:?} does not exist")));
            };
            let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
            partitions.sort();
            Ok(partitions)
        })
        .await
    }

    /// Low and high watermark of every partition: the oldest offset held and the next one to be written.
    pub async fn watermarks(&self) -> crate::Result<BTreeMap<i32, (i64, i64)>> {
        let partitions = self.partitions().await?;
        let timeout = self.request_timeout();
        self.blocking("reading the partitions' offsets", move |consumer, topic| {
            let mut marks = BTreeMap::new();
            for &p in &partitions {
                let found = consumer
                    .fetch_watermarks(topic, p, timeout)
                    .with_context(|| format!("offsets of partition {p}"))?;
                marks.insert(p, found);
            }
            Ok(marks)
        })
        .await
    }

    /// Reads every record of `ranges`, in offset order per partition. Waits
    /// (with the reader's patience) while the broker is away.
    pub async fn read(&self, ranges: &[PartitionRange]) -> crate::Result<Vec<RawRecord>> {
        let ranges: Vec<PartitionRange> = ranges.iter().filter(|r| r.end > r.start).copied().collect();
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let (consumer, topic, patience) = (self.consumer.clone(), self.kafka.topic.clone(), self.patience);
        let (servers, carried) = (self.kafka.bootstrap_servers.clone(), self.carried.clone());
        tokio::task::spawn_blocking(move || {
            // Taken out: a read that fails leaves nothing, and the next one re-assigns.
            let mut kept = std::mem::take(&mut *carried.lock().expect("carried records"));
            let records = read_ranges(&consumer, &topic, &ranges, patience, &mut kept)?;
            *carried.lock().expect("carried records") = kept;
            Ok::<_, KafkaError>(records)
        })
        .await?
        .with_context(|| format!("reading from {servers}"))
    }

    /// Records the positions in the consumer group (so that Kafka tools show
    /// the stream's lag). Best effort: the checkpoint is the truth.
    pub async fn commit_group(&self, positions: &BTreeMap<i32, i64>) -> crate::Result<()> {
        let mut list = TopicPartitionList::new();
        for (&p, &offset) in positions {
            list.add_partition_offset(&self.kafka.topic, p, Offset::Offset(offset))?;
        }
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync))
            .await?
            .context("committing offsets to the consumer group")
    }
}

/// The blocking read behind [`TopicReader::read`].
fn read_ranges(
    consumer: &BaseConsumer<KafkaAuth>,
    topic: &str,
    ranges: &[PartitionRange],
    patience: Duration,
    carried: &mut Carried,
) -> crate::Result<Vec<RawRecord>> {
    let starts: BTreeMap<i32, i64> = ranges.iter().map(|r| (r.partition, r.start)).collect();
    let mut ahead = std::mem::take(&mut carried.ahead);
    if std::mem::take(&mut carried.next) != starts {
        ahead.clear();
        let mut assignment = TopicPartitionList::new();
        for r in ranges {
            assignment.add_partition_offset(topic, r.partition, Offset::Offset(r.start))?;
        }
        consumer.assign(&assignment).context("assigning the partitions")?;
    }
    let end_of: BTreeMap<i32, i64> = ranges.iter().map(|r| (r.partition, r.end)).collect();
    let mut open: HashSet<i32> = end_of.keys().copied().collect();
    let capacity: i64 = ranges.iter().map(|r| r.end - r.start).sum();
    let mut records = Vec::with_capacity(capacity.max(0) as usize);
    // The offset after the last record taken or kept, per partition: a record
    // at or before it again (a re-delivery) is never counted twice.
    let mut seen: BTreeMap<i32, i64> = starts.iter().map(|(&p, &start)| (p, start - 1)).collect();
    let mut past_limit: HashSet<i32> = HashSet::new();
    let mut kept: BTreeMap<i32, Vec<RawRecord>> = BTreeMap::new();
    let mut take = |record: RawRecord, open: &mut HashSet<i32>| {
        let p = record.partition;
        let (Some(&end), Some(last)) = (end_of.get(&p), seen.get_mut(&p)) else { return false };
        if record.offset <= *last {
            return false;
        }
        *last = record.offset;
        if record.offset < end {
            if record.offset + 1 >= end {
                open.remove(&p);
            }
            records.push(record);
        } else {
            // Past the range: the next batch's, kept unless too many are.
            open.remove(&p);
            let queue = kept.entry(p).or_default();
            if queue.len() < AHEAD_LIMIT {
                queue.push(record);
            } else {
                past_limit.insert(p);
            }
        }
        true
    };
    for record in ahead.into_values().flatten() {
        take(record, &mut open);
    }
    let mut last_progress = Instant::now();
    let mut last_error: Option<RdKafkaError> = None;
    while !open.is_empty() {
        if last_progress.elapsed() > patience {
            let stuck: Vec<String> = open.iter().map(|p| format!("partition {p}")).collect();
            return Err(KafkaError::Missing(format!(
                "no records for {patience:?} ({} not finished; last error: {})",
                stuck.join(", "),
                last_error.map_or("none".to_string(), |e| e.to_string())
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {
                // Nothing came: a range may end in offsets without records (compaction,
                // transaction markers), passed once the consumer's position is at its end.
                let passed = consumer.position().context("reading the consumer's positions")?;
                for element in passed.elements_for_topic(topic) {
                    let end = end_of.get(&element.partition()).copied().unwrap_or(i64::MAX);
                    if element.offset().to_raw().is_some_and(|at| at >= end) && open.remove(&element.partition()) {
                        last_progress = Instant::now();
                    }
                }
            }
            Some(Err(RdKafkaError::MessageConsumption(code)))
                if code == rdkafka::types::RDKafkaErrorCode::AutoOffsetReset
                    || code == rdkafka::types::RDKafkaErrorCode::OffsetOutOfRange =>
            {
                return Err(KafkaError::Missing(format!(
                    "records of this batch are no longer in the topic (retention?): {code}"
                )));
            }
            Some(Err(e)) => last_error = Some(e),
            Some(Ok(message)) => {
                let record = RawRecord {
                    partition: message.partition(),
                    offset: message.offset(),
                    timestamp_ms: message.timestamp().to_millis(),
                    key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().map(<[u8]>::to_vec),
                };
                if take(record, &mut open) {
                    last_progress = Instant::now();
                }
            }
        }
    }
    // The assignment stays for the next range, which starts at this one's end;
    // a partition past the limit is re-assigned then (its kept records are dropped).
    if past_limit.is_empty() {
        carried.next = end_of;
        carried.ahead = kept;
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}

/// Where a stream starts in each partition.
pub fn starting_positions(marks: &BTreeMap<i32, (i64, i64)>, from: StartingOffsets) -> BTreeMap<i32, i64> {
    marks.iter().map(|(&p, &(low, high))| (p, if from == StartingOffsets::Earliest { low } else { high })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(i32, i64)]) -> BTreeMap<i32, i64> {
        pairs.iter().copied().collect()
    }

    fn sizes(ranges: &[PartitionRange]) -> Vec<(i32, i64)> {
        ranges.iter().map(|r| (r.partition, r.end - r.start)).collect()
    }

    #[test]
    fn equal_backlogs_share_the_limit_equally() {
        let ranges = plan_ranges(&map(&[(0, 0), (1, 0), (2, 0)]), &map(&[(0, 100), (1, 100), (2, 100)]), 30);
        assert_eq!(sizes(&ranges), vec![(0, 10), (1, 10), (2, 10)]);
    }

    #[test]
    fn the_limit_is_shared_in_proportion_to_the_backlogs() {
        let ranges = plan_ranges(&map(&[(0, 50), (1, 0)]), &map(&[(0, 150), (1, 300)]), 40);
        assert_eq!(sizes(&ranges), vec![(0, 10), (1, 30)]);
        assert_eq!(ranges[0], PartitionRange { partition: 0, start: 50, end: 60 });
        // The whole limit is used, never more than a backlog.
        let ranges = plan_ranges(&map(&[]), &map(&[(0, 2), (1, 100), (2, 100)]), 30);
        assert_eq!(sizes(&ranges), vec![(0, 1), (1, 15), (2, 14)]);
    }

    #[test]
    fn a_small_backlog_is_never_starved() {
        let ranges = plan_ranges(&map(&[]), &map(&[(0, 1), (1, 1_000_000)]), 1000);
        assert_eq!(sizes(&ranges), vec![(0, 1), (1, 999)]);
    }

    #[test]
    fn everything_left_fits_in_one_batch() {
        let ranges = plan_ranges(&map(&[(0, 5)]), &map(&[(0, 8), (1, 3)]), 1000);
        assert_eq!(sizes(&ranges), vec![(0, 3), (1, 3)]);
    }

    #[test]
    fn nothing_new_is_no_range() {
        assert!(plan_ranges(&map(&[(0, 8)]), &map(&[(0, 8)]), 10).is_empty());
        assert!(plan_ranges(&map(&[]), &map(&[(0, 8)]), 0).is_empty());
    }

    #[test]
    fn a_limit_smaller_than_the_partitions_takes_one_from_the_largest() {
        let ranges = plan_ranges(&map(&[]), &map(&[(0, 5), (1, 9), (2, 5)]), 2);
        assert_eq!(sizes(&ranges), vec![(0, 1), (1, 1)]);
    }

    #[test]
    fn starting_offsets_pick_low_or_high() {
        let marks: BTreeMap<i32, (i64, i64)> = [(0, (3, 9)), (1, (0, 4))].into_iter().collect();
        assert_eq!(starting_positions(&marks, StartingOffsets::Earliest), map(&[(0, 3), (1, 0)]));
        assert_eq!(starting_positions(&marks, StartingOffsets::Latest), map(&[(0, 9), (1, 4)]));
    }
}
