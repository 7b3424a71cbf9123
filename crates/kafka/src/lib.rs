//! Kafka for FunnelPulse (rdkafka, librdkafka built from source):
//!
//! - [`topic`]: the client settings, and checking (or creating) a topic with
//!   a clear message when the broker cannot be reached;
//! - [`record`]: one event per record — the JSON value and the key;
//! - [`replay`]: `funnelpulse kafka replay`, bronze rows of a date range
//!   produced in event-time order (the Kafka counterpart of stage 03).

pub mod record;
pub mod replay;
pub mod topic;

pub use replay::{ReplayArgs, ReplayReport, replay};

/// Where the events go (or come from).
#[derive(clap::Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Kafka brokers, HOST:PORT[,HOST:PORT…].
    #[arg(long, env = "FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: String,
    /// Topic of the events.
    #[arg(long, env = "FUNNELPULSE_KAFKA_TOPIC", default_value = "funnelpulse_events")]
    pub topic: String,
}
