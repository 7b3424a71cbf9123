//! `funnelpulse-stage01`: the stage on its own (`funnelpulse run 01` does the same).

use clap::Parser;
use funnelpulse_engine::CommonArgs;
use funnelpulse_stage01::Stage01Args;

#[derive(Parser)]
#[command(about = "Stage 01: raw CSV → bronze → silver → gold_funnel_hourly_brand")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    stage: Stage01Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let raw = cli.stage.raw.clone().ok_or_else(|| anyhow::anyhow!("--raw is required (folder of Kaggle CSVs)"))?;
    let engine = funnelpulse_engine::Engine::connect(cli.common.engine_mode()?).await?;
    let lake = funnelpulse_lake::Lake::open(&cli.common.lake, engine.ctx.runtime_env().object_store_registry.as_ref())?;
    let report = funnelpulse_stage01::run(&engine, &lake, &raw, cli.stage.bad_rows).await?;
    println!("{report}");
    Ok(())
}
