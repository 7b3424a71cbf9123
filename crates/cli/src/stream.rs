//! `funnelpulse stream status`: where a streaming run (stage 04) stands.

use funnelpulse_lake::{Lake, LakeStores};
use funnelpulse_stage04::Stage04Args;

#[derive(clap::Subcommand, Debug)]
pub enum StreamCommand {
    /// Batches committed, watermark, open windows, quarantined files, dead letters, input waiting.
    Status(StatusArgs),
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Lake root: a local folder or gs://bucket/prefix.
    #[arg(long, env = "FUNNELPULSE_LAKE", default_value = "lake")]
    pub lake: String,
    /// Checkpoint folder [default: <lake>/checkpoints/stream_hourly_brand/].
    #[arg(long, env = "FUNNELPULSE_CHECKPOINT")]
    pub checkpoint: Option<String>,
    /// Source folder [default: <lake>/stream_input/].
    #[arg(long, env = "FUNNELPULSE_STREAM_SOURCE")]
    pub stream_source: Option<String>,
    /// A Kafka stream's brokers, HOST:PORT[,HOST:PORT…]: to show the records waiting (lag).
    #[arg(long, env = "FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// The Kafka client's settings and sign-in, as the stream's.
    #[command(flatten)]
    pub kafka_client: funnelpulse_kafka::ClientArgs,
}

pub async fn run(command: StreamCommand) -> anyhow::Result<()> {
    match command {
        StreamCommand::Status(args) => {
            let stores = LakeStores::new();
            let lake = Lake::open(&args.lake, stores.as_ref())?;
            let mut stage =
                Stage04Args { checkpoint: args.checkpoint, stream_source: args.stream_source, ..Default::default() };
            stage.kafka.bootstrap_servers = args.bootstrap_servers;
            stage.kafka.client = args.kafka_client;
            print!("{}", funnelpulse_stage04::status(&lake, &stage, stores.as_ref()).await?);
            Ok(())
        }
    }
}
