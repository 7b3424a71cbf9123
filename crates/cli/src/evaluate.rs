//! `funnelpulse evaluate`: precision, recall and F1 of each anomaly detector
//! against the generator's planted anomalies.

use std::path::PathBuf;

use anyhow::Context;
use funnelpulse_engine::{CommonArgs, Engine};
use funnelpulse_lake::Lake;
use funnelpulse_stage05::evaluate::{evaluate, read_truth};

#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// truth.json written by `funnelpulse generate` for the data in the lake.
    #[arg(long, env = "FUNNELPULSE_TRUTH", default_value = "data/sample-2000000-14d/truth.json")]
    pub truth: PathBuf,
    /// Also write the scores as JSON to this file (they always go to <lake>/reports/evaluation.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub as_of: funnelpulse_engine::AsOfArgs,
}

pub async fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    let truth = read_truth(&args.truth)?;
    if truth.anomalies.is_empty() {
        eprintln!(
            "note: {} plants no anomaly: the data is too small (anomalies go into brand-hours with ≥ 100 expected views)",
            args.truth.display()
        );
    }
    let engine = Engine::connect_with(args.common.engine_mode()?, &args.common.cluster).await?;
    let lake = Lake::open(&args.common.lake, engine.ctx.runtime_env().object_store_registry.as_ref())?;
    let as_of = args.as_of.for_several_tables("evaluate")?;
    let evaluation = evaluate(&engine, &lake, &truth, &as_of).await?;
    print!("{evaluation}");
    let json = serde_json::to_vec_pretty(&evaluation)?;
    let url = lake.put_report("evaluation.json", json.clone()).await?;
    println!("scores written to {url}");
    if let Some(out) = &args.out {
        std::fs::write(out, &json).with_context(|| format!("writing {}", out.display()))?;
        println!("and to {}", out.display());
    }
    Ok(())
}
