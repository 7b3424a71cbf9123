//! `funnelpulse-stage03`: the stage on its own (`funnelpulse run 03` does the same).

use clap::Parser;
use funnelpulse_engine::CommonArgs;
use funnelpulse_stage03::Stage03Args;

#[derive(Parser)]
#[command(about = "Stage 03: bronze rows of a date range → <lake>/stream_input/ as N files in event-time order")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    stage: Stage03Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let engine = funnelpulse_engine::Engine::connect(cli.common.engine_mode()?).await?;
    let lake = funnelpulse_lake::Lake::open(&cli.common.lake, engine.ctx.runtime_env().object_store_registry.as_ref())?;
    println!("{}", funnelpulse_stage03::run(&engine, &lake, &cli.stage).await?);
    Ok(())
}
