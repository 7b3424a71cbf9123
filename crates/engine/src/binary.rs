//! What every binary's `main` does, once: logs, the runtime, signals, and a
//! failure as one line on stderr with exit code 1.
//!
//! - [`stage_main`]: a stage binary (`funnelpulse-stage01` …), the stage on
//!   its own, as `funnelpulse run NN` runs it;
//! - [`service_main`]: the cluster binaries (`funnelpulse-scheduler`,
//!   `funnelpulse-executor`), a Ballista service with our codecs.

use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser};

use crate::args::CommonArgs;
use crate::attempts::StageRunner;
use crate::stage::Stage;

/// A stage binary's command line: the common arguments and the stage's own.
#[derive(Parser)]
struct StageCli<A: Args> {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    stage: A,
}

/// `main` of a stage binary: parse, connect (embedded or `--scheduler`), run
/// the stage with the runtime's retries, print its report.
pub fn stage_main<S: Stage>() -> ExitCode {
    // clap keeps a command's name for the whole process: leaking one short string is that.
    let name: &'static str = Box::leak(format!("funnelpulse-stage{}", S::ID).into_boxed_str());
    let command = StageCli::<S::Args>::command().name(name).about(format!("Stage {}: {}", S::ID, S::ABOUT));
    let cli = StageCli::<S::Args>::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    crate::logs::init(crate::logs::QUIET);
    let outcome = crate::memory::main_runtime().block_on(async {
        crate::shutdown::install();
        let mut runner = StageRunner::connect(&cli.common).await?;
        let lake = runner.open_lake(&cli.common.lake)?;
        anyhow::Ok(runner.run_stage::<S>(&lake, &cli.stage).await?.to_string())
    });
    match outcome {
        Ok(report) => {
            print!("{report}");
            if !report.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(error) => failure(&error),
    }
}

/// `main` of a cluster binary: `serve` with the parsed arguments until it ends.
pub fn service_main<A: Parser>(serve: impl AsyncFnOnce(A) -> anyhow::Result<()>) -> ExitCode {
    let args = A::parse();
    crate::logs::init(crate::logs::SERVICE);
    match crate::memory::main_runtime().block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => failure(&error),
    }
}

/// A failure as the person at the terminal reads it: one line, no secret (the
/// whole chain at debug level).
pub fn failure(error: &anyhow::Error) -> ExitCode {
    log::debug!("{error:?}");
    eprintln!("error: {}", funnelpulse_core::redact::scrub(&crate::user_error::one_line(error.as_ref())));
    ExitCode::FAILURE
}
