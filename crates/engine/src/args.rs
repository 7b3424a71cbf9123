//! Arguments every stage takes: where the lake is, where plans run, and how
//! a stage survives a cluster that loses executors or its scheduler.

use std::time::Duration;

use crate::session::EngineMode;

/// Arguments of every command that runs plans: the lake, the engine and the cluster options.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Lake root: a local folder or gs://bucket/prefix.
    #[arg(long, env = "FUNNELPULSE_LAKE", default_value = "lake")]
    pub lake: String,
    /// Ballista scheduler to submit to (df://HOST:PORT); embedded Ballista when absent.
    #[arg(long, env = "FUNNELPULSE_SCHEDULER", value_parser = parse_scheduler)]
    pub scheduler: Option<String>,
    /// How a stage copes with a cluster that loses executors or its scheduler.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `--scheduler`: checked while parsing, so that an invalid value names its source.
fn parse_scheduler(text: &str) -> Result<String, String> {
    EngineMode::from_scheduler(Some(text))
        .map(|_| text.to_string())
        .map_err(|_| "must look like df://HOST:PORT (a Ballista scheduler, e.g. df://10.0.0.2:50050)".to_string())
}

/// Every duration flag (`--job-timeout 30m`, `--watermark 2h`, `--trigger-interval 500ms`):
/// one parser, so that every invalid value gets the same examples.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 2h, 90s, 500ms)"))
}

/// How a stage on a remote cluster copes with lost executors and a
/// restarted scheduler (no effect on the embedded engine).
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Longest one cluster job may run or wait: a job over it is cancelled
    /// (PATCH /api/job/{id}; a lost executor can hang a job) and its stage retried.
    #[arg(long, env = "FUNNELPULSE_JOB_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    pub job_timeout: Duration,
    /// Retries of a stage after a cluster failure: a failed or timed-out job,
    /// a lost scheduler, or a failed reconciliation check.
    #[arg(long, env = "FUNNELPULSE_STAGE_RETRIES", default_value_t = 2)]
    pub stage_retries: u32,
    /// How long to wait, before a retry, for the scheduler to answer with at
    /// least one registered executor.
    #[arg(long, env = "FUNNELPULSE_CLUSTER_WAIT", default_value = "3m", value_parser = parse_duration)]
    pub cluster_wait: Duration,
    /// Longest the client waits on a silent executor while fetching a job's
    /// result (no answer to a request or to HTTP/2 pings): the fetch then
    /// fails, the job counts as failed and the stage is retried (at least 1s).
    #[arg(long, env = "FUNNELPULSE_FETCH_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
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

// Semantics: docs/semantics.md#events-from-the-future
/// The clock that tells events from the future (an event later than the
/// wall clock plus the skew cannot have happened yet). A replay of old data
/// has every event in the past, as it should; only the impossible ones are
/// from the future.
#[derive(clap::Args, Debug, Clone)]
pub struct ClockArgs {
    /// Events later than the wall clock plus this are from the future (a
    /// broken device clock): stage 04 keeps them out of its watermark and
    /// windows (in future_events), stage 01 counts them.
    #[arg(long, env = "FUNNELPULSE_MAX_CLOCK_SKEW", default_value = "1h", value_parser = parse_duration)]
    pub max_clock_skew: Duration,
}

impl Default for ClockArgs {
    fn default() -> Self {
        Self { max_clock_skew: Duration::from_secs(3600) }
    }
}

impl ClockArgs {
    /// The latest event time that can be real now (µs since the epoch, UTC).
    pub fn cutoff_now(&self) -> i64 {
        let later = chrono::Duration::from_std(self.max_clock_skew).ok().and_then(|skew| {
            chrono::Utc::now().checked_add_signed(skew) // None: beyond chrono's range, nothing is from the future
        });
        later.map_or(i64::MAX, |t| t.timestamp_micros())
    }

    /// The skew for people (`1h`).
    pub fn skew_text(&self) -> String {
        humantime::format_duration(self.max_clock_skew).to_string()
    }
}

/// `--as-of`: which version of the tables a reading command reads.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AsOfArgs {
    /// Read the tables as they were: a version number (of the one table the
    /// command reads) or a time (RFC 3339, e.g. 2026-12-03T10:00:00Z: each
    /// table's version current then). Default: the latest versions.
    #[arg(long, env = "FUNNELPULSE_AS_OF")]
    pub as_of: Option<funnelpulse_lake::AsOf>,
}

impl AsOfArgs {
    /// The version to read, for a command that reads several tables: a
    /// version number is ambiguous there, so only a time is accepted.
    pub fn for_several_tables(&self, command: &str) -> crate::Result<funnelpulse_lake::AsOf> {
        match &self.as_of {
            None => Ok(funnelpulse_lake::AsOf::Latest),
            Some(funnelpulse_lake::AsOf::Version(v)) => crate::bail!(
                "--as-of {v}: {command} reads several tables, whose version numbers differ; give a time instead \
                 (--as-of 2026-12-03T10:00:00Z)"
            ),
            Some(other) => Ok(other.clone()),
        }
    }

    /// The version to read for a command that reads one table: the latest when `--as-of` is absent.
    pub fn or_latest(&self) -> funnelpulse_lake::AsOf {
        self.as_of.clone().unwrap_or_default()
    }
}

impl CommonArgs {
    /// Where plans run: the `--scheduler` given, else embedded Ballista in this process.
    pub fn engine_mode(&self) -> crate::Result<EngineMode> {
        EngineMode::from_scheduler(self.scheduler.as_deref())
    }
}
