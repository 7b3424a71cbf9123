//! `funnelpulse-stage04`: the stage on its own (`funnelpulse run 04` does the same).

use clap::Parser;
use funnelpulse_engine::CommonArgs;
use funnelpulse_stage04::Stage04Args;

#[derive(Parser)]
#[command(about = "Stage 04: streaming hourly brand funnel over new files, exactly once, on Ballista")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    stage: Stage04Args,
}

fn main() -> anyhow::Result<()> {
    funnelpulse_engine::memory::main_runtime().block_on(async_main())
}

async fn async_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut runner = funnelpulse_engine::StageRunner::connect(&cli.common).await?;
    let lake = runner.open_lake(&cli.common.lake)?;
    println!("{}", runner.run("04", async |engine| funnelpulse_stage04::run(engine, &lake, &cli.stage).await).await?);
    Ok(())
}
