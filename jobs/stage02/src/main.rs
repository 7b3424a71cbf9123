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

fn main() -> anyhow::Result<()> {
    funnelpulse_engine::memory::main_runtime().block_on(async_main())
}

async fn async_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut runner = funnelpulse_engine::StageRunner::connect(&cli.common).await?;
    let lake = runner.open_lake(&cli.common.lake)?;
    let report = runner.run("02", async |engine| funnelpulse_stage02::run(engine, &lake).await).await?;
    println!("{report}");
    Ok(())
}
