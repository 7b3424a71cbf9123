//! `funnelpulse-executor`: see the `funnelpulse-executor` crate.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    funnelpulse_executor::serve(funnelpulse_executor::Args::parse()).await
}
