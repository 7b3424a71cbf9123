//! The client side: one `Engine` per command, embedded or remote.

use std::fmt;

use crate::error::Context;
use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::prelude::SessionContext;

use crate::args::ClusterArgs;
use crate::cluster;
use crate::watchdog::{JobWatchdog, SchedulerApi};

/// Where plans run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineMode {
    /// Ballista standalone: scheduler and executor inside this process.
    Embedded {
        /// Task slots of the embedded executor and target partitions (default: one per core).
        parallelism: usize,
    },
    /// A remote scheduler, `df://host:port`.
    Remote {
        /// The scheduler's URL as given (`df://HOST:PORT`).
        scheduler: String,
    },
}

impl fmt::Display for EngineMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineMode::Embedded { parallelism } => write!(f, "embedded Ballista ({parallelism} task slots)"),
            EngineMode::Remote { scheduler } => write!(f, "Ballista scheduler {scheduler}"),
        }
    }
}

impl EngineMode {
    /// `--scheduler` given → remote; otherwise embedded with one slot per core.
    pub fn from_scheduler(scheduler: Option<&str>) -> crate::Result<Self> {
        match scheduler {
            Some(url) => {
                funnelpulse_core::redact::register_url(url);
                let parsed = url::Url::parse(url)
                    .with_context(|| format!("scheduler: {url:?} is not a URL like df://HOST:50050"))?;
                crate::ensure!(
                    parsed.scheme() == "df" && parsed.host_str().is_some(),
                    "scheduler: {url:?} must look like df://HOST:PORT"
                );
                Ok(Self::Remote { scheduler: url.to_string() })
            }
            None => {
                Ok(Self::Embedded { parallelism: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) })
            }
        }
    }
}

/// A connected Ballista session.
pub struct Engine {
    /// The Ballista session that plans are submitted through.
    pub ctx: SessionContext,
    /// Where this session's plans run.
    pub mode: EngineMode,
    /// On a remote cluster: cancels this session's jobs that run too long.
    pub watchdog: Option<JobWatchdog>,
    /// Embedded: the in-process cluster, which stops with the engine.
    _embedded: Option<crate::embedded::EmbeddedCluster>,
}

impl Engine {
    /// How many slices a table of events (silver) is written in, one
    /// single-task Ballista job each. Embedded: four per task slot, so that
    /// the hash tables and Parquet buffers of the slices running at once stay
    /// small (at the default size, two slices per slot raised stage 01's
    /// peak from 1.6 to 2.1 GB), and a slot is never idle while a job plans.
    pub fn slice_count(&self) -> usize {
        match &self.mode {
            EngineMode::Embedded { parallelism } => parallelism * 4,
            EngineMode::Remote { .. } => 16,
        }
    }

    /// How many slices an aggregated table (gold) is written in: its jobs
    /// need little memory, so embedded one per task slot (fewer jobs, less
    /// fixed cost per job).
    pub fn aggregate_slice_count(&self) -> usize {
        match &self.mode {
            EngineMode::Embedded { parallelism } => *parallelism,
            EngineMode::Remote { .. } => 16,
        }
    }

    /// Connects with the default cluster options.
    pub async fn connect(mode: EngineMode) -> crate::Result<Self> {
        Self::connect_with(mode, &ClusterArgs::default()).await
    }

    /// Connects with the given cluster options: starts embedded Ballista in this process, or checks that the
    /// remote scheduler answers and starts the job watchdog.
    pub async fn connect_with(mode: EngineMode, options: &ClusterArgs) -> crate::Result<Self> {
        let partitions = match &mode {
            EngineMode::Embedded { parallelism } => *parallelism,
            EngineMode::Remote { .. } => 8,
        };
        // A name unique to this connection marks our jobs for the watchdog.
        let job_name = format!("funnelpulse-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let config = cluster::with_client_fetch_timeouts(cluster::session_config(), options.fetch_timeout)
            .with_target_partitions(partitions)
            .with_ballista_standalone_parallelism(partitions)
            .with_ballista_job_name(&job_name);
        let state = cluster::session_state(config)?;
        let (ctx, embedded) = match &mode {
            EngineMode::Embedded { parallelism } => {
                let (scheduler, cluster) = crate::embedded::start(&state, *parallelism).await?;
                let ctx = SessionContext::remote_with_state(&scheduler, state)
                    .await
                    .context("connecting to the embedded Ballista scheduler")?;
                (ctx, Some(cluster))
            }
            EngineMode::Remote { scheduler } => {
                first_contact(scheduler).await?;
                let ctx = SessionContext::remote_with_state(scheduler, state)
                    .await
                    .with_context(|| format!("connecting to the Ballista scheduler at {scheduler}"))?;
                (ctx, None)
            }
        };
        let watchdog = match &mode {
            EngineMode::Embedded { .. } => None,
            EngineMode::Remote { scheduler } => {
                Some(JobWatchdog::start(SchedulerApi::for_scheduler(scheduler)?, job_name, options.job_timeout))
            }
        };
        Ok(Self { ctx, mode, watchdog, _embedded: embedded })
    }
}

/// Fails at once, with what to do, when the scheduler does not answer at all:
/// waiting (`--cluster-wait`) is for a cluster that answered and went away.
async fn first_contact(scheduler: &str) -> crate::Result<()> {
    let api = SchedulerApi::for_scheduler(scheduler)?;
    if let Err(error) = api.executor_count().await {
        let reason = funnelpulse_core::error::root_text(&error);
        crate::bail!(
            "the Ballista scheduler at {scheduler} does not answer ({reason}); start the cluster \
             (deploy/up.sh, or funnelpulse-scheduler and funnelpulse-executor) or fix --scheduler"
        );
    }
    Ok(())
}
