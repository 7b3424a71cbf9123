//! `funnelpulse generate`.

use std::path::PathBuf;

use chrono::NaiveDate;
use funnelpulse_generator::{GeneratorConfig, REAL_ROWS, generate, prepare_out};

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Folder to write the monthly CSVs and truth.json into.
    #[arg(long, env = "FUNNELPULSE_OUT")]
    pub out: PathBuf,
    /// Number of rows (default: the real data's 8,738,120).
    #[arg(long, env = "FUNNELPULSE_ROWS", default_value_t = REAL_ROWS)]
    pub rows: u64,
    /// Random seed; the same seed gives the same files.
    #[arg(long, env = "FUNNELPULSE_SEED", default_value_t = 42)]
    pub seed: u64,
    /// First day (UTC).
    #[arg(long, env = "FUNNELPULSE_START", default_value = "2019-10-01")]
    pub start: NaiveDate,
    /// Number of days.
    #[arg(long, env = "FUNNELPULSE_DAYS", default_value_t = 61, value_parser = clap::value_parser!(u32).range(1..))]
    pub days: u32,
    /// Replace the files of an earlier `generate` in --out (other files are never deleted).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let removed = prepare_out(&args.out, args.force)?;
    if !removed.is_empty() {
        println!("replacing the earlier generated data in {}: removed {}", args.out.display(), removed.join(", "));
    }
    let report = generate(&GeneratorConfig {
        out: args.out,
        rows: args.rows,
        seed: args.seed,
        start: args.start,
        days: args.days,
    })?;
    println!(
        "generated {} rows ({:.1} MB) in {} files with {} planted anomalies in {:.1}s",
        report.rows,
        report.bytes as f64 / 1e6,
        report.files.len(),
        report.anomalies,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}
