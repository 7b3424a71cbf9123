//! `funnelpulse-stage06`: the stage on its own (`funnelpulse run 06` does the same).

use clap::Parser;
use funnelpulse_engine::{AsOfArgs, CommonArgs};

#[derive(Parser)]
#[command(about = "Stage 06: summary report of the lake, printed and written as <lake>/reports/summary.html")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
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
    let as_of = cli.as_of.for_several_tables("the report")?;
    print!("{}", runner.run("06", async |engine| funnelpulse_stage06::run(engine, &lake, &as_of).await).await?);
    Ok(())
}
