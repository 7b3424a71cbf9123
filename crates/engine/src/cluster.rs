//! The pieces every Ballista process of FunnelPulse shares: the session
//! config with our codecs, and a runtime whose object-store registry serves
//! local paths and `gs://`.

use std::sync::Arc;
use std::time::Duration;

use crate::codec::{FunnelPulseLogicalCodec, FunnelPulsePhysicalCodec};
use ballista::prelude::SessionConfigExt;
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;
use funnelpulse_lake::LakeStores;
use tonic::transport::Endpoint;

/// Ballista session config with the FunnelPulse codecs registered.
pub fn session_config() -> SessionConfig {
    let config = SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(Arc::new(FunnelPulseLogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(FunnelPulsePhysicalCodec::default()));
    with_fast_peer_loss_detection(config)
}

/// Rows of a Parquet row group. A write task keeps an open writer per
/// partition value (a bronze job: one per day of its raw file), and each
/// writer holds its row group in memory until it is full: with DataFusion's
/// 1,048,576 rows, a whole day at 4x the default data (570k rows), so
/// stage 01's peak grew with the data (1.48 GB at 1x, 2.23 GB at 4x).
const ROW_GROUP_ROWS: usize = 131_072;

/// The Parquet settings of our table writes, given with each write: the
/// session's `execution.parquet` settings did not reach the writer of a
/// Ballista job (files came out with DataFusion's default row groups).
pub fn parquet_writer_options() -> datafusion::config::TableParquetOptions {
    let mut options = datafusion::config::TableParquetOptions::default();
    options.global.max_row_group_size = ROW_GROUP_ROWS;
    options
}

/// gRPC settings of the shuffle reads between executors (they travel with
/// each job). Ballista's defaults (TCP keep-alive 1 h, HTTP/2 ping every
/// 5 min) leave a task reading from an executor that dropped off the network
/// stuck for minutes, holding its slot; with pings every 10 s the read fails
/// within half a minute, the slot frees, and the stage can be retried.
fn with_fast_peer_loss_detection(mut config: SessionConfig) -> SessionConfig {
    for (key, value) in [
        ("ballista.client.grpc_connect_timeout_seconds", "10"),
        ("ballista.client.grpc_tcp_keepalive_seconds", "10"),
        ("ballista.client.grpc_http2_keepalive_interval_seconds", "10"),
    ] {
        config = config.set_str(key, value);
    }
    config
}

/// gRPC settings of the client's own connections: to the scheduler and, once
/// a job has completed, to the executors holding its result. Ballista applies
/// no timeout or keep-alive of its own to that result fetch, so an executor
/// frozen or cut off after the job ended would leave the client waiting
/// forever, out of the job watchdog's reach (the job is already Completed).
/// With these settings a fetch that gets no answer, or whose executor stops
/// answering HTTP/2 pings mid-stream, fails within about `fetch_timeout` with
/// an error the stage runner retries.
pub fn with_client_fetch_timeouts(config: SessionConfig, fetch_timeout: Duration) -> SessionConfig {
    config.with_ballista_override_create_grpc_client_endpoint(Arc::new(move |endpoint| {
        Ok(client_endpoint(endpoint, fetch_timeout))
    }))
}

/// One endpoint with the settings of [`with_client_fetch_timeouts`].
pub fn client_endpoint(endpoint: Endpoint, fetch_timeout: Duration) -> Endpoint {
    // Below a second even a healthy scheduler could miss it.
    let budget = fetch_timeout.max(Duration::from_secs(1));
    // A ping every third of the budget, and two thirds for its answer.
    let ping_every = budget / 3;
    endpoint
        .connect_timeout(budget)
        // Until the response starts (it streams afterwards, under the pings).
        .timeout(budget)
        .tcp_keepalive(Some(ping_every))
        .http2_keep_alive_interval(ping_every)
        .keep_alive_timeout(budget - ping_every)
        .keep_alive_while_idle(true)
}

/// Parquet footers and file statistics DataFusion keeps per process. Its
/// defaults (50 MiB and 20 MiB) let a long-running stream, which reads new
/// files every batch, grow by 70 MiB before the caches start evicting; a
/// stage re-reads a few hundred files at most, whose footers fit in these.
const METADATA_CACHE_BYTES: usize = 16 << 20;
const STATISTICS_CACHE_BYTES: usize = 4 << 20;

/// Runtime whose object stores resolve `file://` and `gs://` URLs.
pub fn runtime_env(_config: &SessionConfig) -> Result<Arc<RuntimeEnv>> {
    let caches = datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
        .with_metadata_cache_limit(METADATA_CACHE_BYTES)
        .with_file_statistics_cache_limit(STATISTICS_CACHE_BYTES);
    Ok(Arc::new(
        RuntimeEnvBuilder::new().with_object_store_registry(LakeStores::new()).with_cache_manager(caches).build()?,
    ))
}

/// Session state built from a config (used by the scheduler for each job).
pub fn session_state(config: SessionConfig) -> Result<SessionState> {
    let runtime = runtime_env(&config)?;
    session_state_on(config, runtime)
}

/// Session state built from a config, on an existing runtime.
pub fn session_state_on(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> Result<SessionState> {
    // As Ballista's default session builder, with our runtime.
    Ok(SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
        .with_scalar_functions(ballista_core::extension::ballista_scalar_functions())
        .with_aggregate_functions(ballista_core::extension::ballista_aggregate_functions())
        .with_window_functions(ballista_core::extension::ballista_window_functions())
        .build())
}

/// Logical codec for the scheduler and executor processes (our table providers and aggregate).
pub fn logical_codec() -> Arc<FunnelPulseLogicalCodec> {
    Arc::new(FunnelPulseLogicalCodec::default())
}

/// Physical codec for the scheduler and executor processes (our scan node and aggregate).
pub fn physical_codec() -> Arc<FunnelPulsePhysicalCodec> {
    Arc::new(FunnelPulsePhysicalCodec::default())
}

/// How executors get tasks: Ballista's `push` (the scheduler assigns tasks
/// to the free slots it counts) or `pull` (each executor asks for work with
/// its own count of free slots, every 50 ms when idle).
///
/// Push is the default: it is Ballista's, and 1.5–3 s faster per small stage
/// on our compose cluster. Pull is the way out if a scheduler is seen keeping
/// the slots of a lost executor's tasks and starving the survivors (seen once
/// after a chaos case on the compose cluster, not again in 12 runs since).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchedulingPolicy {
    /// The scheduler assigns tasks to the executors' free slots (Ballista's default).
    #[default]
    Push,
    /// Each executor asks the scheduler for tasks when it has free slots.
    Pull,
}

impl From<SchedulingPolicy> for ballista_core::config::TaskSchedulingPolicy {
    fn from(policy: SchedulingPolicy) -> Self {
        match policy {
            SchedulingPolicy::Pull => Self::PullStaged,
            SchedulingPolicy::Push => Self::PushStaged,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use ballista_core::client::BallistaClient;
    use ballista_core::extension::BallistaConfigGrpcEndpoint;
    use ballista_core::serde::scheduler::{PartitionId, ShuffleLayout};

    use super::*;

    /// The case Ballista leaves open: the job has completed, and the executor
    /// holding its result stops answering before the client fetches it.
    #[tokio::test]
    async fn a_result_fetch_from_a_silent_executor_fails_instead_of_waiting_forever() {
        // Bound but never accepting: the kernel still completes the TCP
        // handshake, as it does for a frozen process.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let fetch_timeout = Duration::from_secs(1);
        let customize = BallistaConfigGrpcEndpoint::new(Arc::new(move |e| Ok(client_endpoint(e, fetch_timeout))));
        let started = Instant::now();
        let fetch = async {
            let mut client =
                BallistaClient::try_new("127.0.0.1", port, 16 << 20, false, Some(Arc::new(customize)), 1, 0, 0, 0)
                    .await?;
            let partition = PartitionId::new(&"job".into(), 1, 0);
            client.fetch_partition("executor-1", &partition, None, ShuffleLayout::Passthrough, true).await.map(|_| ())
        };
        let result = tokio::time::timeout(Duration::from_secs(60), fetch).await.expect("the fetch hung");
        assert!(result.is_err(), "a silent executor served a result");
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    }
}
