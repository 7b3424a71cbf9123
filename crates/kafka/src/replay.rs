//! `funnelpulse kafka replay`: the bronze rows of a date range, produced to a
//! topic in event-time order (the order of stage 03's files), one record per
//! event, optionally paced at a rate or at a multiple of real time.
//!
//! The producer is idempotent (librdkafka's `enable.idempotence`: acks from
//! all replicas, and retries that cannot duplicate or reorder a partition's
//! records). The run ends with every record acknowledged, and fails when the
//! count of acknowledged records differs from the rows read.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDate;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::lit;
use funnelpulse_core::plans::replay_order;
use funnelpulse_core::tables::BRONZE_EVENTS;
use funnelpulse_engine::tables::read_partitions;
use funnelpulse_engine::{Engine, one_row_i64};
use funnelpulse_lake::Lake;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::KafkaArgs;
use crate::record::records_of;
use crate::topic::{client_config, ensure_topic};

#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// First event date (UTC) to replay.
    #[arg(long, default_value = "2019-10-15")]
    pub from: NaiveDate,
    /// Last event date (inclusive).
    #[arg(long, default_value = "2019-10-31")]
    pub to: NaiveDate,
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
}

#[derive(Debug, Default)]
pub struct ReplayReport {
    pub rows: u64,
    pub produced: u64,
    pub partitions: usize,
    pub elapsed: Duration,
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
const IN_FLIGHT: usize = 20_000;

pub async fn replay(engine: &Engine, lake: &Lake, args: &ReplayArgs) -> anyhow::Result<ReplayReport> {
    anyhow::ensure!(args.from <= args.to, "--from must not be after --to");
    anyhow::ensure!(args.rate.is_none_or(|r| r > 0.0), "--rate must be positive");
    anyhow::ensure!(args.speedup.is_none_or(|s| s > 0.0), "--speedup must be positive");
    let started = Instant::now();
    let create = args.create_topic.then_some((args.partitions, args.replication_factor));
    let days = days_in_range(lake, args.from, args.to).await?;
    let partitions = ensure_topic(&args.kafka, create).await?;
    let total = count_rows(engine, lake, &days).await?;

    let producer: FutureProducer = client_config(&args.kafka)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .create()
        .context("creating the Kafka producer")?;
    let bar = progress_bar(total);
    let mut pacer = Pacer::new(args.rate, args.speedup);
    let mut in_flight = FuturesUnordered::new();
    let (mut rows, mut produced) = (0u64, 0u64);
    for day in &days {
        let df = read_partitions(
            &engine.ctx,
            &BRONZE_EVENTS,
            &lake.table_url(&BRONZE_EVENTS),
            Some(std::slice::from_ref(day)),
        )
        .await?
        .sort(replay_order())?;
        let mut batches = df.execute_stream().await?;
        while let Some(batch) = batches.next().await {
            for (record, micros) in records_of(&batch?)? {
                pacer.wait(micros).await;
                let (key, value) = (record.key(), record.to_json());
                let mut message = FutureRecord::to(&args.kafka.topic).payload(&value);
                if let Some(key) = &key {
                    message = message.key(key);
                }
                let delivery = producer
                    .send_result(message)
                    .map_err(|(e, _)| anyhow::anyhow!("producing to {:?}: {e}", args.kafka.topic))?;
                in_flight.push(delivery);
                rows += 1;
                while in_flight.len() >= IN_FLIGHT {
                    produced += acknowledged(in_flight.next().await)?;
                }
            }
            bar.set_position(rows);
        }
    }
    while let Some(result) = in_flight.next().await {
        produced += acknowledged(Some(result))?;
    }
    bar.finish_and_clear();
    anyhow::ensure!(
        rows == total && produced == rows,
        "replay does not add up: {total} bronze rows in the range, {rows} read, {produced} acknowledged"
    );
    Ok(ReplayReport { rows, produced, partitions, elapsed: started.elapsed(), topic: args.kafka.topic.clone() })
}

type DeliveryOutcome =
    Result<rdkafka::producer::future_producer::OwnedDeliveryResult, futures::channel::oneshot::Canceled>;

/// 1 for an acknowledged record; an error for a record the broker refused.
fn acknowledged(outcome: Option<DeliveryOutcome>) -> anyhow::Result<u64> {
    match outcome {
        None => Ok(0),
        Some(Ok(Ok(_))) => Ok(1),
        Some(Ok(Err((e, _)))) => Err(anyhow::anyhow!("the broker did not take a record: {e}")),
        Some(Err(_)) => Err(anyhow::anyhow!("the producer stopped before a record was acknowledged")),
    }
}

/// Bronze's days in the range; none is an error naming the days bronze has.
async fn days_in_range(lake: &Lake, from: NaiveDate, to: NaiveDate) -> anyhow::Result<Vec<String>> {
    let (from, to) = (from.to_string(), to.to_string());
    let all = lake
        .partition_values(&Lake::table_rel(&BRONZE_EVENTS), BRONZE_EVENTS.partition_col)
        .await
        .context("reading bronze_events (run stage 01 first)")?;
    let days: Vec<String> = all.iter().filter(|d| **d >= from && **d <= to).cloned().collect();
    if days.is_empty() {
        let held = match (all.iter().min(), all.iter().max()) {
            (Some(first), Some(last)) => format!("it holds {first} … {last}"),
            _ => "it is empty".to_string(),
        };
        anyhow::bail!("bronze_events has no rows from {from} to {to} ({held}): choose the days with --from and --to");
    }
    Ok(days)
}

async fn count_rows(engine: &Engine, lake: &Lake, days: &[String]) -> anyhow::Result<u64> {
    if days.is_empty() {
        return Ok(0);
    }
    let bronze = read_partitions(&engine.ctx, &BRONZE_EVENTS, &lake.table_url(&BRONZE_EVENTS), Some(days)).await?;
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
