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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let engine = funnelpulse_engine::Engine::connect(cli.common.engine_mode()?).await?;
    let lake = funnelpulse_lake::Lake::open(&cli.common.lake, engine.ctx.runtime_env().object_store_registry.as_ref())?;
    println!("{}", funnelpulse_stage04::run(&engine, &lake, &cli.stage).await?);
    Ok(())
}
