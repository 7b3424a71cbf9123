//! The raw source's errors on the client: listing the raw files and checking
//! their headers and line counts before a job is planned. (Inside a job, the
//! scan returns DataFusion's errors, as an `ExecutionPlan` must.)

use funnelpulse_core::{BAD_INPUT, ErrorKind};

/// Why the raw files could not be listed or counted.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// A raw file cannot be read as events: one line that names the file,
    /// says what is wrong and what to do (it starts with [`BAD_INPUT`]).
    #[error("{0}")]
    BadInput(String),
    /// The store failed listing or reading the raw files.
    #[error(transparent)]
    Storage(#[from] object_store::Error),
    /// Reading a file's bytes failed (a corrupt compressed file says so).
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// The raw location is not a path the store can take.
    #[error("not a valid raw location: {0}")]
    Location(String),
}

impl RawError {
    /// What happened, as far as a retry is concerned.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RawError::BadInput(_) | RawError::Location(_) => ErrorKind::Input,
            RawError::Storage(source) => ErrorKind::of_object_store(source),
            RawError::Read(e) if e.to_string().contains(BAD_INPUT) => ErrorKind::Input,
            RawError::Read(_) => ErrorKind::Storage,
        }
    }
}

impl From<object_store::path::Error> for RawError {
    fn from(error: object_store::path::Error) -> Self {
        RawError::Location(error.to_string())
    }
}

impl From<datafusion::error::DataFusionError> for RawError {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        RawError::Location(error.to_string())
    }
}
