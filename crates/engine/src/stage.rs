//! What a stage is, and the one runtime every stage runs in.
//!
//! A stage is its arguments, its report, and one attempt at its work: plans
//! from `funnelpulse_core`, written through a [`StagedRun`](crate::StagedRun),
//! checked, committed. The runtime around it is owned here, once: parsing the
//! command line, the session (embedded or a cluster), opening the lake,
//! retrying an attempt a cluster failure broke ([`StageRunner`]), and printing
//! the report. Each stage binary's `main` is [`crate::binary::stage_main`];
//! `funnelpulse run` runs the same [`Stage`]s through [`StageRunner::run_stage`].

use std::fmt;

use clap::Args;
use funnelpulse_lake::Lake;

use crate::attempts::StageRunner;
use crate::session::Engine;

/// One stage of the pipeline.
pub trait Stage {
    /// The stage's number, "01" … "06".
    const ID: &'static str;
    /// What it does, in one line (the binary's help).
    const ABOUT: &'static str;
    /// What the stage reads from the command line, beside [`crate::CommonArgs`].
    type Args: Args;
    /// What the stage prints when it is done.
    type Report: fmt::Display;

    /// One attempt: write the stage's tables, check them, commit them. It
    /// commits everything or nothing, so the runtime may simply run it again.
    fn run(engine: &Engine, lake: &Lake, args: &Self::Args) -> impl Future<Output = crate::Result<Self::Report>>;
}

/// A stage that takes nothing but the lake.
#[derive(Args, Debug, Clone, Default)]
pub struct NoArgs {}

impl StageRunner {
    /// Runs stage `S` on `lake`, retrying an attempt a cluster failure broke.
    pub async fn run_stage<S: Stage>(&mut self, lake: &Lake, args: &S::Args) -> crate::Result<S::Report> {
        self.run(S::ID, async |engine| S::run(engine, lake, args).await).await
    }
}
