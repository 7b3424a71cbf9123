//! The lake's errors: what failed (the store, a table's log, a damaged file,
//! another writer) and where, as one typed value.

use deltalake_core::DeltaTableError;
use funnelpulse_core::ErrorKind;

use crate::TableChanged;

/// Why a lake operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The store failed a read, write, listing or delete of `what`.
    Storage {
        /// What was being done, with the file's URL.
        what: String,
        /// The store's own error.
        #[source]
        source: object_store::Error,
    },
    /// Reading or committing a table's Delta log failed.
    Log {
        /// What was being done, with the table's name.
        what: String,
        /// delta-rs's error.
        #[source]
        source: Box<DeltaTableError>,
    },
    /// Another run changed a table first; nothing of this run was committed
    /// unless [`TableChanged::committed`] says so.
    Conflict(#[from] TableChanged),
    /// A file in the lake is not what it should be (a marker, a journal, a
    /// Parquet footer).
    Damaged {
        /// Which file, and what is wrong.
        what: String,
        /// The parser's error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A request the lake cannot serve as asked: a bad location, a table or
    /// version that does not exist, a table in an old layout.
    Invalid(String),
    /// `source`, while doing `context`.
    Context {
        /// What was being done.
        context: String,
        /// What failed.
        #[source]
        source: Box<LakeError>,
    },
}

/// `{error}` says what failed at the outermost level, `{error:#}` the whole
/// chain, each cause once.
impl std::fmt::Display for LakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if f.alternate() {
            return f.write_str(&funnelpulse_core::error::chain_text(self));
        }
        match self {
            LakeError::Storage { what, source } if what.is_empty() => source.fmt(f),
            LakeError::Log { what, source } if what.is_empty() => source.fmt(f),
            LakeError::Storage { what, .. } | LakeError::Log { what, .. } | LakeError::Damaged { what, .. } => {
                f.write_str(what)
            }
            LakeError::Conflict(changed) => changed.fmt(f),
            LakeError::Invalid(message) => f.write_str(message),
            LakeError::Context { context, .. } => f.write_str(context),
        }
    }
}

/// A lake operation's result.
pub type Result<T, E = LakeError> = std::result::Result<T, E>;

impl LakeError {
    /// What happened, as far as a retry is concerned.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LakeError::Storage { source, .. } => ErrorKind::of_object_store(source),
            LakeError::Log { source, .. } => log_kind(source),
            LakeError::Conflict(_) => ErrorKind::Conflict,
            LakeError::Damaged { .. } | LakeError::Invalid(_) => ErrorKind::Plan,
            LakeError::Context { source, .. } => source.kind(),
        }
    }

    /// The conflict under any context, if this is one.
    pub fn as_conflict(&self) -> Option<&TableChanged> {
        match self {
            LakeError::Conflict(changed) => Some(changed),
            LakeError::Context { source, .. } => source.as_conflict(),
            _ => None,
        }
    }

    /// Whether this is a missing file (a store's NotFound, under any context).
    pub fn is_not_found(&self) -> bool {
        match self {
            LakeError::Storage { source, .. } => matches!(source, object_store::Error::NotFound { .. }),
            LakeError::Context { source, .. } => source.is_not_found(),
            _ => false,
        }
    }

    /// A damaged file, with the parser's error.
    pub fn damaged(what: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        LakeError::Damaged { what: what.into(), source: Some(Box::new(source)) }
    }
}

fn log_kind(error: &DeltaTableError) -> ErrorKind {
    match error {
        DeltaTableError::ObjectStore { source } => ErrorKind::of_object_store(source),
        DeltaTableError::Io { .. } => ErrorKind::Storage,
        _ if crate::delta::is_conflict(error) => ErrorKind::Conflict,
        _ => ErrorKind::Plan,
    }
}

/// Context for the lake's fallible steps: `.storage(..)` on a store's
/// result, `.log(..)` on delta-rs's, `.context(..)` on the lake's own.
pub trait LakeContext<T> {
    /// Names what was being done when the step failed.
    fn context(self, what: impl Into<String>) -> Result<T>;
    /// As [`LakeContext::context`], the text made only on failure.
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<LakeError>> LakeContext<T> for std::result::Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.into().within(what.into()))
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.into().within(what()))
    }
}

impl LakeError {
    /// This error with `what` said first; a store's or log's bare error takes
    /// it as its own description.
    fn within(self, what: String) -> LakeError {
        match self {
            LakeError::Storage { what: inner, source } if inner.is_empty() => LakeError::Storage { what, source },
            LakeError::Log { what: inner, source } if inner.is_empty() => LakeError::Log { what, source },
            other => LakeError::Context { context: what, source: Box::new(other) },
        }
    }
}

impl From<object_store::Error> for LakeError {
    fn from(source: object_store::Error) -> Self {
        LakeError::Storage { what: String::new(), source }
    }
}

impl From<DeltaTableError> for LakeError {
    fn from(source: DeltaTableError) -> Self {
        LakeError::Log { what: String::new(), source: Box::new(source) }
    }
}

impl From<std::io::Error> for LakeError {
    fn from(source: std::io::Error) -> Self {
        let source = object_store::Error::Generic { store: "LocalFileSystem", source: Box::new(source) };
        LakeError::Storage { what: String::new(), source }
    }
}

impl From<serde_json::Error> for LakeError {
    fn from(source: serde_json::Error) -> Self {
        LakeError::Damaged { what: format!("not the JSON expected ({source})"), source: Some(Box::new(source)) }
    }
}

impl<T> LakeContext<T> for Option<T> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.ok_or_else(|| LakeError::Invalid(what.into()))
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.ok_or_else(|| LakeError::Invalid(what()))
    }
}

impl From<deltalake_core::kernel::Error> for LakeError {
    fn from(source: deltalake_core::kernel::Error) -> Self {
        DeltaTableError::from(source).into()
    }
}

impl From<datafusion::parquet::errors::ParquetError> for LakeError {
    fn from(source: datafusion::parquet::errors::ParquetError) -> Self {
        LakeError::damaged("a Parquet file's footer cannot be read", source)
    }
}

impl From<datafusion::arrow::error::ArrowError> for LakeError {
    fn from(source: datafusion::arrow::error::ArrowError) -> Self {
        LakeError::Invalid(format!("columns the Delta log cannot hold: {source}"))
    }
}

impl From<url::ParseError> for LakeError {
    fn from(source: url::ParseError) -> Self {
        LakeError::Invalid(format!("not a valid URL ({source})"))
    }
}

impl From<chrono::OutOfRangeError> for LakeError {
    fn from(source: chrono::OutOfRangeError) -> Self {
        LakeError::Invalid(format!("a duration out of range ({source})"))
    }
}
