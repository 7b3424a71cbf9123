//! `funnelpulse-scheduler`: Ballista's scheduler with FunnelPulse's session
//! (object stores for local paths and gs://, the raw-CSV codecs).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use funnelpulse_engine::cluster;

/// Command line of `funnelpulse-scheduler`.
#[derive(clap::Parser, Debug, Clone)]
#[command(about = "Ballista scheduler for FunnelPulse")]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "FUNNELPULSE_SCHEDULER_BIND_HOST", default_value = "0.0.0.0")]
    pub bind_host: String,
    /// gRPC (and REST) port.
    #[arg(long, env = "FUNNELPULSE_SCHEDULER_PORT", default_value_t = 50050)]
    pub port: u16,
    /// Host name executors and clients use to reach this scheduler.
    #[arg(long, env = "FUNNELPULSE_SCHEDULER_EXTERNAL_HOST", default_value = "localhost")]
    pub external_host: String,
    /// Seconds without a heartbeat before an executor is considered lost and
    /// its tasks are run elsewhere (six heartbeats of our executors' 5 s:
    /// a spot VM that is reclaimed is noticed within half a minute).
    #[arg(long, env = "FUNNELPULSE_EXECUTOR_TIMEOUT_SECONDS", default_value_t = 30)]
    pub executor_timeout_seconds: u64,
    /// How executors get tasks: pull (they ask, with their own free slots) or
    /// push (the scheduler assigns); executors must use the same.
    #[arg(long, env = "FUNNELPULSE_SCHEDULING_POLICY", value_enum, default_value_t)]
    pub scheduling_policy: cluster::SchedulingPolicy,
    /// Seconds a finished job stays listed (REST API, job watchdog) before the
    /// scheduler forgets it. Ballista's default, an hour, grows the scheduler's
    /// memory with every job of a long-running stream.
    #[arg(long, env = "FUNNELPULSE_FINISHED_JOB_RETENTION_SECONDS", default_value_t = 600)]
    pub finished_job_retention_seconds: u64,
    /// Route query results through the scheduler's port (for clients behind a tunnel).
    #[arg(long)]
    pub enable_embedded_flight_proxy: bool,
}

/// Runs the process until it is stopped.
pub async fn serve(args: Args) -> anyhow::Result<()> {
    let config = SchedulerConfig {
        bind_host: args.bind_host.clone(),
        bind_port: args.port,
        external_host: args.external_host,
        executor_timeout_seconds: args.executor_timeout_seconds,
        enable_embedded_flight_proxy: args.enable_embedded_flight_proxy,
        scheduling_policy: args.scheduling_policy.into(),
        finished_job_state_clean_up_interval_seconds: args.finished_job_retention_seconds,
        override_config_producer: Some(Arc::new(cluster::session_config)),
        override_session_builder: Some(Arc::new(cluster::session_state)),
        override_logical_codec: Some(cluster::logical_codec()),
        override_physical_codec: Some(cluster::physical_codec()),
        ..Default::default()
    };
    let address: SocketAddr = format!("{}:{}", args.bind_host, args.port)
        .parse()
        .with_context(|| format!("bad listen address {}:{}", args.bind_host, args.port))?;
    let cluster = BallistaCluster::new_from_config(&config).await?;
    config.validate()?;
    let listener = listen_without_nagle(address).with_context(|| format!("listening on {address}"))?;
    let scheduler = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config)).await?;
    start_grpc_service_with_listener(listener, scheduler).await?;
    Ok(())
}

/// The scheduler's listening socket, with Nagle's algorithm off: Linux gives
/// the accepted connections the listener's setting, and Ballista serves them
/// with axum, which leaves Nagle on. With it on, a small reply written before
/// the previous one was acknowledged (a job's status stream, a task's launch)
/// waited for the peer's 40 ms delayed ACK: a trivial job took 44 ms on a
/// local cluster instead of a few.
fn listen_without_nagle(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}
