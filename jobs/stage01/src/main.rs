//! `funnelpulse-stage01`: the stage on its own (`funnelpulse run 01` does the same).

use clap::Parser;
use funnelpulse_engine::{ClockArgs, CommonArgs};
use funnelpulse_stage01::Stage01Args;

#[derive(Parser)]
#[command(about = "Stage 01: raw CSV → bronze → silver → gold_funnel_hourly_brand")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    stage: Stage01Args,
    #[command(flatten)]
    clock: ClockArgs,
}

fn main() -> anyhow::Result<()> {
    funnelpulse_engine::memory::main_runtime().block_on(async_main())
}

async fn async_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let raw = cli.stage.raw.clone().ok_or_else(|| anyhow::anyhow!("--raw is required (folder of Kaggle CSVs)"))?;
    let mut runner = funnelpulse_engine::StageRunner::connect(&cli.common).await?;
    let lake = runner.open_lake(&cli.common.lake)?;
    let report = runner
        .run("01", async |engine| funnelpulse_stage01::run(engine, &lake, &raw, cli.stage.bad_rows, &cli.clock).await)
        .await?;
    println!("{report}");
    Ok(())
}
