#!/usr/bin/env python3
"""Kafka benchmark (release, embedded Ballista, a tansu broker on 127.0.0.1).

1. replay: `funnelpulse kafka replay` of bronze days into a 3-partition topic:
   records/s, and the same topic read back by a plain consumer (what the
   broker alone serves);
2. catch-up: stage 04 with `--source kafka --available-now` over that topic;
3. latency: a producer at a fixed rate (events of "now") while
   `funnelpulse run 04 --source kafka --trigger-interval 1s` runs; each
   record's time from production (delivery report) to the commit of the batch
   whose logged offset range holds it: p50/p95.

Needs the broker (`cargo install tansu --locked --features libsql --root
~/.cache/tansu`, as .ci/run does) and confluent-kafka from PyPI for the producer:

    cargo build --release -p funnelpulse && pip install confluent-kafka duckdb && python3 bench/kafka.py
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch import ROOT, run_measured  # noqa: E402
from stream import progress_lines  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(tansu, data):
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", f"sqlite:///{data}/tansu.db"],
        stdout=subprocess.DEVNULL, stderr=open(f"{data}/broker.log", "w"))
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    sys.exit("the broker did not start")


def read_back(address, topic):
    """Reads the whole topic with a plain consumer: the broker's own serving rate."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": address, "group.id": "bench", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    partitions = consumer.list_topics(topic).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    start, n, eof = time.time(), 0, set()
    while len(eof) < len(partitions):
        for m in consumer.consume(10000, 1.0):
            if m.error():
                eof.add(m.partition())
            else:
                n += 1
    secs = time.time() - start
    consumer.close()
    return n, secs


def plain_producer(address, topic, n):
    """n records of the replay's size, produced as fast as librdkafka (Python client) can:
    what the broker ingests without our replay (reading bronze, encoding) in front of it."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": address})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result()
    producer = Producer({"bootstrap.servers": address, "enable.idempotence": True, "linger.ms": 5})
    value = json.dumps({
        "event_time": "2019-10-15 08:00:01 UTC", "event_type": "view", "product_id": 5802432,
        "category_id": 2053013552326770905, "category_code": None, "brand": "runail", "price": 0.32,
        "user_id": 562076640, "user_session": "09fafd6c-6c99-46b1-834f-33527f4de241"}).encode()
    start = time.time()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, value=value, key=str(i % 100000))
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)
    return n / (time.time() - start)


def produce_at_rate(address, topic, rate, seconds, sent):
    """Events of the current time at `rate` per second; `sent` gets (partition, offset, produced_at_s)."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": address, "enable.idempotence": True, "linger.ms": 5})
    brands = ["runail", "irisk", "grattol", "masura", "kapous"]

    start = time.time()
    i = 0
    while time.time() - start < seconds:
        wait = start + i / rate - time.time()
        if wait > 0:
            time.sleep(wait)
        now = time.time()
        value = json.dumps({
            "event_time": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "event_type": ["view", "view", "cart", "purchase"][i % 4], "product_id": i, "category_id": 1,
            "category_code": None, "brand": brands[i % 5], "price": 3.5, "user_id": i % 1000, "user_session": "s"})

        def callback(err, msg, now=now):
            if err is None:
                sent.append((msg.partition(), msg.offset(), now))
        producer.produce(topic, value=value, key=str(i % 1000), on_delivery=callback)
        producer.poll(0)
        i += 1
    producer.flush(30)
    return i


def latency(binary, address, lake, rate, seconds, trigger="1s"):
    topic = "live"
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": address})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result()
    stream = subprocess.Popen(
        [binary, "run", "04", "--lake", str(lake), "--source", "kafka", "--bootstrap-servers", address,
         "--topic", topic, "--trigger-interval", trigger, "--min-batches-to-retain", "1000000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # the stream is up and polling
    sent = []
    produced = produce_at_rate(address, topic, rate, seconds, sent)
    deadline = time.time() + 60
    while time.time() < deadline:
        lines = progress_lines(lake)
        if sum(b["input_rows"] for b in lines) >= produced:
            break
        time.sleep(0.5)
    stream.terminate()
    stream.wait(60)
    commits = []
    for b in lines:
        committed = datetime.fromisoformat(b["timestamp"].replace("Z", "+00:00")).timestamp()
        for r in b.get("kafka_ranges", []):
            commits.append((r["partition"], r["start"], r["end"], committed))
    waits = []
    for partition, offset, at in sent:
        for p, start, end, committed in commits:
            if p == partition and start <= offset < end:
                waits.append(committed - at)
    waits.sort()
    batches = [b for b in lines if not b["flush"]]
    totals = sorted(b["durations"]["total_ms"] for b in batches)
    return produced, len(waits), waits, batches, totals


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", default=str(ROOT / "data" / "bench" / "lake"),
                        help="a lake with bronze_events (bench/batch.py leaves one); built from generated data if missing")
    parser.add_argument("--rows", type=int, default=8_738_120)
    parser.add_argument("--from", dest="start", default="2019-10-01")
    parser.add_argument("--to", dest="end", default="2019-10-10")
    parser.add_argument("--rate", type=int, default=2000, help="events/s of the live producer")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--tansu", default=str(Path.home() / ".cache/tansu/bin/tansu"))
    parser.add_argument("--binary", default=os.environ.get("FUNNELPULSE_BIN",
                        str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "funnelpulse")))
    args = parser.parse_args()
    lake = Path(args.lake)
    if not (lake / "tables/bronze_events").exists():
        raw = lake.parent / f"raw-{args.rows}"
        if not (raw / "truth.json").exists():
            run_measured([args.binary, "generate", "--out", str(raw), "--rows", str(args.rows), "--force"])
        run_measured([args.binary, "run", "01", "--raw", str(raw), "--lake", str(lake)])

    with tempfile.TemporaryDirectory() as data:
        broker, address = start_broker(args.tansu, data)
        try:
            secs, rss, out = run_measured(
                [args.binary, "kafka", "replay", "--lake", str(lake), "--bootstrap-servers", address, "--topic",
                 "events", "--from", args.start, "--to", args.end, "--create-topic", "--partitions", "3"])
            print(f"replay {args.start}..{args.end}: wall {secs:.1f}s, peak RSS {rss / 2**20:.0f} MiB")
            print("  " + out.strip().splitlines()[-1])
            n, secs = read_back(address, "events")
            print(f"  the broker serves the same topic to a plain consumer at {n / secs:,.0f} records/s")
            with tempfile.TemporaryDirectory() as stream_lake:
                secs, rss, out = run_measured(
                    [args.binary, "run", "04", "--lake", stream_lake, "--source", "kafka", "--bootstrap-servers",
                     address, "--topic", "events", "--available-now", "--flush-at-end",
                     "--min-batches-to-retain", "1000000"])
                lines = progress_lines(stream_lake)
                batches = [b for b in lines if not b["flush"]]
                rows = sum(b["input_rows"] for b in batches)
                reads = statistics.median(b["durations"]["plan_ms"] for b in batches)
                totals = statistics.median(b["durations"]["total_ms"] for b in batches)
                print(f"  stage 04 --source kafka over the same topic (--available-now, 200k records per batch): "
                      f"wall {secs:.1f}s, {rows / secs:,.0f} records/s, {len(batches)} batches "
                      f"(median: read+decode+stage {reads:.0f} ms of {totals:.0f} ms), peak RSS {rss / 2**20:.0f} MiB")
            rate = plain_producer(address, "plain", 300_000)
            print(f"  the broker ingests records of the same size from a plain producer "
                  f"(Python confluent-kafka, idempotent) at {rate:,.0f} records/s")

            with tempfile.TemporaryDirectory() as stream_lake:
                produced, matched, waits, batches, totals = latency(
                    args.binary, address, Path(stream_lake), args.rate, args.seconds)
            p50 = statistics.median(waits)
            p95 = waits[int(0.95 * (len(waits) - 1))]
            print(f"\nlive: {produced} events at {args.rate}/s for {args.seconds}s, trigger interval 1s: "
                  f"produce→commit p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms "
                  f"({matched} records matched to {len(batches)} batches; batch p50 {statistics.median(totals):.0f} ms)")
        finally:
            broker.terminate()
            broker.wait()


if __name__ == "__main__":
    main()
