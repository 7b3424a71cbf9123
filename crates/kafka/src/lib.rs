//! Kafka for FunnelPulse (rdkafka, librdkafka built from source):
//!
//! - [`topic`]: the client settings, and checking (or creating) a topic with
//!   a clear message when the broker cannot be reached;
//! - [`record`]: one event per record — the JSON value and the key;
//! - [`replay`]: `funnelpulse kafka replay`, bronze rows of a date range
//!   produced in event-time order (the Kafka counterpart of stage 03);
//! - [`source`]: reading exact offset ranges, the stream's Kafka source;
//! - [`decode`]: records → typed events, or dead letters with a reason.

pub mod decode;
pub mod record;
pub mod replay;
pub mod source;
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
    /// Further librdkafka settings, KEY=VALUE (repeat, or comma-separate in the environment),
    /// e.g. security.protocol=SASL_SSL.
    #[arg(long = "kafka-option", env = "FUNNELPULSE_KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_option)]
    pub options: Vec<(String, String)>,
}

/// `KEY=VALUE` of `--kafka-option`.
pub fn parse_option(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE (a librdkafka setting, e.g. security.protocol=SASL_SSL)")),
    }
}
