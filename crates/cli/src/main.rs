//! `funnelpulse`: the umbrella command — generate data, run stages.

mod alert;
mod config;
mod evaluate;
mod generate;
mod kafka;
mod lake;
mod run;
mod serve;
mod stream;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use funnelpulse_core::redact;

#[derive(Parser)]
#[command(name = "funnelpulse", version, about = "E-commerce funnel analytics on Apache DataFusion Ballista")]
#[command(after_help = "Settings come from flags, then FUNNELPULSE_* environment variables, then funnelpulse.toml \
                         (keys: the flags' long names).")]
struct Cli {
    /// Show debug logs and, on failure, the whole error chain (as RUST_LOG=funnelpulse=debug does).
    #[arg(short, long, global = true, env = "FUNNELPULSE_VERBOSE")]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process; boxing would only obscure the match
enum Command {
    /// Write Kaggle-format event CSVs (and truth.json of planted anomalies).
    Generate(generate::GenerateArgs),
    /// Run pipeline stages (01, 02, … or all) embedded or on a Ballista cluster.
    Run(run::RunArgs),
    /// Score the anomaly detectors (stage 05's tables) against the generator's truth.json.
    Evaluate(evaluate::EvaluateArgs),
    /// Post the anomalies not sent before to a webhook (Slack-compatible JSON).
    Alert(alert::AlertCommandArgs),
    /// Kafka: replay bronze events into a topic.
    #[command(subcommand)]
    Kafka(kafka::KafkaCommand),
    /// Inspect the streaming funnel (stage 04).
    #[command(subcommand)]
    Stream(stream::StreamCommand),
    /// The interactive dashboard: overview, funnel explorer, anomalies, stream, data quality.
    Serve(serve::ServeArgs),
    /// The lake's Delta tables: history of versions, vacuum.
    #[command(subcommand)]
    Lake(lake::LakeCommand),
}

/// The command line; an invalid value is one line naming where it came from.
fn parse(sources: &config::Sources) -> Cli {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut Cli::command())));
    parsed.unwrap_or_else(|error| match sources.explain(&error) {
        Some(line) => {
            eprintln!("error: {line}");
            std::process::exit(2);
        }
        None => error.exit(),
    })
}

fn main() {
    funnelpulse_engine::memory::main_runtime().block_on(async_main());
}

async fn async_main() {
    let verbose = std::env::args().any(|a| a == "-v" || a == "--verbose")
        || std::env::var("FUNNELPULSE_VERBOSE").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    funnelpulse_engine::logs::init(if verbose {
        funnelpulse_engine::logs::VERBOSE
    } else {
        funnelpulse_engine::logs::QUIET
    });
    funnelpulse_engine::shutdown::install();
    let outcome = async {
        let sources = config::load_config_file(&Cli::command())?;
        let cli = parse(&sources);
        if cli.verbose {
            log::info!("verbose: progress logs and whole error chains");
        }
        match cli.command {
            Command::Generate(args) => generate::run(args),
            Command::Run(args) => run::run(args).await,
            Command::Evaluate(args) => evaluate::run(args).await,
            Command::Alert(args) => alert::run(args).await,
            Command::Stream(command) => stream::run(command).await,
            Command::Kafka(command) => kafka::run(command).await,
            Command::Lake(command) => lake::run(command).await,
            Command::Serve(args) => serve::run(args).await,
        }
    }
    .await;
    if let Err(error) = outcome {
        if verbose {
            eprintln!("error (whole chain): {}", redact::scrub(&format!("{error:?}")));
        }
        eprintln!("error: {}", redact::scrub(&funnelpulse_engine::user_error::one_line(error.as_ref())));
        std::process::exit(1);
    }
}
