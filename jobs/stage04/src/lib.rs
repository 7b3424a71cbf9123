//! Stage 04: the streaming hourly brand funnel — micro-batches over new
//! files or Kafka offsets, each a set of Ballista jobs, with an event-time
//! watermark, append output and exactly-once results across crashes.
//!
//! - [`args`]: the stage's options; [`report`]: what a run prints;
//! - [`driver`]: the run under the checkpoint's lease — resume, the batch
//!   loop, quarantine retry, flush, reset;
//! - [`source`]: what a batch consumes: new files of a folder (name order,
//!   settled, checked) or offset ranges of a Kafka topic (staged as Parquet);
//! - [`state`]: how the open windows are kept between batches (summed
//!   windows, or de-duplicated events), one trait, two stores;
//! - [`batch`]: one micro-batch's jobs, reconciliation and commit record;
//! - [`sink`]: the output tables, staged per batch and appended once;
//! - [`checkpoint`] and [`lease`]: the write-ahead log, state and commits
//!   that make a killed run resume with identical output, and one stream
//!   per checkpoint;
//! - [`progress`] and [`status`]: per-batch progress and `funnelpulse stream status`.

pub mod args;
pub mod batch;
pub mod checkpoint;
pub mod driver;
pub mod lease;
pub mod progress;
pub mod report;
pub mod sink;
pub mod source;
pub mod state;
pub mod status;

pub use args::{CHECKPOINT, STREAM_INPUT, SourceKind, Stage04Args};
pub use driver::run;
pub use report::Stage04Report;
pub use status::status;

use funnelpulse_engine::Engine;
use funnelpulse_lake::Lake;

/// The streaming hourly brand funnel.
pub struct Stage04;

impl funnelpulse_engine::Stage for Stage04 {
    const ID: &'static str = "04";
    const ABOUT: &'static str = "streaming hourly brand funnel over new files or Kafka, exactly once, on Ballista";
    type Args = Stage04Args;
    type Report = Stage04Report;

    async fn run(engine: &Engine, lake: &Lake, args: &Stage04Args) -> funnelpulse_engine::Result<Stage04Report> {
        run(engine, lake, args).await
    }
}
