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
    pub async fn connect(common: &CommonArgs) -> crate::Result<Self> {
        let mode = common.engine_mode()?;
        let engine = Engine::connect_with(mode.clone(), &common.cluster).await?;
        Ok(Self { mode, options: common.cluster.clone(), engine })
    }

    /// The current connection (a new one after each failed attempt).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Opens the lake through this engine's object stores (local paths, gs://).
    pub fn open_lake(&self, url: &str) -> crate::Result<funnelpulse_lake::Lake> {
        Ok(funnelpulse_lake::Lake::open(url, self.engine.ctx.runtime_env().object_store_registry.as_ref())?)
    }

    /// Runs `attempt` (one whole stage: stage, check, commit) until it
    /// succeeds, fails for a reason a retry cannot fix, or runs out of retries.
    /// The embedded engine loses no executors: there, a failure is final.
    pub async fn run<T>(
        &mut self,
        stage: &str,
        mut attempt: impl AsyncFnMut(&Engine) -> crate::Result<T>,
    ) -> crate::Result<T> {
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
    async fn reconnect(&mut self, stage: &str) -> crate::Result<()> {
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
async fn wait_for_cluster(api: &SchedulerApi, scheduler: &str, limit: Duration) -> crate::Result<()> {
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
            return Err(crate::Error::ClusterLost(format!(
                "the scheduler {scheduler} {state} after {} (--cluster-wait); giving up",
                humantime::format_duration(limit)
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether a retry on the cluster may succeed: cluster failures, storage
/// hiccups and failed invariants — not bad input, plan errors or another
/// writer's commit, which would fail the same way again.
pub fn is_cluster_failure(error: &crate::Error) -> bool {
    error.kind().is_transient()
}
