//! `funnelpulse-scheduler`: see the `funnelpulse-scheduler` crate.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    funnelpulse_scheduler::serve(funnelpulse_scheduler::Args::parse()).await
}
