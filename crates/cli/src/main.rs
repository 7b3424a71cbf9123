//! `funnelpulse`: the umbrella command — generate data, run stages.

mod alert;
mod config;
mod evaluate;
mod generate;
mod kafka;
mod lake;
mod run;
mod stream;

use std::io::Write;

use clap::{Parser, Subcommand};
use funnelpulse_core::redact;

#[derive(Parser)]
#[command(name = "funnelpulse", version, about = "E-commerce funnel analytics on Apache DataFusion Ballista")]
#[command(after_help = "Settings come from flags, then FUNNELPULSE_* environment variables, then funnelpulse.toml.")]
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

#[tokio::main]
async fn main() {
    // Log records come from every crate (reqwest puts URLs in its own): scrubbed of secrets.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(QUIET_LOGS))
        .format(|buf, record| {
            let text = redact::scrub(&record.args().to_string());
            writeln!(buf, "[{} {:<5} {}] {text}", buf.timestamp(), record.level(), record.target())
        })
        .init();
    let outcome = async {
        config::load_config_file::<Cli>()?;
        match Cli::parse().command {
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
        eprintln!("error: {}", redact::scrub(&format!("{error:#}")));
        std::process::exit(1);
    }
}
