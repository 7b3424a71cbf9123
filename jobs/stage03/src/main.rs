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

fn main() -> anyhow::Result<()> {
    funnelpulse_engine::memory::main_runtime().block_on(async_main())
}

async fn async_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut runner = funnelpulse_engine::StageRunner::connect(&cli.common).await?;
    let lake = runner.open_lake(&cli.common.lake)?;
    println!("{}", runner.run("03", async |engine| funnelpulse_stage03::run(engine, &lake, &cli.stage).await).await?);
    Ok(())
}
