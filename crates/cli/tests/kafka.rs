//! Kafka against a real broker: tansu (a Kafka-protocol broker in Rust, on
//! 127.0.0.1 with its sqlite storage), started by each test.
//! `.ci/run` installs it into ~/.cache/tansu; FUNNELPULSE_TANSU names another binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::reference::BRONZE_COLUMNS;
use common::tables::{Row, Value, assert_same_rows, read_rows, sorted};
use common::{free_port, funnelpulse, funnelpulse_ok, generate};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// A tansu broker for one test; killed on drop.
struct Broker {
    process: Child,
    port: u16,
    _data: tempfile::TempDir,
}

fn tansu_binary() -> PathBuf {
    if let Ok(path) = std::env::var("FUNNELPULSE_TANSU") {
        return PathBuf::from(path);
    }
    let cached = PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/tansu/bin/tansu");
    assert!(
        cached.exists(),
        "no Kafka broker for the tests: run `cargo install tansu --locked --features libsql --root ~/.cache/tansu` \
         (as .ci/run does) or set FUNNELPULSE_TANSU"
    );
    cached
}

impl Broker {
    fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let storage = format!("sqlite:///{}", data.path().join("tansu.db").display());
        let process = Command::new(tansu_binary())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", &storage])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.path().join("broker.log")).unwrap())
            .spawn()
            .expect("tansu starts");
        let broker = Self { process, port, _data: data };
        common::wait_for_port(port);
        broker
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every record of `topic`: (partition, key, value), in partition order.
    fn read_all(&self, topic: &str, partitions: i32) -> Vec<(i32, Option<String>, String)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.address())
            .set("group.id", "funnelpulse-test")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        let mut remaining = 0;
        for p in 0..partitions {
            let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap();
            remaining += high;
            assignment.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut records = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while (records.len() as i64) < remaining {
            assert!(std::time::Instant::now() < deadline, "read {} of {remaining} records", records.len());
            if let Some(message) = consumer.poll(Duration::from_millis(500)) {
                let message = message.unwrap();
                let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                records.push((message.partition(), text(message.key()), text(message.payload()).unwrap()));
            }
        }
        records
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The nine event columns of a record (bronze's columns without `event_date`).
const COLUMNS: &[&str] = BRONZE_COLUMNS.split_last().unwrap().1;

/// Stage 01 on generated data: a lake with bronze_events.
fn lake_with_bronze(dir: &Path) -> PathBuf {
    let raw = generate(dir, 20_000, 3);
    let lake = dir.join("lake");
    funnelpulse_ok(dir, &["run", "01", "--raw", raw.to_str().unwrap(), "--lake", lake.to_str().unwrap()]);
    lake
}

/// A record's JSON value as a row of [`COLUMNS`] (event time as DataFusion prints it).
fn row_of(value: &str) -> Row {
    let json: serde_json::Value = serde_json::from_str(value).unwrap();
    COLUMNS
        .iter()
        .map(|c| match &json[*c] {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::String(s) if *c == "event_time" => {
                Value::S(s.trim_end_matches(" UTC").replacen(' ', "T", 1))
            }
            serde_json::Value::String(s) => Value::S(s.clone()),
            serde_json::Value::Number(n) if n.is_i64() => Value::I(n.as_i64().unwrap()),
            serde_json::Value::Number(n) => Value::F(n.as_f64().unwrap()),
            other => panic!("unexpected {other} in {value}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_produces_every_bronze_row_of_the_range_in_event_time_order() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_with_bronze(dir.path());
    let out = funnelpulse_ok(
        dir.path(),
        &[
            "kafka",
            "replay",
            "--lake",
            lake.to_str().unwrap(),
            "--bootstrap-servers",
            &broker.address(),
            "--topic",
            "events",
            "--from",
            "2019-10-02",
            "--to",
            "2019-10-03",
            "--create-topic",
            "--partitions",
            "3",
        ],
    );
    let records = broker.read_all("events", 3);

    // Exactly the bronze rows of the two days, each once.
    let expected: Vec<Row> = read_rows(&lake, "bronze_events", "event_date", &BRONZE_COLUMNS)
        .await
        .into_iter()
        .filter(|r| matches!(&r[9], Value::S(d) if d.as_str() == "2019-10-02" || d.as_str() == "2019-10-03"))
        .map(|mut r| {
            r.truncate(9);
            r
        })
        .collect();
    assert!(out.contains(&format!("replayed {} bronze rows as {} records", expected.len(), expected.len())), "{out}");
    let produced: Vec<Row> = records.iter().map(|(_, _, v)| row_of(v)).collect();
    assert_same_rows("records vs bronze rows", sorted(produced), sorted(expected));

    // Keyed by user: one user's events in one partition, in event-time order.
    let mut partition_of = std::collections::HashMap::new();
    let mut last_time = std::collections::HashMap::new();
    for (partition, key, value) in &records {
        let row = row_of(value);
        assert_eq!(
            key.as_deref().map(|k| Value::I(k.parse().unwrap())).unwrap_or(Value::Null),
            row[7],
            "key ≠ user_id"
        );
        if let Some(key) = key {
            assert_eq!(
                *partition_of.entry(key.clone()).or_insert(*partition),
                *partition,
                "user {key} in two partitions"
            );
            let time = row[0].to_string();
            let last = last_time.entry(key.clone()).or_insert_with(String::new);
            assert!(*last <= time, "user {key}: {time} after {last}");
            *last = time;
        }
    }
    let used: std::collections::HashSet<i32> = records.iter().map(|r| r.0).collect();
    assert_eq!(used.len(), 3, "the records should spread over the 3 partitions");
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_refuses_a_missing_topic_and_an_unreachable_broker() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_with_bronze(dir.path());
    let replay = |servers: &str| {
        let out = funnelpulse(
            dir.path(),
            &["kafka", "replay", "--lake", lake.to_str().unwrap(), "--bootstrap-servers", servers, "--topic", "absent"],
            &[],
        );
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (ok, err) = replay(&broker.address());
    assert!(!ok && err.contains("topic \"absent\" does not exist") && err.contains("--create-topic"), "{err}");
    let nowhere = format!("127.0.0.1:{}", free_port());
    let (ok, err) = replay(&nowhere);
    assert!(!ok && err.contains(&format!("cannot reach the Kafka broker at {nowhere}")), "{err}");
}
