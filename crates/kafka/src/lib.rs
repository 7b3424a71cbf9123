//! Kafka for FunnelPulse (rdkafka, librdkafka built from source):
//!
//! - [`auth`]: signing in to Google's Managed Kafka with the VM's token (OAUTHBEARER);
//! - [`topic`]: the client settings, and checking (or creating) a topic with
//!   a clear message when the broker cannot be reached;
//! - [`record`]: one event per record — the JSON value and the key;
//! - [`replay`]: `funnelpulse kafka replay`, bronze rows of a date range
//!   produced in event-time order (the Kafka counterpart of stage 03);
//! - [`source`]: reading exact offset ranges, the stream's Kafka source;
//! - [`decode`]: records → typed events, or dead letters with a reason.

pub mod auth;
pub mod decode;
mod error;
pub mod record;
pub mod replay;
pub mod source;
pub mod topic;

pub use auth::{AuthMethod, KafkaAuth};
pub use error::{KafkaContext, KafkaError, Result};
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
    /// Client settings and sign-in, shared by every client of the command.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// How our clients talk to the brokers: librdkafka settings and the sign-in.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClientArgs {
    /// Further librdkafka settings, KEY=VALUE (repeat, or comma-separate in the environment),
    /// e.g. security.protocol=SASL_SSL.
    #[arg(long = "kafka-option", env = "FUNNELPULSE_KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_option)]
    pub options: Vec<(String, String)>,
    /// How the clients sign in: as the settings say, or with the GCE VM's own token
    /// (Managed Service for Apache Kafka: SASL_SSL + OAUTHBEARER, no key).
    #[arg(long = "kafka-auth", env = "FUNNELPULSE_KAFKA_AUTH", value_enum, default_value_t)]
    pub auth: AuthMethod,
    /// The metadata server for --kafka-auth google (tests; Google's libraries read the same variable).
    #[arg(long = "kafka-metadata-host", env = auth::METADATA_HOST_ENV, hide = true)]
    pub metadata_host: Option<String>,
}

impl ClientArgs {
    /// The context our clients are created with.
    pub fn auth(&self) -> KafkaAuth {
        KafkaAuth::new(self.auth, self.metadata_host.as_deref())
    }
}

/// `KEY=VALUE` of `--kafka-option`.
pub fn parse_option(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE (a librdkafka setting, e.g. security.protocol=SASL_SSL)")),
    }
}
