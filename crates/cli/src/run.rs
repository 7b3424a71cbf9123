//! `funnelpulse run STAGE…`: runs stages in order on one engine.

use std::path::{Path, PathBuf};

use anyhow::bail;
use funnelpulse_engine::{CommonArgs, NoArgs, Stage, StageRunner};
use funnelpulse_generator::GeneratorConfig;
use funnelpulse_lake::Lake;
use funnelpulse_stage01::{Stage01, Stage01Args, Stage01Inputs};
use funnelpulse_stage02::Stage02;
use funnelpulse_stage03::Stage03;
use funnelpulse_stage04::Stage04;
use funnelpulse_stage05::{Stage05, Stage05Inputs};
use funnelpulse_stage06::Stage06;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Stages to run: 01, 02, … or all.
    #[arg(required = true, value_name = "STAGE")]
    pub stages: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub stage01: funnelpulse_stage01::Stage01Args,
    #[command(flatten)]
    pub stage03: funnelpulse_stage03::Stage03Args,
    #[command(flatten)]
    pub stage04: funnelpulse_stage04::Stage04Args,
    #[command(flatten)]
    pub stage05: funnelpulse_stage05::Stage05Args,
    /// For stages 05 and 06 (the readers): which version of their input tables.
    #[command(flatten)]
    pub as_of: funnelpulse_engine::AsOfArgs,
    /// Rows of the demo sample generated when stage 01 runs without --raw (over
    /// the two weeks from 2019-10-15, the real data's density: about one planted
    /// anomaly a day).
    #[arg(long, env = "FUNNELPULSE_SAMPLE_ROWS", default_value_t = 2_000_000)]
    pub sample_rows: u64,
}

/// The pipeline's stages, in order (their numbers, from each [`Stage`] impl).
const STAGES: [&str; 6] = [Stage01::ID, Stage02::ID, Stage03::ID, Stage04::ID, Stage05::ID, Stage06::ID];

/// `all` → every stage; otherwise each named stage, in pipeline order.
fn resolve_stages(requested: &[String]) -> anyhow::Result<Vec<&'static str>> {
    if requested.iter().any(|s| s == "all") {
        return Ok(STAGES.to_vec());
    }
    let mut chosen = Vec::new();
    for name in requested {
        let normalised = format!("{:0>2}", name.trim());
        match STAGES.iter().find(|id| **id == normalised) {
            Some(id) => chosen.push(*id),
            None => bail!("unknown stage {name:?}: use 01–06 or all"),
        }
    }
    chosen.sort();
    chosen.dedup();
    Ok(chosen)
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let stages = resolve_stages(&args.stages)?;
    let sample = (stages.contains(&"01") && args.stage01.raw.is_none()).then(|| sample_dir(args.sample_rows));
    if let Some(dir) = &sample {
        // First, so that nobody mistakes the demo's results for their data's.
        eprintln!(
            "no --raw given: stage 01 reads the generated demo sample {} ({} rows from {}); give --raw DIR for \
             your data",
            dir.display(),
            args.sample_rows,
            sample_start()
        );
    }
    let mut runner = StageRunner::connect(&args.common).await?;
    eprintln!("running stages {} on {}", stages.join(", "), runner.engine().mode);
    let registry = runner.engine().ctx.runtime_env().object_store_registry.clone();
    let lake = Lake::open(&args.common.lake, registry.as_ref())?;
    let with_stream_input = stages.contains(&"03");
    let all = args.stages.iter().any(|s| s == "all");
    for stage in stages {
        // Each stage commits all its tables or none, so a failed attempt can be retried.
        let report = async {
            anyhow::Ok(match stage {
                "01" => {
                    let raw = match (&args.stage01.raw, &sample) {
                        (Some(raw), _) => raw.clone(),
                        (None, Some(dir)) => default_sample(dir, args.sample_rows)?,
                        (None, None) => bail!("stage 01 needs --raw"),
                    };
                    // --max-clock-skew is defined once, with stage 04's options.
                    let inputs = Stage01Inputs {
                        stage: Stage01Args { raw: Some(raw), ..args.stage01.clone() },
                        clock: args.stage04.clock.clone(),
                    };
                    runner.run_stage::<Stage01>(&lake, &inputs).await?.to_string()
                }
                "02" => runner.run_stage::<Stage02>(&lake, &NoArgs {}).await?.to_string(),
                "03" => runner.run_stage::<Stage03>(&lake, &args.stage03).await?.to_string(),
                "04" => {
                    let stage04 = stream_args(&args.stage04, all, with_stream_input);
                    runner.run_stage::<Stage04>(&lake, &stage04).await?.to_string()
                }
                "05" => {
                    let inputs = Stage05Inputs { stage: args.stage05.clone(), as_of: args.as_of.clone() };
                    runner.run_stage::<Stage05>(&lake, &inputs).await?.to_string()
                }
                "06" => runner.run_stage::<Stage06>(&lake, &args.as_of).await?.to_string(),
                other => bail!("stage {other} is not available"),
            })
        };
        let report = report.await.map_err(|error| in_lake(error, stage, &lake))?;
        // Each report on lines of its own.
        if report.ends_with('\n') { print!("{report}") } else { println!("{report}") }
    }
    Ok(())
}

/// Says which stage and lake failed, unless the error names the lake already.
fn in_lake(error: anyhow::Error, stage: &str, lake: &Lake) -> anyhow::Error {
    let url = lake.url().as_str().trim_end_matches('/');
    if format!("{error:#}").contains(url) { error } else { error.context(format!("stage {stage} on the lake {url}")) }
}

/// Stage 04's options in this command: `all` runs it bounded (available
/// now, flush at end) so that the pipeline ends by itself; after stage 03
/// rebuilt the stream input, the stream starts over (its checkpoint named
/// the old files).
fn stream_args(
    given: &funnelpulse_stage04::Stage04Args,
    all: bool,
    with_stream_input: bool,
) -> funnelpulse_stage04::Stage04Args {
    let mut args = given.clone();
    if all {
        args.available_now = true;
        args.flush_at_end = true;
    }
    if with_stream_input {
        // Stage 03's files are complete when committed (they appear by rename).
        args.reset_stream = true;
        args.file_settle = std::time::Duration::ZERO;
    }
    args
}

const SAMPLE_DAYS: u32 = 14;

fn sample_start() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2019, 10, 15).expect("valid date")
}

fn sample_dir(rows: u64) -> PathBuf {
    PathBuf::from(format!("data/sample-{rows}-{SAMPLE_DAYS}d"))
}

/// Without --raw, stage 01 reads a generated sample (made once, then reused).
fn default_sample(dir: &Path, rows: u64) -> anyhow::Result<String> {
    if !dir.join("truth.json").exists() {
        eprintln!("generating the {rows}-row demo sample in {}", dir.display());
        funnelpulse_generator::generate(&GeneratorConfig {
            out: dir.to_path_buf(),
            rows,
            seed: 42,
            start: sample_start(),
            days: SAMPLE_DAYS,
        })?;
    }
    Ok(dir.display().to_string())
}
