//! `funnelpulse-stage02`: the stage on its own (`funnelpulse run 02` does the same).

use clap::Parser;
use funnelpulse_engine::CommonArgs;

#[derive(Parser)]
#[command(
    about = "Stage 02: silver_events → gold_funnel_daily_brand, gold_funnel_daily_category, gold_funnel_hourly_price_band"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let engine = funnelpulse_engine::Engine::connect(cli.common.engine_mode()?).await?;
    let lake = funnelpulse_lake::Lake::open(&cli.common.lake, engine.ctx.runtime_env().object_store_registry.as_ref())?;
    let report = funnelpulse_stage02::run(&engine, &lake).await?;
    println!("{report}");
    Ok(())
}
