//! `funnelpulse-stage05`: the stage on its own (`funnelpulse run 05` does the same).

use clap::Parser;
use funnelpulse_engine::CommonArgs;
use funnelpulse_stage05::Stage05Args;

#[derive(Parser)]
#[command(about = "Stage 05: gold_funnel_hourly_brand → gold_anomalies_hourly_brand (classic) and _v2 (rate test)")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    stage: Stage05Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let engine = funnelpulse_engine::Engine::connect(cli.common.engine_mode()?).await?;
    let lake = funnelpulse_lake::Lake::open(&cli.common.lake, engine.ctx.runtime_env().object_store_registry.as_ref())?;
    let report = funnelpulse_stage05::run(&engine, &lake, &cli.stage).await?;
    println!("{report}");
    Ok(())
}
