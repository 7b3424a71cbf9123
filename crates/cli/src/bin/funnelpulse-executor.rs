//! `funnelpulse-executor`: see the `funnelpulse-executor` crate.

use clap::Parser;

fn main() {
    funnelpulse_engine::memory::main_runtime().block_on(async_main());
}

async fn async_main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(error) = funnelpulse_executor::serve(funnelpulse_executor::Args::parse()).await {
        log::debug!("{error:?}");
        eprintln!("error: {}", funnelpulse_engine::user_error::one_line(&error));
        std::process::exit(1);
    }
}
