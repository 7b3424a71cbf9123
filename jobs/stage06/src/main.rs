//! `funnelpulse-stage06`: the stage on its own (`funnelpulse run 06` does the same).

use clap::Parser;
use funnelpulse_engine::CommonArgs;

#[derive(Parser)]
#[command(about = "Stage 06: summary report of the lake, printed and written as <lake>/reports/summary.html")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let engine = funnelpulse_engine::Engine::connect(cli.common.engine_mode()?).await?;
    let lake = funnelpulse_lake::Lake::open(&cli.common.lake, engine.ctx.runtime_env().object_store_registry.as_ref())?;
    print!("{}", funnelpulse_stage06::run(&engine, &lake).await?);
    Ok(())
}
