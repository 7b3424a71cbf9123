//! `funnelpulse`: the umbrella command — generate data, run stages.

mod alert;
mod config;
mod evaluate;
mod generate;
mod kafka;
mod lake;
mod run;
mod stream;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "funnelpulse", version, about = "E-commerce funnel analytics on Apache DataFusion Ballista")]
#[command(after_help = "Settings come from flags, then FUNNELPULSE_* environment variables, then funnelpulse.toml \
                         (keys: the flags' long names).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
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
    /// The lake's Delta tables: history of versions, vacuum.
    #[command(subcommand)]
    Lake(lake::LakeCommand),
}

/// Warnings, without Ballista's routine notes about spilling shuffle buffers.
const QUIET_LOGS: &str = "warn,ballista_core::execution_plans::sort_shuffle=error";

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

#[tokio::main]
async fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(QUIET_LOGS)).init();
    let outcome = async {
        let sources = config::load_config_file(&Cli::command())?;
        match parse(&sources).command {
            Command::Generate(args) => generate::run(args),
            Command::Run(args) => run::run(args).await,
            Command::Evaluate(args) => evaluate::run(args).await,
            Command::Alert(args) => alert::run(args).await,
            Command::Stream(command) => stream::run(command).await,
            Command::Kafka(command) => kafka::run(command).await,
            Command::Lake(command) => lake::run(command).await,
        }
    }
    .await;
    if let Err(error) = outcome {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
