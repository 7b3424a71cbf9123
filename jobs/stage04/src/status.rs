//! `funnelpulse stream status`: what a stream's checkpoint says, and what
//! waits in its source.

use std::time::Duration;

use datafusion::execution::object_store::ObjectStoreRegistry;
use funnelpulse_engine::Context;
use funnelpulse_lake::Lake;

use crate::args::Stage04Args;
use crate::checkpoint::{Position, Quarantined};
use crate::driver::open_checkpoint;
use crate::progress::Status;
use crate::source::{FileSource, KafkaSource, KafkaSourceArgs, StreamSource};

/// Files quarantined by committed batches (not by the one pending).
fn committed_quarantine(position: &Position) -> Vec<Quarantined> {
    let pending = position.pending.iter().flat_map(|p| &p.quarantined);
    let pending: std::collections::HashSet<&str> = pending.map(|q| q.path.as_str()).collect();
    position.quarantined.iter().filter(|q| !pending.contains(q.path.as_str())).cloned().collect()
}

/// `funnelpulse stream status`: what the checkpoint says, and what waits in
/// the source (for a Kafka stream, when the brokers are given).
pub async fn status(
    lake: &Lake,
    args: &Stage04Args,
    stores: &dyn ObjectStoreRegistry,
) -> funnelpulse_engine::Result<Status> {
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
