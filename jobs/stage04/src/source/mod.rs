//! Where a stream's batches come from. A source only decides what the next
//! batch consumes and puts it where the batch's Ballista jobs can read it
//! (Parquet files); the batch engine is the same for every source.
//!
//! - [`files`]: new Parquet files of a folder (stage 03's output);
//! - [`kafka`]: exact offset ranges of a Kafka topic, staged as Parquet in
//!   the checkpoint.

pub mod files;
pub mod kafka;

pub use files::{FileSource, decode_fully, input_schema};
pub use kafka::{KafkaSource, KafkaSourceArgs};

use crate::checkpoint::{Checkpoint, Offsets, Position};

/// What a source has for the next batch.
pub enum Next {
    /// A batch, not logged yet; with a warning for the user, if any.
    Batch {
        /// What the batch consumes; logged before it runs.
        offsets: Offsets,
        /// A warning to print for the user, if any.
        warning: Option<String>,
    },
    /// Nothing new yet (continuous runs wait and ask again).
    Idle {
        /// What the source waits for, shown on the spinner.
        waiting: String,
        /// A warning to print for the user, if any.
        warning: Option<String>,
    },
    /// A bounded run has consumed everything it was started with.
    Done,
}

/// The source a stream reads (`--source`).
pub enum StreamSource {
    /// New Parquet files of a folder.
    Files(FileSource),
    /// Offset ranges of a Kafka topic, staged in the checkpoint.
    Kafka(Box<KafkaSource>),
}

impl StreamSource {
    /// Before the first batch (see the sources' `start`).
    pub async fn start(&mut self, position: &Position, bounded: bool) -> funnelpulse_engine::Result<Option<String>> {
        match self {
            Self::Files(s) => s.start(position, bounded).await,
            Self::Kafka(s) => s.start(position, bounded).await,
        }
    }

    /// What the next batch consumes, or why there is none.
    pub async fn next(&mut self, position: &Position, checkpoint: &Checkpoint) -> funnelpulse_engine::Result<Next> {
        match self {
            Self::Files(s) => s.next(position, checkpoint).await,
            Self::Kafka(s) => s.next(position).await,
        }
    }

    /// After a failed batch: the error to report when the source was rebuilt
    /// meanwhile (its files vanished because of that), none otherwise.
    pub async fn rebuilt(&self, checkpoint: &Checkpoint) -> Option<funnelpulse_engine::Error> {
        match self {
            Self::Files(s) => s.rebuilt_error(checkpoint).await,
            Self::Kafka(_) => None,
        }
    }

    /// A logged batch about to be re-run: its input must be in place.
    pub async fn prepare_rerun(&self, offsets: &Offsets) -> funnelpulse_engine::Result<()> {
        match self {
            Self::Files(_) => Ok(()),
            Self::Kafka(s) => s.restage_if_missing(offsets).await,
        }
    }

    /// After a batch's commit.
    pub async fn committed(&mut self, position: &Position) {
        if let Self::Kafka(s) = self {
            s.committed(position).await;
        }
    }

    /// What waits in the source, for `stream status`.
    pub async fn waiting(&self, position: &Position) -> funnelpulse_engine::Result<String> {
        match self {
            Self::Files(s) => s.waiting(position).await,
            Self::Kafka(s) => s.waiting(position).await,
        }
    }
}
