//! Running a stage on a cluster that may lose executors or its scheduler.
//!
//! Ballista 55 loses jobs in three ways we have measured: an executor killed
//! while its shuffle output is needed hangs the job (adaptive planning on) or
//! makes it return duplicated rows (off); a restarted scheduler forgets every
//! job. Our defence, in layers:
//! - every job is bounded: the [`crate::watchdog`] cancels jobs over `--job-timeout`;
//! - every stage checks its reconciliation invariants before it commits
//!   ([`crate::check`]), so duplicated rows fail the stage instead of landing;
//! - a stage's tables are staged and committed at once, so a failed attempt
//!   leaves the previous version in place, and the stage can simply run again:
//!   [`StageRunner::run`] retries it on a fresh connection, after cancelling
//!   the failed attempt's jobs and waiting for the scheduler and an executor.

use std::fmt;
use std::time::{Duration, Instant};

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

use crate::args::{ClusterArgs, CommonArgs};
use crate::session::{Engine, EngineMode};
use crate::watchdog::SchedulerApi;

/// A reconciliation invariant that did not hold: the stage's tables are wrong
/// (on a cluster, typically rows duplicated after a lost executor).
#[derive(Debug, Clone)]
pub struct InvariantViolation {
    /// The invariant as the stage's check names it.
    pub name: String,
    /// What broke it, typically the two values compared (`1 vs 2`).
    pub detail: String,
}

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant failed: {} ({}); no table was replaced", self.name, self.detail)
    }
}

impl std::error::Error for InvariantViolation {}

/// Runs stages on one engine, retrying a stage that failed on the cluster.
pub struct StageRunner {
    mode: EngineMode,
    options: ClusterArgs,
    engine: Engine,
}

impl StageRunner {
    /// Connects to the engine `common` names (embedded, or `--scheduler`).
    pub async fn connect(common: &CommonArgs) -> anyhow::Result<Self> {
        let mode = common.engine_mode()?;
        let engine = Engine::connect_with(mode.clone(), &common.cluster).await?;
        Ok(Self { mode, options: common.cluster.clone(), engine })
    }

    /// The current connection (a new one after each failed attempt).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Opens the lake through this engine's object stores (local paths, gs://).
    pub fn open_lake(&self, url: &str) -> anyhow::Result<funnelpulse_lake::Lake> {
        funnelpulse_lake::Lake::open(url, self.engine.ctx.runtime_env().object_store_registry.as_ref())
    }

    /// Runs `attempt` (one whole stage: stage, check, commit) until it
    /// succeeds, fails for a reason a retry cannot fix, or runs out of retries.
    /// The embedded engine loses no executors: there, a failure is final.
    pub async fn run<T>(
        &mut self,
        stage: &str,
        mut attempt: impl AsyncFnMut(&Engine) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let retries = match self.mode {
            EngineMode::Embedded { .. } => 0,
            EngineMode::Remote { .. } => self.options.stage_retries,
        };
        let attempts = retries + 1;
        for number in 1..=attempts {
            let error = match attempt(&self.engine).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if number == attempts || !is_cluster_failure(&error) {
                // Input, plan and setting errors fail at once, without waits.
                return Err(if number > 1 {
                    error.context(format!("stage {stage} failed {number} times"))
                } else {
                    error
                });
            }
            log::warn!(
                "[{stage}] attempt {number} of {attempts} failed on the cluster: {error:#}{}",
                self.timed_out_note()
            );
            self.reconnect(stage).await?;
            log::info!("[{stage}] retrying (attempt {} of {attempts})", number + 1);
        }
        unreachable!("the last attempt returns")
    }

    fn timed_out_note(&self) -> String {
        let cancelled = self.engine.watchdog.as_ref().map(|w| w.cancelled()).unwrap_or_default();
        if cancelled.is_empty() {
            String::new()
        } else {
            format!(" (jobs cancelled by the job timeout: {})", cancelled.join(", "))
        }
    }

    /// Cancels what is left of the failed attempt, waits for the cluster, and
    /// opens a fresh connection (a restarted scheduler knows no old session).
    async fn reconnect(&mut self, stage: &str) -> anyhow::Result<()> {
        if let Some(watchdog) = &self.engine.watchdog {
            watchdog.cancel_active().await;
        }
        if let EngineMode::Remote { scheduler } = &self.mode {
            log::info!("[{stage}] waiting for the scheduler {scheduler} and an executor");
            wait_for_cluster(&SchedulerApi::for_scheduler(scheduler)?, scheduler, self.options.cluster_wait).await?;
        }
        self.engine = Engine::connect_with(self.mode.clone(), &self.options).await?;
        Ok(())
    }
}

/// Waits until the scheduler answers and knows at least one executor.
async fn wait_for_cluster(api: &SchedulerApi, scheduler: &str, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let answer = api.executor_count().await;
        if matches!(answer, Ok(n) if n > 0) {
            return Ok(());
        }
        if started.elapsed() > limit {
            let state = match answer {
                Ok(_) => "answers but has no executor".to_string(),
                Err(e) => format!("does not answer ({e:#})"),
            };
            anyhow::bail!(
                "the scheduler {scheduler} {state} after {} (--cluster-wait); giving up",
                humantime::format_duration(limit)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Why a stage failed, which decides whether running it again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The input is bad (a raw file's header, a corrupt compressed file):
    /// the same error again, on any cluster.
    Input,
    /// A plan, schema, setting or lake-state error: deterministic too.
    Plan,
    /// A reconciliation invariant failed. On a Ballista cluster this is the
    /// known symptom of a lost executor (its shuffle output read twice), so
    /// it is retried there like a cluster failure; embedded it is final.
    Invariant,
    /// Lost executors or connections, cancelled or timed-out jobs, storage
    /// hiccups: a fresh attempt may succeed.
    Cluster,
}

/// Messages of deterministic failures as they come back from a Ballista job,
/// where the executor's typed error has become text.
const DETERMINISTIC_MARKERS: [&str; 7] = [
    funnelpulse_core::BAD_INPUT,
    "Error during planning",
    "Schema error",
    "Cast error",
    "Invalid argument error",
    "SQL error",
    "This feature is not implemented",
];

/// Sorts a stage's error into a [`Cause`].
pub fn cause_of(error: &anyhow::Error) -> Cause {
    let text = format!("{error:#}");
    if text.contains(funnelpulse_core::BAD_INPUT) {
        return Cause::Input;
    }
    if error.chain().any(|cause| cause.is::<InvariantViolation>()) {
        return Cause::Invariant;
    }
    let transient = error.chain().any(|cause| {
        if let Some(df) = cause.downcast_ref::<DataFusionError>() {
            return is_transient(df);
        }
        if let Some(store) = cause.downcast_ref::<object_store::Error>() {
            return !matches!(store, object_store::Error::NotFound { .. });
        }
        cause.is::<std::io::Error>()
    });
    if transient && !DETERMINISTIC_MARKERS.iter().any(|m| text.contains(m)) { Cause::Cluster } else { Cause::Plan }
}

/// Whether a retry on the cluster may succeed: cluster failures and failed
/// invariants — not bad input, plan or schema errors, which would fail the
/// same way again.
pub fn is_cluster_failure(error: &anyhow::Error) -> bool {
    matches!(cause_of(error), Cause::Cluster | Cause::Invariant)
}

fn is_transient(error: &DataFusionError) -> bool {
    match error {
        // Ballista reports failed jobs, lost connections and cancellations as execution errors.
        DataFusionError::Execution(_)
        | DataFusionError::ExecutionJoin(_)
        | DataFusionError::External(_)
        | DataFusionError::IoError(_)
        | DataFusionError::ResourcesExhausted(_) => true,
        // A result stream cut off mid-way (the executor stopped answering).
        DataFusionError::ArrowError(arrow, _) => {
            matches!(arrow.as_ref(), ArrowError::ExternalError(_) | ArrowError::IoError(..))
        }
        DataFusionError::ObjectStore(store) => !matches!(store.as_ref(), object_store::Error::NotFound { .. }),
        DataFusionError::Context(_, inner) => is_transient(inner),
        DataFusionError::Shared(inner) => is_transient(inner),
        DataFusionError::Collection(errors) => errors.iter().any(is_transient),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_failures_and_broken_invariants_are_retried() {
        let job = anyhow::Error::new(DataFusionError::Execution("Job abc failed: executor lost".into()));
        assert!(is_cluster_failure(&job.context("writing silver_events")));
        let invariant: anyhow::Error = InvariantViolation { name: "x".into(), detail: "1 vs 2".into() }.into();
        assert!(is_cluster_failure(&invariant));
        let shared = DataFusionError::Shared(std::sync::Arc::new(DataFusionError::Execution("lost".into())));
        assert!(is_cluster_failure(&anyhow::Error::new(shared)));
        let cut_off = ArrowError::from_external_error(Box::new(std::io::Error::other("keep-alive timed out")));
        assert!(is_cluster_failure(&anyhow::Error::new(DataFusionError::ArrowError(Box::new(cut_off), None))));
    }

    #[test]
    fn plan_errors_and_missing_tables_are_final() {
        let plan = anyhow::Error::new(DataFusionError::Plan("no column x".into()));
        assert!(!is_cluster_failure(&plan));
        let missing = object_store::Error::NotFound { path: "t".into(), source: "gone".into() };
        assert!(!is_cluster_failure(&anyhow::Error::new(DataFusionError::ObjectStore(Box::new(missing)))));
        assert!(!is_cluster_failure(&anyhow::anyhow!("--z-threshold must be positive")));
        let cast = ArrowError::CastError("cannot cast".into());
        assert!(!is_cluster_failure(&anyhow::Error::new(DataFusionError::ArrowError(Box::new(cast), None))));
    }

    #[test]
    fn bad_input_from_an_executor_is_not_retried() {
        // As Ballista returns it: the executor's error as text inside the job's.
        let job = DataFusionError::Execution(format!(
            "Job abc failed: Task 3 failed: Execution error: {}file:///raw/x.csv: the header lacks column(s) price",
            funnelpulse_core::BAD_INPUT
        ));
        let error = anyhow::Error::new(job).context("writing bronze_events");
        assert_eq!(cause_of(&error), Cause::Input);
        assert!(!is_cluster_failure(&error));
        let schema = DataFusionError::Execution("Job abc failed: Schema error: No field named x".into());
        assert_eq!(cause_of(&anyhow::Error::new(schema)), Cause::Plan);
        let lost = DataFusionError::Execution("Job abc failed: executor lost".into());
        assert_eq!(cause_of(&anyhow::Error::new(lost)), Cause::Cluster);
        let invariant: anyhow::Error = InvariantViolation { name: "x".into(), detail: "1 vs 2".into() }.into();
        assert_eq!(cause_of(&invariant), Cause::Invariant);
    }
}
