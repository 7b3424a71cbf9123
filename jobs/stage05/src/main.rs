//! `funnelpulse-stage05`: the stage on its own (`funnelpulse run 05` does the same).

use clap::Parser;
use funnelpulse_engine::{AsOfArgs, CommonArgs};
use funnelpulse_stage05::Stage05Args;

#[derive(Parser)]
#[command(about = "Stage 05: gold_funnel_hourly_brand → gold_anomalies_hourly_brand (classic) and _v2 (rate test)")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    stage: Stage05Args,
    #[command(flatten)]
    as_of: AsOfArgs,
}

fn main() -> anyhow::Result<()> {
    funnelpulse_engine::memory::main_runtime().block_on(async_main())
}

async fn async_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut runner = funnelpulse_engine::StageRunner::connect(&cli.common).await?;
    let lake = runner.open_lake(&cli.common.lake)?;
    let as_of = cli.as_of.or_latest();
    let report =
        runner.run("05", async |engine| funnelpulse_stage05::run(engine, &lake, &cli.stage, &as_of).await).await?;
    println!("{report}");
    Ok(())
}
