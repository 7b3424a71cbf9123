//! The engine's error, which every stage returns: what happened (bad input,
//! a plan error, a failed invariant, a lost cluster), or the typed error of
//! the layer that failed (a query, the lake, the raw files, a plug-in such as
//! Kafka), with the contexts a stage added on the way up.
//!
//! The stage runner decides retries from [`Error::kind`] alone
//! ([`crate::attempts`]); binaries turn the error into one line for the user
//! ([`crate::user_error`]).

use datafusion::error::DataFusionError;
use funnelpulse_core::ErrorKind;
use funnelpulse_lake::LakeError;
use funnelpulse_rawcsv::RawError;

use crate::attempts::InvariantViolation;

/// Why a stage, or a step of one, failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input or a bad option value: the same error again anywhere.
    Input(String),
    /// A plan, setting or lake-state error of our own: deterministic too.
    Plan(String),
    /// A reconciliation invariant did not hold.
    Invariant(#[from] InvariantViolation),
    /// The cluster was lost or cannot be reached (no scheduler, no executor).
    ClusterLost(String),
    /// A query failed, planning or running (on a cluster: the failed job,
    /// with the executor's error as text).
    Query(#[from] DataFusionError),
    /// The lake failed: storage, a table's log, a damaged file, another writer.
    Lake(#[from] LakeError),
    /// The raw files could not be listed or checked.
    Raw(#[from] RawError),
    /// A failure of a crate built on the engine (Kafka, an HTTP call), with
    /// the kind that crate gave it.
    Other {
        /// What happened, as the crate sorted it.
        kind: ErrorKind,
        /// The crate's error.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `source`, while doing `context`.
    Context {
        /// What was being done.
        context: String,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
}

/// The result of a step of a stage.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What happened, as far as a retry is concerned.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Input(_) => ErrorKind::Input,
            Error::Plan(_) => ErrorKind::Plan,
            Error::Invariant(_) => ErrorKind::Invariant,
            Error::ClusterLost(_) => ErrorKind::ClusterLost,
            Error::Query(error) => ErrorKind::of_datafusion(error),
            Error::Lake(error) => error.kind(),
            Error::Raw(error) => error.kind(),
            Error::Other { kind, .. } => *kind,
            Error::Context { source, .. } => source.kind(),
        }
    }

    /// Bad input or a bad option value, said in one line.
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input(message.into())
    }

    /// A plan, setting or lake-state error, said in one line.
    pub fn plan(message: impl Into<String>) -> Self {
        Error::Plan(message.into())
    }

    /// Another crate's error, with the kind that crate gave it.
    pub fn other(kind: ErrorKind, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Other { kind, error: source.into() }
    }

    /// This error, said to have happened while doing `context`.
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context { context: context.into(), source: Box::new(self) }
    }

    /// The lake error under any context, if this is one.
    pub fn as_lake(&self) -> Option<&LakeError> {
        match self {
            Error::Lake(error) => Some(error),
            Error::Context { source, .. } => source.as_lake(),
            _ => None,
        }
    }

    /// Whether a file was missing (a store's NotFound, under any context).
    pub fn is_not_found(&self) -> bool {
        match self.root() {
            Error::Lake(error) => error.is_not_found(),
            Error::Query(DataFusionError::ObjectStore(error)) => {
                matches!(error.as_ref(), object_store::Error::NotFound { .. })
            }
            _ => false,
        }
    }

    /// The innermost error under the contexts.
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root(),
            other => other,
        }
    }
}

impl From<object_store::Error> for Error {
    fn from(error: object_store::Error) -> Self {
        Error::Lake(error.into())
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Lake(error.into())
    }
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(error: datafusion::arrow::error::ArrowError) -> Self {
        Error::Query(error.into())
    }
}

impl From<reqwest::Error> for Error {
    fn from(error: reqwest::Error) -> Self {
        // The scheduler's REST API did not answer as it should.
        Error::other(ErrorKind::ClusterLost, error)
    }
}

impl From<ballista_core::error::BallistaError> for Error {
    fn from(error: ballista_core::error::BallistaError) -> Self {
        Error::other(ErrorKind::ClusterLost, error)
    }
}

impl From<tonic::transport::Error> for Error {
    fn from(error: tonic::transport::Error) -> Self {
        Error::other(ErrorKind::ClusterLost, error)
    }
}

impl From<object_store::path::Error> for Error {
    fn from(error: object_store::path::Error) -> Self {
        Error::Plan(format!("not a valid path in the lake: {error}"))
    }
}

impl From<datafusion::parquet::errors::ParquetError> for Error {
    fn from(error: datafusion::parquet::errors::ParquetError) -> Self {
        Error::Query(error.into())
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(error: tokio::task::JoinError) -> Self {
        Error::other(ErrorKind::Plan, error)
    }
}

impl From<chrono::OutOfRangeError> for Error {
    fn from(error: chrono::OutOfRangeError) -> Self {
        Error::Input(format!("a duration out of range ({error})"))
    }
}

impl From<url::ParseError> for Error {
    fn from(error: url::ParseError) -> Self {
        Error::Input(error.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error::Lake(error.into())
    }
}

/// `{error}` says what happened at the outermost level; `{error:#}` the
/// whole chain, `context: cause: root` (as anyhow's alternate form), each
/// cause once.
impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if f.alternate() {
            return f.write_str(&funnelpulse_core::error::chain_text(self));
        }
        match self {
            Error::Input(message) | Error::Plan(message) | Error::ClusterLost(message) => f.write_str(message),
            Error::Invariant(error) => error.fmt(f),
            Error::Query(error) => error.fmt(f),
            Error::Lake(error) => error.fmt(f),
            Error::Raw(error) => error.fmt(f),
            Error::Other { error, .. } => f.write_str(&funnelpulse_core::error::chain_text(error.as_ref())),
            Error::Context { context, .. } => f.write_str(context),
        }
    }
}

/// Context on a step's result, as `anyhow::Context` gives it, for any error
/// the engine knows (and for a missing value: a plan error).
pub trait Context<T> {
    /// Names what was being done when the step failed.
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// As [`Context::context`], the text made only on failure.
    fn with_context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.into().context(context))
    }
    fn with_context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.into().context(context()))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.ok_or_else(|| Error::Plan(context.into()))
    }
    fn with_context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.ok_or_else(|| Error::Plan(context()))
    }
}

/// Returns a plan error made with `format!` (as `anyhow::bail!`).
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::Error::plan(format!($($arg)*)))
    };
}

/// A plan error made with `format!` (as `anyhow::anyhow!`).
#[macro_export]
macro_rules! plan_error {
    ($($arg:tt)*) => {
        $crate::Error::plan(format!($($arg)*))
    };
}

/// Returns a plan error made with `format!` unless `cond` holds (as `anyhow::ensure!`).
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::bail!($($arg)*);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_goes_through_contexts_and_wrapped_layers() {
        let lost = Error::from(DataFusionError::Execution("Job abc failed: executor lost".into()));
        assert_eq!(lost.context("writing silver_events").kind(), ErrorKind::ClusterLost);
        let invariant = Error::from(InvariantViolation { name: "x".into(), detail: "1 vs 2".into() });
        assert_eq!(invariant.context("stage 02").kind(), ErrorKind::Invariant);
        let missing = object_store::Error::NotFound { path: "t".into(), source: "gone".into() };
        assert_eq!(Error::from(missing).kind(), ErrorKind::Plan);
        let refused = object_store::Error::Generic { store: "GCS", source: "503".into() };
        assert_eq!(Error::from(refused).kind(), ErrorKind::Storage);
        let bad = Error::Raw(RawError::BadInput("bad input: x.csv: no header".into()));
        assert_eq!(bad.context("counting lines").kind(), ErrorKind::Input);
        assert_eq!(Error::input("--z-threshold must be positive").kind(), ErrorKind::Input);
    }

    #[test]
    fn contexts_read_as_a_chain() {
        let error: anyhow::Error = Error::plan("no column x").context("stage 02").into();
        assert_eq!(format!("{error:#}"), "stage 02: no column x");
    }
}
