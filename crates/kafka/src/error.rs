//! Kafka's errors: the broker away (worth waiting for), a refused sign-in or
//! a missing topic (not), bad option values, and the engine's errors of the
//! replay, with the contexts added on the way up.

use funnelpulse_core::ErrorKind;

/// Why a Kafka step failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// librdkafka failed a call: the broker cannot be reached or answered
    /// with an error. Waiting may help.
    Broker(#[from] rdkafka::error::KafkaError),
    /// The broker refused the sign-in, with its reason: retrying cannot help.
    Refused(String),
    /// What the step needs is not there (a topic, bronze rows, records the
    /// topic no longer holds): the same again on a retry.
    Missing(String),
    /// An option's value is wrong.
    Input(String),
    /// No sign-in token: the metadata server did not give one.
    Token {
        /// What was asked of whom, and what to do.
        what: String,
        /// The HTTP client's or parser's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A record batch could not be built or read.
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// The engine failed (the replay reads bronze through it).
    Engine(#[from] funnelpulse_engine::Error),
    /// A blocking call on librdkafka's thread panicked or was cancelled.
    Thread(#[from] tokio::task::JoinError),
    /// `source`, while doing `context`.
    Context {
        /// What was being done.
        context: String,
        /// What failed.
        #[source]
        source: Box<KafkaError>,
    },
}

/// `{error}` says what failed at the outermost level, `{error:#}` the whole
/// chain, each cause once.
impl std::fmt::Display for KafkaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if f.alternate() {
            return f.write_str(&funnelpulse_core::error::chain_text(self));
        }
        match self {
            KafkaError::Broker(error) => error.fmt(f),
            KafkaError::Refused(message) | KafkaError::Missing(message) | KafkaError::Input(message) => {
                f.write_str(message)
            }
            KafkaError::Token { what, .. } => f.write_str(what),
            KafkaError::Arrow(error) => error.fmt(f),
            KafkaError::Engine(error) => error.fmt(f),
            KafkaError::Thread(error) => error.fmt(f),
            KafkaError::Context { context, .. } => f.write_str(context),
        }
    }
}

/// A Kafka step's result.
pub type Result<T, E = KafkaError> = std::result::Result<T, E>;

impl KafkaError {
    /// What happened, as far as a retry is concerned.
    pub fn kind(&self) -> ErrorKind {
        match self {
            KafkaError::Broker(_) | KafkaError::Token { .. } => ErrorKind::Unavailable,
            KafkaError::Refused(_) | KafkaError::Input(_) => ErrorKind::Input,
            KafkaError::Missing(_) | KafkaError::Arrow(_) | KafkaError::Thread(_) => ErrorKind::Plan,
            KafkaError::Engine(error) => error.kind(),
            KafkaError::Context { source, .. } => source.kind(),
        }
    }

    /// Whether waiting for the broker may make the step succeed (the
    /// source's retries, up to its patience).
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }

    /// This error, said to have happened while doing `context`.
    pub fn context(self, context: impl Into<String>) -> Self {
        KafkaError::Context { context: context.into(), source: Box::new(self) }
    }
}

impl From<KafkaError> for funnelpulse_engine::Error {
    fn from(error: KafkaError) -> Self {
        match error {
            KafkaError::Engine(error) => error,
            other => funnelpulse_engine::Error::other(other.kind(), other),
        }
    }
}

/// Returns `KafkaError::<variant>` made with `format!` unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $variant:ident, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::KafkaError::$variant(format!($($arg)*)));
        }
    };
}

/// Context on a Kafka step's result.
pub trait KafkaContext<T> {
    /// Names what was being done when the step failed.
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// As [`KafkaContext::context`], the text made only on failure.
    fn with_context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<KafkaError>> KafkaContext<T> for std::result::Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.into().context(context))
    }
    fn with_context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.into().context(context()))
    }
}

impl<T> KafkaContext<T> for Option<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.ok_or_else(|| KafkaError::Missing(context.into()))
    }
    fn with_context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.ok_or_else(|| KafkaError::Missing(context()))
    }
}

impl From<funnelpulse_lake::LakeError> for KafkaError {
    fn from(error: funnelpulse_lake::LakeError) -> Self {
        KafkaError::Engine(error.into())
    }
}

impl From<datafusion::error::DataFusionError> for KafkaError {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        KafkaError::Engine(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_away_is_waited_for_and_a_refusal_is_not() {
        let away = KafkaError::Broker(rdkafka::error::KafkaError::MetadataFetch(
            rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure,
        ));
        let away = away.context("reading the topic's metadata");
        assert!(away.is_transient());
        assert!(!KafkaError::Refused("the broker refused the sign-in".into()).is_transient());
        assert!(!KafkaError::Missing("topic \"x\" does not exist".into()).context("reading").is_transient());
        let engine: funnelpulse_engine::Error = KafkaError::Input("--rate must be positive".into()).into();
        assert_eq!(engine.kind(), ErrorKind::Input);
        // Once the source's patience is spent, the stage is not run again on a cluster.
        let gone: funnelpulse_engine::Error = away.into();
        assert!(!funnelpulse_engine::attempts::is_cluster_failure(&gone));
    }
}
