//! `funnelpulse alert`: posts the anomalies not sent yet to a webhook.

use funnelpulse_engine::{CommonArgs, Engine};
use funnelpulse_lake::Lake;
use funnelpulse_stage05::alerts::{AlertArgs, send_new_alerts};

/// `funnelpulse alert`: the alert flags of stage 05 (one definition, `AlertArgs`), and a dry run.
#[derive(clap::Args, Debug)]
pub struct AlertCommandArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Webhook, detector and retries, as `run 05` takes them (`--alert-webhook` is required here).
    #[command(flatten)]
    pub alert: AlertArgs,
    /// Print the messages that would be posted, and to which endpoint; post and record nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: AlertCommandArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.alert.webhook.is_some(),
        "funnelpulse alert needs a webhook: give --alert-webhook URL (or FUNNELPULSE_ALERT_WEBHOOK)"
    );
    let engine = Engine::connect_with(args.common.engine_mode()?, &args.common.cluster).await?;
    let lake = Lake::open(&args.common.lake, engine.ctx.runtime_env().object_store_registry.as_ref())?;
    let alert = AlertArgs { dry_run: args.dry_run, ..args.alert };
    println!("{}", send_new_alerts(&engine, &lake, &alert).await?);
    Ok(())
}
