//! `funnelpulse-executor`: Ballista's executor with FunnelPulse's runtime
//! (object stores for local paths and gs://) and codecs.

use std::sync::Arc;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use funnelpulse_engine::cluster;

/// Command line of `funnelpulse-executor`.
#[derive(clap::Parser, Debug, Clone)]
#[command(about = "Ballista executor for FunnelPulse")]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "FUNNELPULSE_EXECUTOR_BIND_HOST", default_value = "0.0.0.0")]
    pub bind_host: String,
    /// Host name the scheduler and other executors use to reach this one.
    #[arg(long, env = "FUNNELPULSE_EXECUTOR_EXTERNAL_HOST")]
    pub external_host: Option<String>,
    /// Arrow Flight port (shuffle data).
    #[arg(long, env = "FUNNELPULSE_EXECUTOR_PORT", default_value_t = 50051)]
    pub port: u16,
    /// gRPC port.
    #[arg(long, env = "FUNNELPULSE_EXECUTOR_GRPC_PORT", default_value_t = 50052)]
    pub grpc_port: u16,
    /// Host name of the scheduler to register with.
    #[arg(long, env = "FUNNELPULSE_SCHEDULER_HOST", default_value = "localhost")]
    pub scheduler_host: String,
    /// gRPC port of the scheduler.
    #[arg(long, env = "FUNNELPULSE_SCHEDULER_PORT", default_value_t = 50050)]
    pub scheduler_port: u16,
    /// Task slots (default: one per core).
    #[arg(long, env = "FUNNELPULSE_EXECUTOR_SLOTS")]
    pub concurrent_tasks: Option<usize>,
    /// Folder for shuffle files.
    #[arg(long, env = "FUNNELPULSE_EXECUTOR_WORK_DIR")]
    pub work_dir: Option<String>,
    /// How this executor gets tasks: pull or push, as the scheduler's --scheduling-policy.
    #[arg(long, env = "FUNNELPULSE_SCHEDULING_POLICY", value_enum, default_value_t)]
    pub scheduling_policy: cluster::SchedulingPolicy,
    /// Seconds between heartbeats to the scheduler (the scheduler declares an
    /// executor lost after --executor-timeout-seconds without one).
    #[arg(long, env = "FUNNELPULSE_EXECUTOR_HEARTBEAT_SECONDS", default_value_t = 5)]
    pub heartbeat_interval_seconds: u64,
}

/// Runs the process until it is stopped.
pub async fn serve(args: Args) -> anyhow::Result<()> {
    ports_free(&args.bind_host, &[(args.port, "--port"), (args.grpc_port, "--grpc-port")])?;
    let mut config = ExecutorProcessConfig {
        bind_host: args.bind_host,
        external_host: args.external_host,
        port: args.port,
        grpc_port: args.grpc_port,
        scheduler_host: args.scheduler_host,
        scheduler_port: args.scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        work_dir: args.work_dir,
        executor_heartbeat_interval_seconds: args.heartbeat_interval_seconds,
        task_scheduling_policy: args.scheduling_policy.into(),
        override_config_producer: Some(Arc::new(cluster::session_config)),
        override_runtime_producer: Some(Arc::new(cluster::runtime_env)),
        override_logical_codec: Some(cluster::logical_codec()),
        override_physical_codec: Some(cluster::physical_codec()),
        ..Default::default()
    };
    if let Some(slots) = args.concurrent_tasks {
        config.vcores = slots;
    }
    start_executor_process(Arc::new(config)).await?;
    Ok(())
}

/// Ballista's executor stops with success when one of its services cannot
/// bind its port, so a taken port is checked (and named) before it starts.
fn ports_free(host: &str, ports: &[(u16, &str)]) -> anyhow::Result<()> {
    for (port, flag) in ports {
        if let Err(error) = std::net::TcpListener::bind((host, *port)) {
            anyhow::bail!("port {port} ({flag}) on {host} cannot be used: {error}");
        }
    }
    Ok(())
}
