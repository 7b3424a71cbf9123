//! Watches this client's jobs on a remote scheduler and cancels those that
//! run over the job timeout.
//!
//! Ballista 55 can hang a job forever when an executor holding shuffle output
//! is lost. The client would wait with it, so every job we submit carries a
//! job name unique to this connection, and a background task reads the
//! scheduler's REST API (`GET /api/jobs`, same port as gRPC) and cancels our
//! jobs that run too long (`PATCH /api/job/{id}`). The stage then fails with
//! the job and is retried (see [`crate::attempts`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// One job as `GET /api/jobs` lists it (only the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct JobSummary {
    /// The scheduler's id of the job.
    pub job_id: String,
    /// The name the client gave the job; ours is unique to one connection.
    pub job_name: String,
    /// `Queued`, `Running`, `Completed`, `Failed` or `Invalid`.
    pub status: String,
}

impl JobSummary {
    /// Whether the job is still queued or running.
    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "Queued" | "Running")
    }
}

/// The scheduler's REST API.
#[derive(Clone)]
pub struct SchedulerApi {
    base: String,
    http: reqwest::Client,
}

impl SchedulerApi {
    /// `df://host:port` → `http://host:port/api`.
    pub fn for_scheduler(scheduler: &str) -> crate::Result<Self> {
        let url = url::Url::parse(scheduler)?;
        let host =
            url.host_str().ok_or_else(|| crate::Error::input(format!("scheduler URL {scheduler} has no host")))?;
        let port = url.port().unwrap_or(50050);
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        Ok(Self { base: format!("http://{host}:{port}/api"), http })
    }

    /// Every job the scheduler lists (`GET /api/jobs`).
    pub async fn jobs(&self) -> crate::Result<Vec<JobSummary>> {
        Ok(self.http.get(format!("{}/jobs", self.base)).send().await?.error_for_status()?.json().await?)
    }

    /// Number of executors the scheduler knows.
    pub async fn executor_count(&self) -> crate::Result<usize> {
        let executors: Vec<serde_json::Value> =
            self.http.get(format!("{}/executors", self.base)).send().await?.error_for_status()?.json().await?;
        Ok(executors.len())
    }

    /// Cancels a job (`PATCH /api/job/{id}`).
    pub async fn cancel(&self, job_id: &str) -> crate::Result<()> {
        self.http.patch(format!("{}/job/{job_id}", self.base)).send().await?.error_for_status()?;
        Ok(())
    }
}

/// The background task watching one connection's jobs; stops when dropped.
pub struct JobWatchdog {
    api: SchedulerApi,
    job_name: String,
    cancelled: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

const POLL: Duration = Duration::from_secs(1);

impl JobWatchdog {
    /// Starts watching the jobs named `job_name`: each one still queued or running `timeout` after the
    /// watchdog first saw it is cancelled.
    pub fn start(api: SchedulerApi, job_name: String, timeout: Duration) -> Self {
        let cancelled = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(watch(api.clone(), job_name.clone(), timeout, cancelled.clone()));
        Self { api, job_name, cancelled, task }
    }

    /// Jobs this watchdog cancelled for running over the timeout.
    pub fn cancelled(&self) -> Vec<String> {
        self.cancelled.lock().expect("watchdog lock").clone()
    }

    /// Cancels every job of this connection still queued or running (after
    /// a failed attempt, so that they do not compete with the retry).
    pub async fn cancel_active(&self) {
        let Ok(jobs) = self.api.jobs().await else { return };
        for job in jobs.iter().filter(|j| j.job_name == self.job_name && j.is_active()) {
            match self.api.cancel(&job.job_id).await {
                Ok(()) => log::info!("cancelled job {} left over from the failed attempt", job.job_id),
                Err(e) => log::warn!("could not cancel job {}: {e:#}", job.job_id),
            }
        }
    }
}

impl Drop for JobWatchdog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch(api: SchedulerApi, job_name: String, timeout: Duration, cancelled: Arc<Mutex<Vec<String>>>) {
    let mut first_seen: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::time::sleep(POLL).await;
        // A scheduler that does not answer is the client's problem to report.
        let Ok(jobs) = api.jobs().await else { continue };
        let now = Instant::now();
        for job in jobs.iter().filter(|j| j.job_name == job_name && j.is_active()) {
            let since = *first_seen.entry(job.job_id.clone()).or_insert(now);
            let already = cancelled.lock().expect("watchdog lock").contains(&job.job_id);
            if now - since > timeout && !already {
                log::warn!(
                    "job {} has been {} for over {} (the job timeout): cancelling it; an executor was probably lost",
                    job.job_id,
                    job.status.to_lowercase(),
                    humantime::format_duration(timeout)
                );
                if let Err(e) = api.cancel(&job.job_id).await {
                    log::warn!("could not cancel job {}: {e:#}", job.job_id);
                }
                cancelled.lock().expect("watchdog lock").push(job.job_id.clone());
            }
        }
        first_seen.retain(|id, _| jobs.iter().any(|j| &j.job_id == id && j.is_active()));
    }
}
