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
//!
//! The other difference is how the executor gets its tasks. Ballista's
//! standalone executor pulls them: it asks the scheduler for work and, when
//! there is none, sleeps 50 ms (a constant), and it reports a finished task
//! only with its next request. Every job paid for that at its start, at each
//! stage boundary and at its end — most of a small job's time. Ours is
//! pushed its tasks, as our cluster's executors are (`--scheduling-policy
//! push`): the scheduler launches a task the moment its stage is runnable and
//! the executor reports each task as it finishes.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Context;
use ballista::prelude::SessionConfigExt;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::ExecutorRegistration;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::scheduler::{ExecutorOperatingSystemSpecification, ExecutorSpecification};
use ballista_executor::executor::Executor;
use ballista_executor::executor_process::ExecutorProcessConfig;
use ballista_executor::shutdown::ShutdownNotifier;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionConfig;

use crate::cluster;

/// The embedded cluster's parts that must live as long as its engine: while
/// the notifier lives, the executor's servers run; the work folder holds the
/// executor's shuffle files and goes with it.
pub struct EmbeddedCluster {
    _shutdown: ShutdownNotifier,
    _work_dir: tempfile::TempDir,
}

/// Starts the scheduler and an executor with `task_slots` slots; returns the
/// scheduler's URL for `SessionContext::remote_with_state`, and the cluster to keep.
pub async fn start(state: &SessionState, task_slots: usize) -> crate::Result<(String, EmbeddedCluster)> {
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
    let cluster =
        start_executor(scheduler, task_slots, state).await.context("starting the embedded Ballista executor")?;
    Ok((format!("df://localhost:{}", address.port()), cluster))
}

/// An executor that is pushed its tasks: its Flight service (shuffle and
/// results) and its gRPC service (task launches) on free loopback ports,
/// registered with the scheduler.
async fn start_executor(
    scheduler: SchedulerGrpcClient<tonic::transport::Channel>,
    task_slots: usize,
    state: &SessionState,
) -> crate::Result<EmbeddedCluster> {
    let flight = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let registration = ExecutorRegistration {
        id: ballista_core::ids::new_instance_id(),
        host: Some("127.0.0.1".to_string()),
        port: flight.local_addr()?.port() as u32,
        grpc_port: free_port()? as u32,
        specification: Some(ExecutorSpecification::default().with_vcores(task_slots as u32).into()),
        os_info: Some(ExecutorOperatingSystemSpecification::default().into()),
        ballista_protocol_version: ballista_core::BALLISTA_PROTOCOL_VERSION,
    };
    let work_dir = tempfile::Builder::new().prefix("funnelpulse-executor-").tempdir()?;
    let work_path = work_dir.path().to_str().context("the temporary folder's path is not UTF-8")?.to_string();
    let config = state.config().clone().upgrade_for_ballista();
    let max_message_size = config.ballista_grpc_client_max_message_size();
    let codec: BallistaCodec =
        BallistaCodec::new(config.ballista_logical_extension_codec(), config.ballista_physical_extension_codec());
    let runtime = state.runtime_env().clone();
    let executor = Arc::new(Executor::with_default_execution_engine(
        registration.clone(),
        &work_path,
        Arc::new(move |_| Ok(runtime.clone())),
        Arc::new(move || config.clone()),
        Arc::new(state.into()),
        Arc::new(ballista_executor::metrics::LoggingMetricsCollector::default()),
        task_slots,
    ));

    let flight_service = arrow_flight::flight_service_server::FlightServiceServer::new(
        ballista_executor::flight_service::BallistaFlightService::new(work_path),
    )
    .max_decoding_message_size(max_message_size)
    .max_encoding_message_size(max_message_size);
    tokio::spawn(
        ballista_core::utils::create_grpc_server(&ballista_core::utils::GrpcServerConfig::default())
            .add_service(flight_service)
            .serve_with_incoming(without_nagle(flight)),
    );

    let process = ExecutorProcessConfig {
        bind_host: "127.0.0.1".to_string(),
        grpc_port: registration.grpc_port as u16,
        port: registration.port as u16,
        vcores: task_slots,
        grpc_max_decoding_message_size: max_message_size as u32,
        grpc_max_encoding_message_size: max_message_size as u32,
        executor_heartbeat_interval_seconds: HEARTBEAT_SECS,
        ..Default::default()
    };
    let shutdown = ShutdownNotifier::new();
    // The scheduler's stop request (never sent to an embedded executor) goes nowhere.
    let (stop, _) = tokio::sync::mpsc::channel(1);
    ballista_executor::executor_server::startup(
        scheduler,
        Arc::new(process),
        executor,
        codec,
        stop,
        &shutdown,
        ballista_executor::health::ExecutorHealth::new(),
    )
    .await?;
    Ok(EmbeddedCluster { _shutdown: shutdown, _work_dir: work_dir })
}

/// Heartbeats of the embedded executor: a pushed executor's only sign of
/// life between tasks (the scheduler forgets one silent for its executor timeout).
const HEARTBEAT_SECS: u64 = 5;

/// A loopback port free now, for the executor's gRPC server (Ballista binds
/// it itself, from a port number).
fn free_port() -> crate::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
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
) -> crate::Result<std::net::SocketAddr> {
    use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
    use ballista_scheduler::{cluster::BallistaCluster, config::SchedulerConfig, scheduler_server::SchedulerServer};
    let message_size = config_producer().ballista_grpc_client_max_message_size();
    // Bound first: the scheduler gives its address to the executor, which
    // reports finished tasks there (a pushed executor calls back).
    let listener = tokio::net::TcpListener::bind("localhost:0").await?;
    let address = listener.local_addr()?;
    let endpoint = format!("localhost:{}", address.port());
    let cluster = BallistaCluster::new_memory(&endpoint, session_builder, config_producer);
    let config = SchedulerConfig::default()
        .with_scheduler_policy(ballista_core::config::TaskSchedulingPolicy::PushStaged)
        .with_finished_job_state_clean_up_interval_seconds(FINISHED_JOB_STATE_SECS)
        .with_finished_job_data_clean_up_interval_seconds(FINISHED_JOB_DATA_SECS);
    let mut server: SchedulerServer<
        datafusion_proto::protobuf::LogicalPlanNode,
        datafusion_proto::protobuf::PhysicalPlanNode,
    > = SchedulerServer::new(
        endpoint,
        cluster,
        codec,
        Arc::new(config),
        ballista_scheduler::metrics::default_metrics_collector()?,
    );
    server.init().await?;
    let grpc = SchedulerGrpcServer::new(server)
        .max_decoding_message_size(message_size)
        .max_encoding_message_size(message_size);
    tokio::spawn(
        ballista_core::utils::create_grpc_server(&ballista_core::utils::GrpcServerConfig::default())
            .add_service(grpc)
            .serve_with_incoming(without_nagle(listener)),
    );
    Ok(address)
}

/// Connections accepted from `listener` with Nagle's algorithm off, as
/// Ballista's own servers have them (`create_grpc_server_incoming`): tonic
/// ignores the builder's `tcp_nodelay` for a listener bound by us, and with
/// Nagle on, a small reply written while the previous one was not yet
/// acknowledged (a job's status stream, a result fetch) waited for the
/// peer's delayed ACK, 40 ms on Linux: a trivial job took 90 ms instead of 45.
fn without_nagle(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    let keepalive = ballista_core::utils::GrpcServerConfig::default().tcp_keepalive_seconds;
    tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(keepalive)))
}

/// The scheduler's gRPC client, once the scheduler (just spawned) listens.
async fn connect(url: &str) -> crate::Result<SchedulerGrpcClient<tonic::transport::Channel>> {
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
