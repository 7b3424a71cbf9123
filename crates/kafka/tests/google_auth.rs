//! `--kafka-auth google` end to end: our clients take the VM's access token from a
//! fake GCE metadata server and sign in over SASL/OAUTHBEARER to a fake broker
//! that speaks just enough of the Kafka protocol (ApiVersions, SaslHandshake,
//! SaslAuthenticate, Metadata) and checks the token as Managed Kafka reads it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use funnelpulse_kafka::source::TopicReader;
use funnelpulse_kafka::topic::ensure_topic;
use funnelpulse_kafka::{AuthMethod, ClientArgs, KafkaArgs};

const EMAIL: &str = "funnelpulse-vm@project.iam.gserviceaccount.com";
const TOPIC: &str = "events";
const PARTITIONS: i32 = 3;

/// A GCE metadata server: the default service account's email and access tokens
/// (`ya29.fake-N`, each valid for `lifetime` seconds), only with `Metadata-Flavor: Google`.
struct FakeMetadata {
    address: String,
    issued: Arc<Mutex<Vec<String>>>,
}

impl FakeMetadata {
    fn start(lifetime: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let issued = Arc::new(Mutex::new(Vec::new()));
        let tokens = issued.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer_metadata(stream, lifetime, &tokens);
            }
        });
        Self { address, issued }
    }

    fn issued(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }
}

fn answer_metadata(mut stream: TcpStream, lifetime: u64, issued: &Mutex<Vec<String>>) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let request = String::from_utf8_lossy(&request).to_lowercase();
    let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
    let (status, body) = if !request.contains("metadata-flavor: google") {
        ("403 Forbidden", "missing Metadata-Flavor".to_string())
    } else if path.ends_with("/service-accounts/default/email") {
        ("200 OK", EMAIL.to_string())
    } else if path.ends_with("/service-accounts/default/token") {
        let mut issued = issued.lock().unwrap();
        let token = format!("ya29.fake-{}", issued.len());
        issued.push(token.clone());
        ("200 OK", format!(r#"{{"access_token":"{token}","expires_in":{lifetime},"token_type":"Bearer"}}"#))
    } else {
        ("404 Not Found", "no such item".to_string())
    };
    let reply = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let _ = stream.write_all(reply.as_bytes());
}

/// What the broker saw of the sign-ins.
#[derive(Default)]
struct SignIns {
    accepted: Vec<String>,
    refused: Vec<String>,
}

/// A one-node broker at 127.0.0.1 holding one topic, that serves metadata only
/// to connections signed in with a Managed-Kafka token for one of `valid` access tokens.
struct FakeBroker {
    address: String,
    sign_ins: Arc<Mutex<SignIns>>,
}

impl FakeBroker {
    fn start(valid: Arc<Mutex<Vec<String>>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sign_ins = Arc::new(Mutex::new(SignIns::default()));
        let seen = sign_ins.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (valid, seen) = (valid.clone(), seen.clone());
                thread::spawn(move || serve_connection(stream, port, &valid, &seen));
            }
        });
        Self { address: format!("127.0.0.1:{port}"), sign_ins }
    }

    fn accepted(&self) -> Vec<String> {
        self.sign_ins.lock().unwrap().accepted.clone()
    }

    fn refused(&self) -> Vec<String> {
        self.sign_ins.lock().unwrap().refused.clone()
    }
}

const API_METADATA: i16 = 3;
const API_SASL_HANDSHAKE: i16 = 17;
const API_VERSIONS: i16 = 18;
const API_SASL_AUTHENTICATE: i16 = 36;
/// Kafka's SASL_AUTHENTICATION_FAILED and ILLEGAL_SASL_STATE.
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const ILLEGAL_SASL_STATE: i16 = 34;

fn serve_connection(mut stream: TcpStream, port: u16, valid: &Mutex<Vec<String>>, seen: &Mutex<SignIns>) {
    let mut signed_in = false;
    while let Some(frame) = read_frame(&mut stream) {
        let mut request = Reader(&frame);
        let (api, version, correlation) = (request.i16(), request.i16(), request.i32());
        let _client_id = request.nullable_string();
        let body = match api {
            API_VERSIONS => api_versions(version),
            API_SASL_HANDSHAKE => sasl_handshake(),
            API_SASL_AUTHENTICATE => {
                let message = request.bytes();
                let verdict = check_sign_in(&message, valid);
                let mut seen = seen.lock().unwrap();
                match verdict {
                    Ok(token) => {
                        seen.accepted.push(token);
                        signed_in = true;
                        sasl_authenticate(version, 0, None)
                    }
                    Err(why) => {
                        seen.refused.push(why.clone());
                        sasl_authenticate(version, SASL_AUTHENTICATION_FAILED, Some(&why))
                    }
                }
            }
            API_METADATA if signed_in => metadata(version, port),
            API_METADATA => sasl_authenticate(0, ILLEGAL_SASL_STATE, Some("not signed in")),
            _ => return,
        };
        let mut reply = correlation.to_be_bytes().to_vec();
        reply.extend(body);
        let mut framed = (reply.len() as i32).to_be_bytes().to_vec();
        framed.extend(reply);
        if stream.write_all(&framed).is_err() {
            return;
        }
    }
}

/// The token of an OAUTHBEARER client message (`n,,\x01auth=Bearer TOKEN\x01…`), checked
/// as Managed Kafka does: Google's header, the claims, and a live access token.
fn check_sign_in(message: &[u8], valid: &Mutex<Vec<String>>) -> Result<String, String> {
    let message = String::from_utf8_lossy(message);
    let token = message
        .split('\u{1}')
        .find_map(|kv| kv.strip_prefix("auth=Bearer "))
        .ok_or_else(|| format!("no bearer token in {message:?}"))?
        .to_string();
    let parts: Vec<Vec<u8>> = token.split('.').map(|p| URL_SAFE_NO_PAD.decode(p).unwrap_or_default()).collect();
    let [header, claims, access] = parts.as_slice() else { return Err(format!("not three parts: {token}")) };
    let header: serde_json::Value = serde_json::from_slice(header).map_err(|e| e.to_string())?;
    let claims: serde_json::Value = serde_json::from_slice(claims).map_err(|e| e.to_string())?;
    if header != serde_json::json!({"typ": "JWT", "alg": "GOOG_OAUTH2_TOKEN"}) {
        return Err(format!("header {header}"));
    }
    if claims["sub"] != EMAIL || claims["scope"] != "kafka" || claims["iss"] != "Google" {
        return Err(format!("claims {claims}"));
    }
    let access = String::from_utf8_lossy(access).into_owned();
    if !valid.lock().unwrap().contains(&access) {
        return Err(format!("unknown access token {access}"));
    }
    Ok(access)
}

fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut frame).ok()?;
    Some(frame)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().unwrap_or([0; 2]))
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap_or([0; 4]))
    }
    fn nullable_string(&mut self) -> Option<String> {
        let length = self.i16();
        (length >= 0).then(|| String::from_utf8_lossy(self.take(length as usize)).into_owned())
    }
    fn bytes(&mut self) -> Vec<u8> {
        let length = self.i32().max(0) as usize;
        self.take(length).to_vec()
    }
}

/// Response bodies, in Kafka's big-endian encoding.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    fn i8(mut self, v: i8) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i16(mut self, v: i16) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn string(self, s: &str) -> Self {
        let mut body = self.i16(s.len() as i16);
        body.0.extend(s.as_bytes());
        body
    }
    fn nullable_string(self, s: Option<&str>) -> Self {
        match s {
            Some(s) => self.string(s),
            None => self.i16(-1),
        }
    }
    /// An unsigned varint (flexible versions' lengths and tag counts).
    fn uvarint(mut self, mut v: u32) -> Self {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
        self
    }
}

/// The APIs this broker speaks, with their version ranges.
const APIS: [(i16, i16, i16); 4] =
    [(API_METADATA, 0, 1), (API_SASL_HANDSHAKE, 0, 1), (API_VERSIONS, 0, 3), (API_SASL_AUTHENTICATE, 0, 1)];

fn api_versions(version: i16) -> Vec<u8> {
    let mut body = Body::default().i16(0);
    if version >= 3 {
        body = body.uvarint(APIS.len() as u32 + 1);
        for (api, min, max) in APIS {
            body = body.i16(api).i16(min).i16(max).uvarint(0);
        }
        return body.i32(0).uvarint(0).0;
    }
    body = body.i32(APIS.len() as i32);
    for (api, min, max) in APIS {
        body = body.i16(api).i16(min).i16(max);
    }
    if version >= 1 {
        body = body.i32(0);
    }
    body.0
}

fn sasl_handshake() -> Vec<u8> {
    Body::default().i16(0).i32(1).string("OAUTHBEARER").0
}

fn sasl_authenticate(version: i16, error: i16, message: Option<&str>) -> Vec<u8> {
    let body = Body::default().i16(error).nullable_string(message).i32(0);
    if version >= 1 { body.i64(0).0 } else { body.0 }
}

fn metadata(version: i16, port: u16) -> Vec<u8> {
    let mut body = Body::default().i32(1).i32(1).string("127.0.0.1").i32(i32::from(port));
    if version >= 1 {
        body = body.nullable_string(None).i32(1);
    }
    body = body.i32(1).i16(0).string(TOPIC);
    if version >= 1 {
        body = body.i8(0);
    }
    body = body.i32(PARTITIONS);
    for partition in 0..PARTITIONS {
        body = body.i16(0).i32(partition).i32(1).i32(1).i32(1).i32(1).i32(1);
    }
    body.0
}

/// Our client arguments for the fake pair: no TLS here, else as on a VM.
fn kafka_args(broker: &FakeBroker, metadata_host: &str) -> KafkaArgs {
    KafkaArgs {
        bootstrap_servers: broker.address.clone(),
        topic: TOPIC.into(),
        client: ClientArgs {
            options: vec![("security.protocol".into(), "SASL_PLAINTEXT".into())],
            auth: AuthMethod::Google,
            metadata_host: Some(metadata_host.into()),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topic_check_signs_in_with_the_vm_token() {
    let metadata = FakeMetadata::start(3600);
    let broker = FakeBroker::start(metadata.issued.clone());
    let partitions = ensure_topic(&kafka_args(&broker, &metadata.address), None).await.expect("signed in");
    assert_eq!(partitions, PARTITIONS as usize);
    assert!(!broker.accepted().is_empty(), "the broker saw a sign-in");
    assert!(broker.refused().is_empty(), "{:?}", broker.refused());
    assert!(broker.accepted().iter().all(|t| metadata.issued().contains(t)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reader_renews_its_token_before_it_expires() {
    // Tokens valid 3 s: due for renewal after 2 s (80 %, whole seconds).
    let metadata = FakeMetadata::start(3);
    let broker = FakeBroker::start(metadata.issued.clone());
    let reader = TopicReader::new(&kafka_args(&broker, &metadata.address), "g", Duration::from_secs(20)).unwrap();
    assert_eq!(reader.partitions().await.unwrap(), vec![0, 1, 2]);
    let first = metadata.issued().len();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(reader.partitions().await.unwrap(), vec![0, 1, 2], "still signed in after the first token expired");
    assert!(metadata.issued().len() > first, "a new token was fetched: {:?}", metadata.issued());
    assert!(broker.refused().is_empty(), "{:?}", broker.refused());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_broker_does_not_know_is_refused() {
    let metadata = FakeMetadata::start(3600);
    // The broker knows no access token: every sign-in is refused.
    let broker = FakeBroker::start(Arc::new(Mutex::new(Vec::new())));
    let error = ensure_topic(&kafka_args(&broker, &metadata.address), None).await.expect_err("refused");
    assert!(!broker.refused().is_empty(), "the broker was asked: {error:#}");
    assert!(broker.accepted().is_empty());
    let text = funnelpulse_core::redact::scrub(&format!("{error:#}"));
    assert!(text.contains("refused the sign-in: "), "{text}");
    assert!(text.contains("SASL authentication error: unknown access token"), "{text}");
    assert!(text.contains("needs roles/managedkafka.client"), "what to do: {text}");
    assert!(!text.contains("ya29.fake"), "no token in the error: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reader_stops_at_a_refused_sign_in_without_waiting_its_patience() {
    let metadata = FakeMetadata::start(3600);
    let broker = FakeBroker::start(Arc::new(Mutex::new(Vec::new())));
    let patience = Duration::from_secs(60);
    let reader = TopicReader::new(&kafka_args(&broker, &metadata.address), "g", patience).unwrap();
    let started = std::time::Instant::now();
    let error = reader.partitions().await.expect_err("refused");
    assert!(
        format!("{error:#}").contains(&format!("the Kafka broker at {} refused the sign-in", broker.address)),
        "{error:#}"
    );
    assert!(started.elapsed() < patience / 2, "no retries for the whole patience: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_metadata_server_the_error_says_where_tokens_come_from() {
    let unused = TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = unused.local_addr().unwrap().to_string();
    drop(unused);
    let broker = FakeBroker::start(Arc::new(Mutex::new(Vec::new())));
    let error = ensure_topic(&kafka_args(&broker, &nowhere), None).await.expect_err("no token");
    let text = format!("{error:#}");
    assert!(text.contains(&format!("no service-account email from the GCE metadata server at {nowhere}")), "{text}");
    assert!(text.contains("--kafka-auth google"), "{text}");
    assert!(broker.accepted().is_empty() && broker.refused().is_empty(), "nothing reached the broker");
}
