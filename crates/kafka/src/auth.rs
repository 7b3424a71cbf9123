//! Signing in to Google Cloud's Managed Service for Apache Kafka without a key:
//! SASL/OAUTHBEARER with the VM's own access token from the GCE metadata server.
//!
//! The broker takes a JWT-shaped token (the format of Google's own client
//! handlers): `base64url(header).base64url(claims).base64url(access token)`,
//! the header `{"typ":"JWT","alg":"GOOG_OAUTH2_TOKEN"}`, the claims
//! `{exp, iat, iss:"Google", scope:"kafka", sub: the service account's email}`.
//!
//! librdkafka asks for a token when a client starts and again 80 % through its
//! lifetime. rdkafka hands those requests to [`ClientContext::generate_oauth_token`]
//! on the thread that polls the client; an admin client is never polled there,
//! and a first blocking call (metadata) would wait for a poll, so every client
//! is also given its first token directly when it is created ([`KafkaAuth::prime`]).

use std::error::Error;
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rdkafka::client::{Client, ClientContext, OAuthToken};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryResult, ProducerContext};

/// Where the metadata server is: Google's client libraries honour the same variable.
pub const METADATA_HOST_ENV: &str = "GCE_METADATA_HOST";
const METADATA_HOST: &str = "metadata.google.internal";
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a failed client is polled for its queued events (a refused
/// sign-in among them): a zero-length poll serves only one event.
pub const EVENTS_WAIT: Duration = Duration::from_millis(100);

/// How the clients authenticate.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMethod {
    /// As the --kafka-option settings say (none, SASL/PLAIN, TLS certificates…).
    #[default]
    Settings,
    /// SASL/OAUTHBEARER over TLS with the VM's service-account token from the GCE
    /// metadata server: Google Cloud's Managed Service for Apache Kafka, no key.
    Google,
}

/// The authentication of one client: a context every client of ours is created with.
#[derive(Clone, Debug, Default)]
pub struct KafkaAuth {
    google: Option<GoogleTokens>,
    /// The broker's last refusal of a sign-in, as librdkafka reported it: a
    /// failed request then says so instead of "broker transport failure".
    refused: Arc<Mutex<Option<String>>>,
}

/// A token is renewed 80 % through its lifetime, as librdkafka does.
fn renew_at(issued: u64, expires: u64) -> u64 {
    issued + (expires.saturating_sub(issued)) * 4 / 5
}

impl KafkaAuth {
    /// The context for `method`; `metadata_host` replaces the GCE metadata server (default: `GCE_METADATA_HOST`).
    pub fn new(method: AuthMethod, metadata_host: Option<&str>) -> Self {
        let google = (method == AuthMethod::Google).then(|| GoogleTokens::new(metadata_host));
        Self { google, refused: Default::default() }
    }

    /// The settings this method needs; the user's own settings win (a test broker
    /// without TLS takes security.protocol=SASL_PLAINTEXT).
    pub fn configure(&self, config: &mut ClientConfig, user: &[(String, String)]) {
        if self.google.is_none() {
            return;
        }
        let user_set = |key: &str| user.iter().any(|(k, _)| k == key);
        if !user_set("security.protocol") {
            config.set("security.protocol", "SASL_SSL");
        }
        config.set("sasl.mechanism", "OAUTHBEARER");
    }

    /// Gives a new client its first token, so that its first request need not
    /// wait for a poll (and an admin client, never polled for tokens, has one).
    pub fn prime<C: ClientContext>(&self, client: &Client<C>) -> crate::Result<()> {
        let Some(google) = &self.google else { return Ok(()) };
        let token = google.token()?;
        set_token(client, &token)
    }

    /// The broker's refusal to sign this client in, if it refused, as one line
    /// with what to do. librdkafka reports a refusal as an error event: poll
    /// the client first, for [`EVENTS_WAIT`].
    pub fn refusal(&self, servers: &str) -> Option<String> {
        let why = self.refused.lock().expect("not poisoned").clone()?;
        let hint = match self.google {
            Some(_) => "the VM's service account needs roles/managedkafka.client in the cluster's project",
            None => "check the sasl.* settings (--kafka-option, FUNNELPULSE_KAFKA_OPTIONS)",
        };
        Some(format!("the Kafka broker at {servers} refused the sign-in: {why}; {hint}"))
    }

    /// [`prime`](Self::prime) again when the last token is due for renewal: a
    /// client that is not polled for a while (a stream waiting for data) still
    /// signs in with a valid token.
    pub fn prime_if_due<C: ClientContext>(&self, client: &Client<C>) -> crate::Result<()> {
        match &self.google {
            Some(google) if google.due() => self.prime(client),
            _ => Ok(()),
        }
    }
}

impl ClientContext for KafkaAuth {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Authentication) {
            *self.refused.lock().expect("not poisoned") = Some(funnelpulse_core::redact::scrub(reason));
        }
    }

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
        match &self.google {
            Some(google) => Ok(google.token()?),
            None => Err("an OAUTHBEARER token was asked for, but --kafka-auth is not google".into()),
        }
    }
}

impl ConsumerContext for KafkaAuth {}

/// For clients that produce nothing (metadata requests).
impl ProducerContext for KafkaAuth {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// Hands a token to librdkafka (what rdkafka does with a refreshed one).
fn set_token<C: ClientContext>(client: &Client<C>, token: &OAuthToken) -> crate::Result<()> {
    let value = CString::new(token.token.as_str()).map_err(|e| token_error("the token holds a NUL byte", e))?;
    let principal =
        CString::new(token.principal_name.as_str()).map_err(|e| token_error("the principal holds a NUL byte", e))?;
    let mut error = [0 as std::ffi::c_char; 512];
    // SAFETY: the client is alive for the call; librdkafka copies the strings,
    // and writes at most error.len() bytes of message.
    let code = unsafe {
        rdkafka::bindings::rd_kafka_oauthbearer_set_token(
            client.native_ptr(),
            value.as_ptr(),
            token.lifetime_ms,
            principal.as_ptr(),
            std::ptr::null_mut(),
            0,
            error.as_mut_ptr(),
            error.len(),
        )
    };
    if code == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return Ok(());
    }
    // SAFETY: librdkafka wrote a NUL-terminated message into the buffer.
    let message = unsafe { std::ffi::CStr::from_ptr(error.as_ptr()) }.to_string_lossy().into_owned();
    Err(crate::KafkaError::Refused(format!("librdkafka refused the OAUTHBEARER token: {message}")))
}

/// The VM's tokens, from the metadata server.
#[derive(Clone, Debug)]
pub struct GoogleTokens {
    /// host[:port] of the metadata server.
    host: String,
    /// When the newest token is due for renewal (Unix seconds); shared by the clones.
    renew_at: Arc<AtomicU64>,
}

/// The metadata server's answer for an access token.
#[derive(serde::Deserialize)]
struct AccessToken {
    access_token: String,
    expires_in: u64,
}

impl GoogleTokens {
    /// The metadata server at `host`, else `$GCE_METADATA_HOST`, else Google's name for it.
    pub fn new(host: Option<&str>) -> Self {
        let host = host
            .map(str::to_string)
            .or_else(|| std::env::var(METADATA_HOST_ENV).ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| METADATA_HOST.to_string());
        Self { host, renew_at: Arc::new(AtomicU64::new(0)) }
    }

    fn due(&self) -> bool {
        unix_seconds() >= self.renew_at.load(Ordering::Relaxed)
    }

    /// A broker token for the VM's default service account (blocking: called on
    /// librdkafka's polling threads).
    pub fn token(&self) -> crate::Result<OAuthToken> {
        let email = self.get("email")?;
        let email = email.trim().to_string();
        let access: AccessToken = serde_json::from_str(&self.get("token")?)
            .map_err(|e| token_error(format!("the metadata server at {} gave no access token", self.host), e))?;
        let now = unix_seconds();
        let expires = now + access.expires_in;
        funnelpulse_core::redact::register_secret(&access.access_token);
        let token = kafka_token(&access.access_token, &email, now, expires);
        self.renew_at.store(renew_at(now, expires), Ordering::Relaxed);
        funnelpulse_core::redact::register_secret(&token);
        Ok(OAuthToken { token, principal_name: email, lifetime_ms: (expires * 1000) as i64 })
    }

    /// One value of the default service account.
    fn get(&self, item: &str) -> crate::Result<String> {
        let url = format!("http://{}/computeMetadata/v1/instance/service-accounts/default/{item}", self.host);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(METADATA_TIMEOUT))
            .proxy(None)
            .max_redirects(0)
            .build()
            .into();
        let fetched =
            agent.get(&url).header("Metadata-Flavor", "Google").call().and_then(|mut r| r.body_mut().read_to_string());
        fetched.map_err(|e| {
            let what = format!(
                "--kafka-auth google: no service-account {item} from the GCE metadata server at {} (this runs on a \
                 GCE VM with a service account; {METADATA_HOST_ENV} names another server)",
                self.host
            );
            token_error(what, e)
        })
    }
}

/// Managed Kafka's token: a JWT whose signature part is the access token itself.
pub fn kafka_token(access_token: &str, email: &str, issued_at: u64, expires_at: u64) -> String {
    let header = serde_json::json!({"typ": "JWT", "alg": "GOOG_OAUTH2_TOKEN"});
    let claims = serde_json::json!({
        "exp": expires_at, "iat": issued_at, "iss": "Google", "scope": "kafka", "sub": email,
    });
    [header.to_string().as_bytes(), claims.to_string().as_bytes(), access_token.as_bytes()]
        .map(|part| URL_SAFE_NO_PAD.encode(part))
        .join(".")
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// No token, and why.
fn token_error(what: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> crate::KafkaError {
    crate::KafkaError::Token { what: what.into(), source: Box::new(source) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_has_google_s_shape() {
        let token = kafka_token("ya29.secret", "vm@p.iam.gserviceaccount.com", 100, 3700);
        let parts: Vec<Vec<u8>> = token.split('.').map(|p| URL_SAFE_NO_PAD.decode(p).unwrap()).collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value = serde_json::from_slice(&parts[0]).unwrap();
        assert_eq!(header, serde_json::json!({"typ": "JWT", "alg": "GOOG_OAUTH2_TOKEN"}));
        let claims: serde_json::Value = serde_json::from_slice(&parts[1]).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({"exp": 3700, "iat": 100, "iss": "Google", "scope": "kafka",
                               "sub": "vm@p.iam.gserviceaccount.com"})
        );
        assert_eq!(parts[2], b"ya29.secret");
        assert!(!token.contains('='), "no padding");
    }

    #[test]
    fn settings_are_left_alone_without_google() {
        let mut config = ClientConfig::new();
        KafkaAuth::new(AuthMethod::Settings, None).configure(&mut config, &[]);
        assert_eq!(config.get("sasl.mechanism"), None);
        let mut config = ClientConfig::new();
        let auth = KafkaAuth::new(AuthMethod::Google, Some("127.0.0.1:1"));
        auth.configure(&mut config, &[]);
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("sasl.mechanism"), Some("OAUTHBEARER"));
        let mut config = ClientConfig::new();
        auth.configure(&mut config, &[("security.protocol".into(), "SASL_PLAINTEXT".into())]);
        assert_eq!(config.get("security.protocol"), None, "the user's value is set by the caller");
    }
}
