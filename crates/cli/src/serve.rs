//! `funnelpulse serve`: the interactive dashboard (crates/serve).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use funnelpulse_engine::{CommonArgs, EngineMode};
use funnelpulse_lake::Lake;
use funnelpulse_serve::{Dashboard, Engine, Limits};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address to listen on. The dashboard has no login: anything other than a
    /// loopback address lets everyone who can reach it read the lake's figures.
    #[arg(long, env = "FUNNELPULSE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Longest a request may wait for and run its queries (then 503 or 504).
    #[arg(long, env = "FUNNELPULSE_QUERY_TIMEOUT", default_value = "30s",
          value_parser = funnelpulse_engine::args::parse_duration)]
    pub query_timeout: Duration,
    /// Requests whose queries run at once; others wait.
    #[arg(long, env = "FUNNELPULSE_MAX_QUERIES", default_value_t = 4)]
    pub max_queries: usize,
    /// A Kafka stream's brokers, HOST:PORT[,HOST:PORT…]: the stream page then shows the lag.
    #[arg(long, env = "FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// The Kafka client's settings and sign-in, as the stream's.
    #[command(flatten)]
    pub kafka_client: funnelpulse_kafka::ClientArgs,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    if !args.bind.ip().is_loopback() {
        eprintln!(
            "warning: --bind {}: the dashboard has no login; everyone who can reach this address can read the lake's \
             figures (keep 127.0.0.1 and use an SSH or IAP tunnel instead)",
            args.bind
        );
    }
    let (engine, running) = match args.common.engine_mode()? {
        EngineMode::Embedded { parallelism } => {
            (Engine::local(parallelism)?, format!("queries in this process ({parallelism} partitions)"))
        }
        remote => {
            let engine = funnelpulse_engine::Engine::connect_with(remote.clone(), &args.common.cluster).await?;
            (Engine::Cluster(engine), remote.to_string())
        }
    };
    let stores = engine.ctx().runtime_env().object_store_registry.clone();
    let lake = Lake::open(&args.common.lake, stores.as_ref())?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {} (--bind)", args.bind))?;
    let lake_url = funnelpulse_core::redact::scrub(lake.url().as_str());
    println!("dashboard on http://{} — lake {lake_url}, {running} (Ctrl-C stops it)", listener.local_addr()?);
    let limits = Limits { max_queries: args.max_queries, query_timeout: args.query_timeout };
    let kafka = funnelpulse_stage04::source::KafkaSourceArgs {
        bootstrap_servers: args.bootstrap_servers,
        client: args.kafka_client,
        ..Default::default()
    };
    let dashboard = Arc::new(Dashboard::new(engine, lake, stores, kafka, limits));
    Ok(funnelpulse_serve::serve(dashboard, listener).await?)
}
