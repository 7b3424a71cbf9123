//! `funnelpulse alert`: posts the anomalies not sent yet to a webhook.

use funnelpulse_engine::{CommonArgs, Engine};
use funnelpulse_lake::Lake;
use funnelpulse_stage05::alerts::{AlertArgs, Detector, send_new_alerts};

#[derive(clap::Args, Debug)]
pub struct AlertCommandArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Webhook to post to (a Slack incoming webhook or any endpoint taking JSON).
    #[arg(long, env = "FUNNELPULSE_ALERT_WEBHOOK", value_name = "URL")]
    pub webhook: String,
    /// Which detector's anomalies to send.
    #[arg(long, env = "FUNNELPULSE_ALERT_DETECTOR", value_enum, default_value_t = Detector::V2)]
    pub detector: Detector,
    /// Retries of a failed message (exponential backoff from 250 ms).
    #[arg(long, env = "FUNNELPULSE_ALERT_RETRIES", default_value_t = 4)]
    pub retries: usize,
    /// Print the messages that would be posted, and to which endpoint; post and record nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: AlertCommandArgs) -> anyhow::Result<()> {
    let engine = Engine::connect_with(args.common.engine_mode()?, &args.common.cluster).await?;
    let lake = Lake::open(&args.common.lake, engine.ctx.runtime_env().object_store_registry.as_ref())?;
    let alert = AlertArgs {
        webhook: Some(args.webhook),
        detector: args.detector,
        retries: args.retries,
        dry_run: args.dry_run,
    };
    println!("{}", send_new_alerts(&engine, &lake, &alert).await?);
    Ok(())
}
