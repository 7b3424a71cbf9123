//! `funnelpulse kafka …`: the Kafka side of the pipeline.

use funnelpulse_engine::{CommonArgs, StageRunner};
use funnelpulse_kafka::ReplayArgs;

#[derive(clap::Subcommand)]
pub enum KafkaCommand {
    /// Produce the bronze rows of a date range to a topic, in event-time order
    /// (JSON values, keyed by user_id), like stage 03 does for files.
    Replay(ReplayCommandArgs),
}

#[derive(clap::Args)]
pub struct ReplayCommandArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub replay: ReplayArgs,
}

pub async fn run(command: KafkaCommand) -> anyhow::Result<()> {
    match command {
        KafkaCommand::Replay(args) => {
            let runner = StageRunner::connect(&args.common).await?;
            let lake = runner.open_lake(&args.common.lake)?;
            // Not retried: records already produced would be produced again.
            let report = funnelpulse_kafka::replay(runner.engine(), &lake, &args.replay).await?;
            println!("{report}");
            Ok(())
        }
    }
}
