//! `funnelpulse kafka replay`: the bronze rows of a date range, produced to a
//! topic in event-time order (the order of stage 03's files), one record per
//! event, optionally paced at a rate or at a multiple of real time.
//!
//! The producer is idempotent (librdkafka's `enable.idempotence`: acks from
//! all replicas, and retries that cannot duplicate or reorder a partition's
//! records). The run ends with every record acknowledged, and fails when the
//! count of acknowledged records differs from the rows read.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::KafkaContext;
use chrono::NaiveDate;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::lit;
use funnelpulse_core::plans::replay_order;
use funnelpulse_core::tables::BRONZE_EVENTS;
use funnelpulse_engine::tables::read_files;
use funnelpulse_engine::{Engine, one_row_i64};
use funnelpulse_lake::{AsOf, Lake, TableFiles};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::ClientContext;
use rdkafka::client::OAuthToken;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::record::records_of;
use crate::topic::{client_config, ensure_topic};
use crate::{KafkaArgs, KafkaAuth};

/// Options of `funnelpulse kafka replay`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Brokers, topic and client settings.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// First event date (UTC) to replay [default: 16 days before --to, as stage 03's range].
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last event date (inclusive) [default: the last day of bronze_events].
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// Events per second (default: as fast as the broker takes them).
    #[arg(long, conflicts_with = "speedup")]
    pub rate: Option<f64>,
    /// Replay at this multiple of real time, following the events' timestamps (60 = an hour a minute).
    #[arg(long)]
    pub speedup: Option<f64>,
    /// Create the topic when it does not exist.
    #[arg(long)]
    pub create_topic: bool,
    /// Partitions of a created topic.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Replication factor of a created topic.
    #[arg(long, default_value_t = 1)]
    pub replication_factor: i32,
    /// Produce into a topic that already holds records (by default refused: a
    /// stream reading it would count a second replay of the same days again).
    #[arg(long)]
    pub append: bool,
}

/// What a replay did; printed at its end.
#[derive(Debug, Default)]
pub struct ReplayReport {
    /// Bronze rows read from the range.
    pub rows: u64,
    /// Records the broker acknowledged; equal to `rows` when the replay succeeds.
    pub produced: u64,
    /// Partitions of the topic.
    pub partitions: usize,
    /// Wall-clock time of the whole replay.
    pub elapsed: Duration,
    /// Topic the records were produced to.
    pub topic: String,
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "replayed {} bronze rows as {} records into {:?} ({} partitions) in {secs:.1}s ({:.0} records/s)",
            self.rows,
            self.produced,
            self.topic,
            self.partitions,
            self.produced as f64 / secs
        )
    }
}

/// Records awaiting their acknowledgement at most (librdkafka queues them).
const IN_FLIGHT: u64 = 20_000;

/// Produces the bronze rows of the range to the topic, one record per row in event-time order, and waits for every ack.
pub async fn replay(engine: &Engine, lake: &Lake, args: &ReplayArgs) -> crate::Result<ReplayReport> {
    if let (Some(from), Some(to)) = (args.from, args.to) {
        crate::ensure!(from <= to, Input, "--from must not be after --to");
    }
    crate::ensure!(args.rate.is_none_or(|r| r > 0.0), Input, "--rate must be positive");
    crate::ensure!(args.speedup.is_none_or(|s| s > 0.0), Input, "--speedup must be positive");
    let started = Instant::now();
    let create = args.create_topic.then_some((args.partitions, args.replication_factor));
    // One version of bronze for the whole replay.
    let bronze = lake
        .snapshot(&BRONZE_EVENTS, &AsOf::Latest)
        .await?
        .with_context(|| format!("no bronze_events in {} (run stage 01 first)", lake.url()))?;
    let days = days_in_range(&bronze, args.from, args.to)?;
    let partitions = ensure_topic(&args.kafka, create).await?;
    if !args.append {
        refuse_a_filled_topic(&args.kafka).await?;
    }
    let total = count_rows(engine, &bronze, &days).await?;

    let producer = create_producer(&args.kafka)?;
    let deliveries = producer.context();
    let bar = progress_bar(total);
    let mut pacer = Pacer::new(args.rate, args.speedup);
    let mut rows = 0u64;
    for day in &days {
        let df = read_files(&engine.ctx, &bronze.only_partitions(std::slice::from_ref(day)))?.sort(replay_order())?;
        let mut batches = df.execute_stream().await?;
        while let Some(batch) = batches.next().await {
            for (record, micros) in records_of(&batch?)? {
                pacer.wait(micros).await;
                let (key, value) = (record.key(), record.to_json());
                let mut message = BaseRecord::to(&args.kafka.topic).payload(&value);
                if let Some(key) = &key {
                    message = message.key(key);
                }
                send(&producer, message).await.with_context(|| format!("producing to {:?}", args.kafka.topic))?;
                rows += 1;
                while rows - deliveries.answered() >= IN_FLIGHT {
                    deliveries.check()?;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            deliveries.check()?;
            bar.set_position(rows);
        }
    }
    let flushed = tokio::task::block_in_place(|| producer.flush(Duration::from_secs(120)));
    flushed.context("waiting for the broker to acknowledge the last records")?;
    deliveries.check()?;
    let produced = deliveries.acked.load(Ordering::SeqCst);
    bar.finish_and_clear();
    crate::ensure!(
        rows == total && produced == rows,
        Missing,
        "replay does not add up: {total} bronze rows in the range, {rows} read, {produced} acknowledged"
    );
    Ok(ReplayReport { rows, produced, partitions, elapsed: started.elapsed(), topic: args.kafka.topic.clone() })
}

/// A topic is appended to, never rewritten: replaying into one that holds
/// records (an earlier replay) would give a stream the same events twice.
async fn refuse_a_filled_topic(kafka: &KafkaArgs) -> crate::Result<()> {
    let reader = crate::source::TopicReader::new(kafka, "funnelpulse-replay", Duration::from_secs(30))?;
    let held: i64 = reader.watermarks().await?.values().map(|(low, high)| (high - low).max(0)).sum();
    crate::ensure!(
        held == 0,
        Input,
        "topic {:?} already holds {held} records (an earlier replay?): a stream reading it would count those days \
         again; replay into a new --topic (or delete and re-create this one, then run stage 04 with --reset-stream), \
         or pass --append to add these records anyway",
        kafka.topic
    );
    Ok(())
}

/// The idempotent producer. A producer polled by librdkafka's own thread,
/// counting the broker's answers, costs less per record than one future each.
fn create_producer(kafka: &KafkaArgs) -> crate::Result<ThreadedProducer<Deliveries>> {
    let mut config = client_config(kafka);
    config
        .set("enable.idempotence", "true")
        // Fuller produce requests: the broker's cost is mostly per request.
        .set("linger.ms", "20")
        .set("message.timeout.ms", "60000");
    // The user's settings win over these defaults.
    for (key, value) in &kafka.client.options {
        config.set(key, value);
    }
    let auth = kafka.client.auth();
    let producer: ThreadedProducer<Deliveries> = config
        .create_with_context(Deliveries { auth: auth.clone(), ..Default::default() })
        .context("creating the Kafka producer")?;
    auth.prime(producer.client())?;
    Ok(producer)
}

/// Hands a record to librdkafka, waiting while its queue is full.
async fn send<'a>(
    producer: &ThreadedProducer<Deliveries>,
    mut record: BaseRecord<'a, String, String>,
) -> crate::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

/// The broker's answers, counted from librdkafka's polling thread.
#[derive(Default)]
struct Deliveries {
    /// Token refreshes, served by librdkafka's polling thread.
    auth: KafkaAuth,
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Deliveries {
    fn answered(&self) -> u64 {
        self.acked.load(Ordering::SeqCst) + self.failed.load(Ordering::SeqCst)
    }

    /// An error once the broker has refused a record.
    fn check(&self) -> crate::Result<()> {
        if self.failed.load(Ordering::SeqCst) == 0 {
            return Ok(());
        }
        let error = self.first_error.lock().expect("not poisoned").clone().unwrap_or_default();
        Err(crate::KafkaError::Refused(format!("the broker did not take a record: {error}")))
    }
}

impl ClientContext for Deliveries {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = KafkaAuth::ENABLE_REFRESH_OAUTH_TOKEN;

    fn generate_oauth_token(&self, config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.auth.generate_oauth_token(config)
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::SeqCst);
            }
            Err((error, _)) => {
                self.first_error.lock().expect("not poisoned").get_or_insert_with(|| error.to_string());
                self.failed.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// Bronze's days in the range; none is an error naming the days bronze has.
/// The bronze days to replay: `--from … --to`, by default the last 17 days of the data.
fn days_in_range(bronze: &TableFiles, from: Option<NaiveDate>, to: Option<NaiveDate>) -> crate::Result<Vec<String>> {
    let all = bronze.partitions();
    let range = funnelpulse_core::stream::stream_date_range(from, to, &all);
    let days: Vec<String> = match range {
        Some((from, to)) => {
            let (from, to) = (from.to_string(), to.to_string());
            all.iter().filter(|d| **d >= from && **d <= to).cloned().collect()
        }
        None => Vec::new(),
    };
    if days.is_empty() {
        let wanted = range.map_or("dated".to_string(), |(from, to)| format!("from {from} to {to}"));
        let held = match (all.iter().min(), all.iter().max()) {
            (Some(first), Some(last)) => format!("it holds {first} … {last}"),
            _ => "it is empty".to_string(),
        };
        return Err(crate::KafkaError::Missing(format!(
            "bronze_events has no rows {wanted} ({held}): choose the days with --from and --to"
        )));
    }
    Ok(days)
}

async fn count_rows(engine: &Engine, bronze: &TableFiles, days: &[String]) -> crate::Result<u64> {
    if days.is_empty() {
        return Ok(0);
    }
    let bronze = read_files(&engine.ctx, &bronze.only_partitions(days))?;
    Ok(one_row_i64(bronze, vec![count(lit(1))]).await?[0] as u64)
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed}] replay {bar:30} {pos}/{len} events ({per_sec}, eta {eta})")
            .expect("valid template"),
    );
    bar
}

/// Paces a replay: at `rate` events per second, or following event time
/// at `speedup` × real time; otherwise it never waits.
struct Pacer {
    rate: Option<f64>,
    speedup: Option<f64>,
    started: Instant,
    sent: u64,
    first_event: Option<i64>,
}

impl Pacer {
    fn new(rate: Option<f64>, speedup: Option<f64>) -> Self {
        Self { rate, speedup, started: Instant::now(), sent: 0, first_event: None }
    }

    async fn wait(&mut self, event_micros: Option<i64>) {
        self.sent += 1;
        let due = if let Some(rate) = self.rate {
            Duration::from_secs_f64(self.sent as f64 / rate)
        } else if let (Some(speedup), Some(micros)) = (self.speedup, event_micros) {
            let first = *self.first_event.get_or_insert(micros);
            Duration::from_secs_f64((micros - first) as f64 / 1e6 / speedup)
        } else {
            return;
        };
        let elapsed = self.started.elapsed();
        // Sleeping per record below a millisecond would cost more than it paces.
        if due > elapsed + Duration::from_millis(1) {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}
