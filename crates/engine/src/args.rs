//! Arguments every stage takes: where the lake is, where plans run, and how
//! a stage survives a cluster that loses executors or its scheduler.

use std::time::Duration;

use crate::session::EngineMode;

#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Lake root: a local folder or gs://bucket/prefix.
    #[arg(long, env = "FUNNELPULSE_LAKE", default_value = "lake")]
    pub lake: String,
    /// Ballista scheduler to submit to (df://HOST:PORT); embedded Ballista when absent.
    #[arg(long, env = "FUNNELPULSE_SCHEDULER")]
    pub scheduler: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// How a stage on a remote cluster copes with lost executors and a
/// restarted scheduler (no effect on the embedded engine).
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Longest one cluster job may run or wait: a job over it is cancelled
    /// (PATCH /api/job/{id}; a lost executor can hang a job) and its stage retried.
    #[arg(long, env = "FUNNELPULSE_JOB_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    pub job_timeout: Duration,
    /// Retries of a stage after a cluster failure: a failed or timed-out job,
    /// a lost scheduler, or a failed reconciliation check.
    #[arg(long, env = "FUNNELPULSE_STAGE_RETRIES", default_value_t = 2)]
    pub stage_retries: u32,
    /// How long to wait, before a retry, for the scheduler to answer with at
    /// least one registered executor.
    #[arg(long, env = "FUNNELPULSE_CLUSTER_WAIT", default_value = "3m", value_parser = humantime::parse_duration)]
    pub cluster_wait: Duration,
    /// Longest the client waits on a silent executor while fetching a job's
    /// result (no answer to a request or to HTTP/2 pings): the fetch then
    /// fails, the job counts as failed and the stage is retried (at least 1s).
    #[arg(long, env = "FUNNELPULSE_FETCH_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub fetch_timeout: Duration,
}

impl Default for ClusterArgs {
    fn default() -> Self {
        Self {
            job_timeout: Duration::from_secs(30 * 60),
            stage_retries: 2,
            cluster_wait: Duration::from_secs(180),
            fetch_timeout: Duration::from_secs(30),
        }
    }
}

impl CommonArgs {
    pub fn engine_mode(&self) -> anyhow::Result<EngineMode> {
        EngineMode::from_scheduler(self.scheduler.as_deref())
    }
}
