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
    let address = start_scheduler(job_session, Arc::new(move || config.clone()), codec)
        .await
        .context("starting the embedded Ballista scheduler")?;
    let url = format!("http://localhost:{}", address.port());
    let scheduler = connect(&url).await?;
    ballista_executor::new_standalone_executor_from_state(scheduler, task_slots, state)
        .await
        .context("starting the embedded Ballista executor")?;
    Ok(format!("df://localhost:{}", address.port()))
}

/// How long a finished job's state and result files stay in the embedded
/// scheduler. Ballista's standalone scheduler keeps job state for an hour:
/// a stream running a few jobs per batch grew by ~0.8 MB per batch for it.
/// The client has fetched a job's result by the time it is cleaned up (it
/// reads the result as soon as the job completes).
const FINISHED_JOB_STATE_SECS: u64 = 30;
const FINISHED_JOB_DATA_SECS: u64 = 60;

/// Ballista's `new_standalone_scheduler_with_builder`, with finished jobs
/// forgotten after [`FINISHED_JOB_STATE_SECS`] instead of an hour.
async fn start_scheduler(
    session_builder: ballista_scheduler::scheduler_server::SessionBuilder,
    config_producer: ballista_core::ConfigProducer,
    codec: BallistaCodec,
) -> anyhow::Result<std::net::SocketAddr> {
    use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
    use ballista_scheduler::{cluster::BallistaCluster, config::SchedulerConfig, scheduler_server::SchedulerServer};
    let message_size = config_producer().ballista_grpc_client_max_message_size();
    let cluster = BallistaCluster::new_memory("localhost:50050", session_builder, config_producer);
    let config = SchedulerConfig::default()
        .with_scheduler_policy(ballista_core::config::TaskSchedulingPolicy::PullStaged)
        .with_finished_job_state_clean_up_interval_seconds(FINISHED_JOB_STATE_SECS)
        .with_finished_job_data_clean_up_interval_seconds(FINISHED_JOB_DATA_SECS);
    let mut server: SchedulerServer<
        datafusion_proto::protobuf::LogicalPlanNode,
        datafusion_proto::protobuf::PhysicalPlanNode,
    > = SchedulerServer::new(
        "localhost:50050".to_owned(),
        cluster,
        codec,
        Arc::new(config),
        ballista_scheduler::metrics::default_metrics_collector()?,
    );
    server.init().await?;
    let grpc = SchedulerGrpcServer::new(server)
        .max_decoding_message_size(message_size)
        .max_encoding_message_size(message_size);
    let listener = tokio::net::TcpListener::bind("localhost:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(
        ballista_core::utils::create_grpc_server(&ballista_core::utils::GrpcServerConfig::default())
            .add_service(grpc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    Ok(address)
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
