//! The embedded cluster: Ballista's scheduler and one executor inside this
//! process, as Ballista standalone starts them, with one difference: the
//! scheduler plans each job with the settings the job was submitted with.
//!
//! Ballista's `standalone_with_state` gives the scheduler a session builder
//! that returns the client's session as it was at start-up, so settings sent
//! with a job (e.g. a plan run as one task, see `tables::as_one_task`) are
//! ignored in embedded mode while a remote scheduler (ours) honours them.
//! Here the scheduler builds each job's session from the job's settings, on
//! the client's runtime (the same object stores), as our scheduler binary does.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ballista::prelude::SessionConfigExt;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionConfig;

use crate::cluster;

/// Starts the scheduler and an executor with `task_slots` slots; returns the
/// scheduler's URL for `SessionContext::remote_with_state`.
pub async fn start(state: &SessionState, task_slots: usize) -> anyhow::Result<String> {
    let config = state.config().clone();
    let codec =
        BallistaCodec::new(config.ballista_logical_extension_codec(), config.ballista_physical_extension_codec());
    let runtime = state.runtime_env().clone();
    let job_session = Arc::new(move |job_config: SessionConfig| cluster::session_state_on(job_config, runtime.clone()));
    let address = ballista_scheduler::standalone::new_standalone_scheduler_with_builder(
        job_session,
        Arc::new(move || config.clone()),
        codec,
    )
    .await
    .context("starting the embedded Ballista scheduler")?;
    let url = format!("http://localhost:{}", address.port());
    let scheduler = connect(&url).await?;
    ballista_executor::new_standalone_executor_from_state(scheduler, task_slots, state)
        .await
        .context("starting the embedded Ballista executor")?;
    Ok(format!("df://localhost:{}", address.port()))
}

/// The scheduler's gRPC client, once the scheduler (just spawned) listens.
async fn connect(url: &str) -> anyhow::Result<SchedulerGrpcClient<tonic::transport::Channel>> {
    let mut attempts = 0;
    loop {
        match SchedulerGrpcClient::connect(url.to_string()).await {
            Ok(client) => return Ok(client),
            Err(e) if attempts >= 100 => return Err(e).context("the embedded Ballista scheduler did not start"),
            Err(_) => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
