//! Kafka against a real broker: tansu (a Kafka-protocol broker in Rust, on
//! 127.0.0.1 with its sqlite storage), started by each test: the replay
//! producer, and stage 04 with `--source kafka` (exactly-once across
//! SIGKILL and a broker restart, dead letters, the local cluster).
//! `.ci/run` installs it into ~/.cache/tansu; FUNNELPULSE_TANSU names another binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::reference::{BRONZE_COLUMNS, hourly_brand, read_raw};
use common::stream::{command, kill_at, output_rows, progress_lines, terminate, wait_for};
use common::tables::{Row, Value, assert_close_rows, assert_same_rows, read_rows, sorted};
use common::{free_port, funnelpulse, funnelpulse_ok, generate};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// A tansu broker for one test; killed on drop.
struct Broker {
    process: Child,
    port: u16,
    data: tempfile::TempDir,
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
        let process = Self::spawn(data.path(), port);
        Self { process, port, data }
    }

    fn spawn(data: &Path, port: u16) -> Child {
        let url = format!("tcp://127.0.0.1:{port}");
        let storage = format!("sqlite:///{}", data.join("tansu.db").display());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(data.join("broker.log")).unwrap();
        let process = Command::new(tansu_binary())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", &storage])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tansu starts");
        common::wait_for_port(port);
        process
    }

    /// SIGKILL, then a new broker on the same port and storage.
    fn restart(&mut self, down_for: Duration) {
        self.process.kill().unwrap();
        self.process.wait().unwrap();
        std::thread::sleep(down_for);
        self.process = Self::spawn(self.data.path(), self.port);
    }

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.address());
        config
    }

    async fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self.client().create().unwrap();
        let results = admin
            .create_topics([&NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &AdminOptions::new())
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    /// Produces `(partition, key, value)` records and waits until the broker has them.
    fn produce(&self, topic: &str, records: &[(i32, Option<String>, Vec<u8>)]) {
        let producer: BaseProducer = self.client().set("enable.idempotence", "true").create().unwrap();
        for (partition, key, value) in records {
            let mut record = BaseRecord::to(topic).partition(*partition).payload(value);
            if let Some(key) = key {
                record = record.key(key);
            }
            producer.send(record).map_err(|(e, _)| e).unwrap();
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(30)).unwrap();
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

/// `funnelpulse kafka replay` of `lake` into `topic`, then `extra`.
fn replay_args<'a>(lake: &'a str, broker: &'a str, topic: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["kafka", "replay", "--lake", lake, "--bootstrap-servers", broker, "--topic", topic];
    args.extend(extra);
    args
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
        &replay_args(
            lake.to_str().unwrap(),
            &broker.address(),
            "events",
            &["--from", "2019-10-02", "--to", "2019-10-03", "--create-topic", "--partitions", "3"],
        ),
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

    // A second replay into the filled topic is refused (a stream would count the days twice).
    let again = funnelpulse(
        dir.path(),
        &replay_args(
            lake.to_str().unwrap(),
            &broker.address(),
            "events",
            &["--from", "2019-10-02", "--to", "2019-10-03"],
        ),
        &[],
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && stderr.contains("already holds") && stderr.contains("--append"), "{stderr}");
    assert_eq!(broker.read_all("events", 3).len(), records.len(), "nothing was produced");
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_refuses_a_missing_topic_and_an_unreachable_broker() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_with_bronze(dir.path());
    let replay = |servers: &str| {
        let out = funnelpulse(
            dir.path(),
            &replay_args(lake.to_str().unwrap(), servers, "absent", &["--from", "2019-10-01"]),
            &[],
        );
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (ok, err) = replay(&broker.address());
    assert!(!ok && err.contains("topic \"absent\" does not exist") && err.contains("--create-topic"), "{err}");
    let out = funnelpulse(
        dir.path(),
        &replay_args(
            lake.to_str().unwrap(),
            &broker.address(),
            "absent",
            &["--create-topic", "--from", "2020-01-01", "--to", "2020-01-31"],
        ),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("has no rows from 2020-01-01 to 2020-01-31 (it holds 2019-10-01 … 2019-10-03)"),
        "{err}"
    );
    let nowhere = format!("127.0.0.1:{}", free_port());
    let (ok, err) = replay(&nowhere);
    assert!(!ok && err.contains(&format!("cannot reach the Kafka broker at {nowhere}")), "{err}");
}

/// A generated event as the replay producer writes it.
fn event_json(time: &str, kind: &str, brand: &str, price: f64, user: i64) -> Vec<u8> {
    serde_json::json!({
        "event_time": format!("{time} UTC"), "event_type": kind, "product_id": 1, "category_id": 2053013552326770905i64,
        "category_code": null, "brand": brand, "price": price, "user_id": user, "user_session": "s",
    })
    .to_string()
    .into_bytes()
}

/// `funnelpulse run 04` reading `topic`, bounded.
fn kafka_stream<'a>(lake: &'a str, broker: &'a str, topic: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "04",
        "--lake",
        lake,
        "--source",
        "kafka",
        "--bootstrap-servers",
        broker,
        "--topic",
        topic,
        "--available-now",
        "--flush-at-end",
    ];
    args.extend(extra);
    args
}

async fn dead_letters(lake: &Path) -> Vec<Row> {
    sorted(read_rows(lake, "stream_dead_letters", "received_date", &["partition", "offset", "reason"]).await)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kafka_stream_equals_the_batch_funnel_survives_sigkill_and_keeps_dead_letters() {
    let broker = Broker::start();
    let address = broker.address();
    let dir = tempfile::tempdir().unwrap();
    let raw = generate(dir.path(), 20_000, 3);
    let base = dir.path().join("base");
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", raw.to_str().unwrap(), "--lake", base.to_str().unwrap()]);
    funnelpulse_ok(
        dir.path(),
        &replay_args(
            base.to_str().unwrap(),
            &address,
            "events",
            &["--from", "2019-10-01", "--to", "2019-10-03", "--create-topic", "--partitions", "3"],
        ),
    );
    // Poison: not JSON, a missing field, a bad timestamp — after the events of each partition.
    let mut missing: serde_json::Value =
        serde_json::from_slice(&event_json("2019-10-02 10:00:00", "view", "x", 1.0, 7)).unwrap();
    missing.as_object_mut().unwrap().remove("brand");
    broker.produce(
        "events",
        &[
            (0, None, b"not json".to_vec()),
            (1, Some("7".into()), missing.to_string().into_bytes()),
            (2, None, event_json("2019-10-32 10:00:00", "view", "x", 1.0, 7)),
        ],
    );
    let uninterrupted_dir = dir.path().join("a");
    let stream = |lake: &'static str, extra: &[&'static str]| {
        let mut args = kafka_stream(lake, &address, "events", &["--max-records-per-trigger", "6000"]);
        args.extend(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<String>>()
    };
    let run = |args: &[String]| funnelpulse_ok(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());

    // Uninterrupted: the hourly funnel of the silver rules (without de-duplication), nothing late.
    let out = run(&stream("a", &[]));
    assert!(out.contains("3 dead letters"), "{out}");
    let uninterrupted = output_rows(&uninterrupted_dir).await;
    let silver: Vec<_> = read_raw(&raw)
        .into_iter()
        .filter(|e| e.price.is_some_and(|p| p > 0.0) && e.time.is_some() && e.kind.is_some())
        .collect();
    assert_close_rows("kafka stream vs batch funnel", uninterrupted.clone(), hourly_brand(&silver), 1e-9);
    assert!(read_rows(&uninterrupted_dir, "late_events", "event_date", &["event_time"]).await.is_empty());
    let letters = dead_letters(&uninterrupted_dir).await;
    let reasons: Vec<String> = letters.iter().map(|r| format!("{} {}", r[0], r[2])).collect();
    assert_eq!(letters.len(), 3, "{reasons:?}");
    assert!(reasons[0].starts_with("0 the value is not JSON"), "{reasons:?}");
    assert_eq!(reasons[1], "1 missing fields: brand");
    assert_eq!(reasons[2], "2 bad event_time \"2019-10-32 10:00:00 UTC\"");
    let batches = progress_lines(&uninterrupted_dir);
    assert!(batches.len() >= 5, "20k records in batches of 6000, then the flush: {batches:?}");

    // Killed (SIGKILL) while reading, staging, aggregating and committing, in several batches, then resumed.
    let interrupted_dir = dir.path().join("b");
    for point in [
        "stream:after-read:0",
        "stream:before-offsets:1",
        "stream:after-offsets:1",
        "stream:after-write:2",
        "stream:after-commit-record:2",
        "stream:after-appends:3",
    ] {
        let args = stream("b", &[]);
        kill_at(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>(), point);
    }
    run(&stream("b", &[]));
    assert_eq!(output_rows(&interrupted_dir).await, uninterrupted, "killed and resumed ≠ uninterrupted");
    assert_eq!(dead_letters(&interrupted_dir).await, letters);
    let ids: Vec<u64> = progress_lines(&interrupted_dir).iter().map(|p| p["batch_id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (0..batches.len() as u64).collect::<Vec<_>>(), "each batch is committed once");
    let staged: Vec<_> = std::fs::read_dir(interrupted_dir.join("checkpoints/stream_hourly_brand/input"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(staged.is_empty(), "committed batches' staged records are deleted: {staged:?}");
    let status = funnelpulse_ok(dir.path(), &["stream", "status", "--lake", "b", "--bootstrap-servers", &address]);
    assert!(status.contains("0 records waiting in topic \"events\"") && status.contains("3 dead letters"), "{status}");
    // The dashboard's stream page shows the same (the topic's lag, the dead letters).
    let port = common::free_port();
    let mut serve = Command::new(common::FUNNELPULSE)
        .current_dir(dir.path())
        .args(["serve", "--lake", "b", "--bootstrap-servers", &address, "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for_port(port);
    let page = common::http_get(port, "/api/stream").unwrap_or_default();
    let _ = serve.kill();
    let _ = serve.wait();
    let page: serde_json::Value = serde_json::from_str(&page).unwrap_or_default();
    assert_eq!(page["dead_letters"], 3, "{page}");
    assert!(page["waiting"].as_str().is_some_and(|w| w.contains("0 records waiting in topic \"events\"")), "{page}");

    // The same on the local multi-process cluster: the replay (into a topic without poison) and the stream.
    let cluster = common::LocalCluster::start(2);
    let url = cluster.url();
    funnelpulse_ok(
        dir.path(),
        &replay_args(
            base.to_str().unwrap(),
            &address,
            "clean",
            &["--scheduler", &url, "--from", "2019-10-01", "--to", "2019-10-03", "--create-topic", "--partitions", "3"],
        ),
    );
    let on_cluster = kafka_stream("c", &address, "clean", &["--max-records-per-trigger", "6000", "--scheduler", &url]);
    let out = funnelpulse_ok(dir.path(), &on_cluster);
    assert!(out.contains("0 dead letters"), "{out}");
    assert_eq!(output_rows(&dir.path().join("c")).await, uninterrupted, "cluster ≠ embedded");
}

/// Views, carts, purchases per (hour, brand) of `events` (time, type, brand).
fn expected_windows(events: &[(String, &str, &str)]) -> Vec<Row> {
    let mut windows: std::collections::BTreeMap<(String, String), [i64; 3]> = Default::default();
    for (time, kind, brand) in events {
        let hour = format!("{}:00:00", &time[..13]).replacen(' ', "T", 1);
        let counts = windows.entry((hour, brand.to_string())).or_default();
        counts[["view", "cart", "purchase"].iter().position(|k| k == kind).unwrap()] += 1;
    }
    windows
        .into_iter()
        .map(|((hour, brand), c)| vec![Value::S(hour), Value::S(brand), Value::I(c[0]), Value::I(c[1]), Value::I(c[2])])
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn records_arriving_while_the_stream_runs_are_counted_once_across_a_broker_restart() {
    let mut broker = Broker::start();
    let address = broker.address();
    broker.create_topic("live", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut stream = command(
        dir.path(),
        &[
            "run",
            "04",
            "--lake",
            "lake",
            "--source",
            "kafka",
            "--bootstrap-servers",
            &address,
            "--topic",
            "live",
            "--trigger-interval",
            "200ms",
            "--kafka-patience",
            "60s",
            "--kafka-group",
            "funnelpulse-test",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let events: Vec<(String, &str, &str)> = (0..600)
        .map(|i| {
            let time = format!("2019-10-01 {:02}:{:02}:{:02}", i / 120, (i / 2) % 60, i % 60);
            (time, ["view", "view", "cart", "purchase"][i % 4], ["a", "b", "c"][i % 3])
        })
        .collect();
    let records: Vec<(i32, Option<String>, Vec<u8>)> = events
        .iter()
        .enumerate()
        .map(|(i, (time, kind, brand))| {
            ((i % 3) as i32, Some(i.to_string()), event_json(time, kind, brand, 2.5, i as i64))
        })
        .collect();
    let counted = || progress_lines(&lake).iter().map(|p| p["input_rows"].as_u64().unwrap()).sum::<u64>();

    broker.produce("live", &records[..300]);
    wait_for(|| (counted() == 300).then_some(()));
    broker.restart(Duration::from_secs(2));
    broker.produce("live", &records[300..]);
    wait_for(|| (counted() == 600).then_some(()));
    terminate(&mut stream);

    // The flush emits the windows still open; every event counted once.
    let out = funnelpulse_ok(dir.path(), &kafka_stream("lake", &address, "live", &[]));
    assert!(out.contains("0 late rows"), "{out}");
    let got = read_rows(
        &lake,
        common::stream::OUTPUT,
        "window_date",
        &["window_start", "brand", "views", "carts", "purchases"],
    )
    .await;
    assert_eq!(sorted(got), sorted(expected_windows(&events)));
    assert!(progress_lines(&lake).len() >= 3, "records arriving in two waves make several batches");

    // --kafka-group: the positions are in the consumer group too (for lag monitoring).
    let consumer: BaseConsumer = broker.client().set("group.id", "funnelpulse-test").create().unwrap();
    let mut partitions = TopicPartitionList::new();
    for p in 0..3 {
        partitions.add_partition("live", p);
    }
    let committed = consumer.committed_offsets(partitions, Duration::from_secs(10)).unwrap();
    let total: i64 = committed.elements().iter().map(|e| e.offset().to_raw().unwrap_or(0)).sum();
    assert_eq!(total, 600, "{committed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kafka_source_refuses_an_unreachable_broker_and_a_missing_topic() {
    let dir = tempfile::tempdir().unwrap();
    let stream = |servers: &str, topic: &str| {
        let out = funnelpulse(dir.path(), &kafka_stream("lake", servers, topic, &["--kafka-patience", "1s"]), &[]);
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let nowhere = format!("127.0.0.1:{}", free_port());
    let (ok, err) = stream(&nowhere, "events");
    assert!(!ok && err.contains("cannot reach the Kafka broker") && err.contains(&nowhere), "{err}");
    let broker = Broker::start();
    let (ok, err) = stream(&broker.address(), "absent");
    assert!(!ok && err.contains("topic \"absent\" does not exist"), "{err}");
    let out = funnelpulse(dir.path(), &["run", "04", "--lake", "lake", "--source", "kafka"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--source kafka needs --bootstrap-servers"), "{out:?}");
}
