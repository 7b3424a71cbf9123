//! Client settings and the topic: a broker that cannot be reached, or a topic
//! that does not exist, is refused before anything is read or produced.

use std::time::Duration;

use crate::error::{KafkaContext, KafkaError};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

use crate::{KafkaArgs, KafkaAuth};

/// How long a metadata request may take before the broker counts as unreachable.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings every client of ours shares.
pub fn client_config(kafka: &KafkaArgs) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("client.id", "funnelpulse")
        // Fail fast when nothing answers instead of retrying for minutes.
        .set("socket.connection.setup.timeout.ms", "10000")
        .set("log_level", "3");
    kafka.client.auth().configure(&mut config, &kafka.client.options);
    for (key, value) in &kafka.client.options {
        if is_secret_setting(key) {
            funnelpulse_core::redact::register_secret(value);
        }
        config.set(key, value);
    }
    // OpenSSL is linked in (vendored): its built-in CA folder is not the system's, so TLS
    // connections look for the system's CA certificates unless told otherwise.
    let tls = config.get("security.protocol").is_some_and(|p| p.to_ascii_uppercase().contains("SSL"));
    if tls && config.get("ssl.ca.location").is_none() {
        config.set("ssl.ca.location", "probe");
    }
    config
}

/// librdkafka settings holding a credential (sasl.password, ssl.key.password,
/// sasl.oauthbearer.client.secret, sasl.jaas.config, ssl.key.pem…): never printed.
fn is_secret_setting(key: &str) -> bool {
    ["password", "secret", "token", "jaas", "oauthbearer.config", "key.pem"].iter().any(|s| key.contains(s))
}

/// The topic's partition count; with `create` = (partitions, replication),
/// a missing topic is created first.
pub async fn ensure_topic(kafka: &KafkaArgs, create: Option<(i32, i32)>) -> crate::Result<usize> {
    if let Some(partitions) = partitions_of(kafka).await? {
        return Ok(partitions);
    }
    let Some((partitions, replication)) = create else {
        return Err(KafkaError::Missing(format!(
            "topic {:?} does not exist on {}: create it with --create-topic --partitions N",
            kafka.topic, kafka.bootstrap_servers
        )));
    };
    create_topic(kafka, partitions, replication).await?;
    partitions_of(kafka).await?.with_context(|| format!("topic {:?} was created but is not listed", kafka.topic))
}

/// Partitions of the topic, or None when the broker does not list it.
async fn partitions_of(kafka: &KafkaArgs) -> crate::Result<Option<usize>> {
    let config = client_config(kafka);
    let auth = kafka.client.auth();
    let (servers, topic) = (kafka.bootstrap_servers.clone(), kafka.topic.clone());
    // librdkafka's metadata call blocks; all topics are asked for, since asking
    // for one by name may make a broker create it.
    tokio::task::spawn_blocking(move || {
        let client: BaseProducer<KafkaAuth> =
            config.create_with_context(auth.clone()).context("creating the Kafka client")?;
        auth.prime(client.client())?;
        let metadata = client.client().fetch_metadata(None, METADATA_TIMEOUT).map_err(|error| {
            // Error events (a refused sign-in among them) reach the context when polled.
            client.poll(crate::auth::EVENTS_WAIT);
            match auth.refusal(&servers) {
                Some(refusal) => KafkaError::Refused(refusal),
                None => KafkaError::from(error).context(format!("cannot reach the Kafka broker at {servers}")),
            }
        })?;
        Ok(metadata.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len()))
    })
    .await?
}

async fn create_topic(kafka: &KafkaArgs, partitions: i32, replication: i32) -> crate::Result<()> {
    let (config, auth) = (client_config(kafka), kafka.client.auth());
    // Blocking: the first token comes from the metadata server.
    let admin = tokio::task::spawn_blocking(move || {
        let admin: AdminClient<KafkaAuth> =
            config.create_with_context(auth.clone()).context("creating the Kafka admin client")?;
        auth.prime(admin.inner())?;
        Ok::<_, crate::KafkaError>(admin)
    })
    .await??;
    let topic = NewTopic::new(&kafka.topic, partitions, TopicReplication::Fixed(replication));
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .with_context(|| format!("creating topic {:?} on {}", kafka.topic, kafka.bootstrap_servers))?;
    for result in results {
        if let Err((name, code)) = result {
            let failed = KafkaError::Broker(rdkafka::error::KafkaError::AdminOp(code));
            return Err(failed.context(format!("creating topic {name:?} on {}", kafka.bootstrap_servers)));
        }
    }
    log::info!("created topic {:?} with {partitions} partitions", kafka.topic);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(options: &[(&str, &str)]) -> KafkaArgs {
        KafkaArgs {
            bootstrap_servers: "broker:9092".into(),
            topic: "t".into(),
            client: crate::ClientArgs {
                options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn options_pass_through_and_tls_finds_the_system_certificates() {
        let plain = client_config(&args(&[("linger.ms", "7")]));
        assert_eq!(plain.get("linger.ms"), Some("7"));
        assert_eq!(plain.get("ssl.ca.location"), None);
        let tls = client_config(&args(&[("security.protocol", "sasl_ssl")]));
        assert_eq!(tls.get("ssl.ca.location"), Some("probe"));
        let own = client_config(&args(&[("security.protocol", "SSL"), ("ssl.ca.location", "/etc/ca.pem")]));
        assert_eq!(own.get("ssl.ca.location"), Some("/etc/ca.pem"));
    }

    #[test]
    fn tls_and_sasl_plain_are_built_in() {
        // A client without TLS support refuses this configuration when it is created.
        let config = client_config(&args(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "user"),
            ("sasl.password", "secret"),
        ]));
        assert_eq!(funnelpulse_core::redact::scrub("password secret"), "password …", "the password is never printed");
        let created: Result<BaseProducer, _> = config.create();
        assert!(created.is_ok(), "{:?}", created.err());
    }

    #[test]
    fn a_bad_option_is_named() {
        assert!(crate::parse_option("security.protocol").unwrap_err().contains("is not KEY=VALUE"));
        assert_eq!(crate::parse_option("a=b=c").unwrap(), ("a".to_string(), "b=c".to_string()));
    }
}
