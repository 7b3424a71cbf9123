//! What kind of failure an error is, whichever crate raised it.
//!
//! Each library crate has its own typed error (`LakeError`, `RawError`,
//! `KafkaError`, the engine's `Error`); each says which [`ErrorKind`] it is,
//! and the stage runner decides from that alone whether running a stage again
//! can help. DataFusion's and Ballista's errors are sorted here, once
//! ([`ErrorKind::of_datafusion`]): an error made on an executor reaches the
//! client as text inside a failed job, so its kind is read from that text.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

use crate::BAD_INPUT;

/// What happened, as far as a retry is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is bad (a raw file's header, corrupt compressed data, a
    /// record that cannot be decoded) or an option's value is: the same error
    /// again on any cluster.
    Input,
    /// A plan, schema, setting or lake-state error: deterministic too.
    Plan,
    /// A reconciliation invariant did not hold. On a Ballista cluster this is
    /// the known symptom of a lost executor (its shuffle output read twice).
    Invariant,
    /// A lost executor or connection, a cancelled or timed-out job.
    ClusterLost,
    /// The storage failed a read, write or listing (not a missing file).
    Storage,
    /// Another writer changed a table first.
    Conflict,
    /// A service outside the cluster (a Kafka broker, its sign-in) did not
    /// answer within the patience its client already waited: running the
    /// stage again would only wait again.
    Unavailable,
}

impl ErrorKind {
    /// Whether a fresh attempt of a stage on a cluster may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::ClusterLost | ErrorKind::Storage | ErrorKind::Invariant)
    }

    /// Sorts a DataFusion error (also one of Ballista's, whose failed jobs
    /// carry the executor's error as text).
    pub fn of_datafusion(error: &DataFusionError) -> ErrorKind {
        let text = error.to_string();
        if text.contains(BAD_INPUT) {
            return ErrorKind::Input;
        }
        match transient_kind(error) {
            Some(kind) if !DETERMINISTIC_MARKERS.iter().any(|m| text.contains(m)) => kind,
            _ => ErrorKind::Plan,
        }
    }

    /// Sorts an object-store error: a missing file is deterministic, the rest
    /// is the storage failing.
    pub fn of_object_store(error: &object_store::Error) -> ErrorKind {
        match error {
            object_store::Error::NotFound { .. } => ErrorKind::Plan,
            _ => ErrorKind::Storage,
        }
    }
}

/// An error and its causes as one line (`a: b: c`), each text once: a cause
/// that its parent's message already quotes is not repeated.
pub fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !more.is_empty() && !text.contains(&more) {
            text = if text.is_empty() { more } else { format!("{text}: {more}") };
        }
        cause = inner.source();
    }
    text
}

/// The innermost cause's text (what actually failed, without the contexts).
pub fn root_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut root = error;
    while let Some(inner) = root.source() {
        root = inner;
    }
    root.to_string()
}

/// Messages of deterministic failures as they come back from a Ballista job,
/// where the executor's typed error has become text.
const DETERMINISTIC_MARKERS: [&str; 6] = [
    "Error during planning",
    "Schema error",
    "Cast error",
    "Invalid argument error",
    "SQL error",
    "This feature is not implemented",
];

/// The kind of a DataFusion error that a retry may fix, if it is one.
fn transient_kind(error: &DataFusionError) -> Option<ErrorKind> {
    match error {
        // Ballista reports failed jobs, lost connections and cancellations as execution errors.
        DataFusionError::Execution(_)
        | DataFusionError::ExecutionJoin(_)
        | DataFusionError::External(_)
        | DataFusionError::ResourcesExhausted(_) => Some(ErrorKind::ClusterLost),
        DataFusionError::IoError(_) => Some(ErrorKind::Storage),
        // A result stream cut off mid-way (the executor stopped answering).
        DataFusionError::ArrowError(arrow, _) => {
            matches!(arrow.as_ref(), ArrowError::ExternalError(_) | ArrowError::IoError(..))
                .then_some(ErrorKind::ClusterLost)
        }
        DataFusionError::ObjectStore(store) => match ErrorKind::of_object_store(store) {
            ErrorKind::Storage => Some(ErrorKind::Storage),
            _ => None,
        },
        DataFusionError::Context(_, inner) => transient_kind(inner),
        DataFusionError::Shared(inner) => transient_kind(inner),
        DataFusionError::Collection(errors) => errors.iter().find_map(transient_kind),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_jobs_and_cut_streams_are_cluster_failures() {
        let job = DataFusionError::Execution("Job abc failed: executor lost".into());
        assert_eq!(ErrorKind::of_datafusion(&job), ErrorKind::ClusterLost);
        let shared = DataFusionError::Shared(std::sync::Arc::new(job));
        assert_eq!(ErrorKind::of_datafusion(&shared), ErrorKind::ClusterLost);
        let cut_off = ArrowError::from_external_error(Box::new(std::io::Error::other("keep-alive timed out")));
        let cut_off = DataFusionError::ArrowError(Box::new(cut_off), None);
        assert_eq!(ErrorKind::of_datafusion(&cut_off), ErrorKind::ClusterLost);
    }

    #[test]
    fn plans_casts_missing_files_and_bad_input_are_final() {
        let plan = DataFusionError::Plan("no column x".into());
        assert_eq!(ErrorKind::of_datafusion(&plan), ErrorKind::Plan);
        let missing = object_store::Error::NotFound { path: "t".into(), source: "gone".into() };
        assert_eq!(ErrorKind::of_datafusion(&DataFusionError::ObjectStore(Box::new(missing))), ErrorKind::Plan);
        let cast = DataFusionError::ArrowError(Box::new(ArrowError::CastError("cannot cast".into())), None);
        assert_eq!(ErrorKind::of_datafusion(&cast), ErrorKind::Plan);
        // As Ballista returns them: the executor's error as text inside the job's.
        let bad = DataFusionError::Execution(format!("Job abc failed: Task 3 failed: {BAD_INPUT}x.csv: no header"));
        assert_eq!(ErrorKind::of_datafusion(&bad), ErrorKind::Input);
        let schema = DataFusionError::Execution("Job abc failed: Schema error: No field named x".into());
        assert_eq!(ErrorKind::of_datafusion(&schema), ErrorKind::Plan);
        assert!(!ErrorKind::Input.is_transient() && !ErrorKind::Conflict.is_transient());
    }
}
