#!/usr/bin/env python3
"""Every performance figure in one run, side by side with its anchor (DuckDB, a plain Kafka
consumer) and its target, then a table of all of them.

1. batch: stages 01+02 against DuckDB (the same six tables, bench/duckdb_tables.sql) on the
   default-size data (8,738,120 rows): wall time, CPU time, peak RSS, the ratio;
2. memory: the same at 1x, 2x and 4x the data (generated once each, kept in data/bench);
3. round trips: a trivial Ballista job (crates/engine/examples/job_round_trip.rs, when built),
   stage 04's 2-file micro-batch p50 (bench/stream.py), stages 05 and 06;
4. stage 03's rows/s (the 2.4M bronze rows of Oct 15-31);
5. `funnelpulse run all` on the default 2,000,000-row sample, in a new folder;
6. Kafka (when tansu and confluent-kafka are there): stage 04's catch-up against a plain
   consumer on the same broker, and produce -> commit p50 with a 250 ms trigger.

    cargo build --release --locked -p funnelpulse -p funnelpulse-scheduler -p funnelpulse-executor \\
        -p funnelpulse-engine --bins --examples
    pip install duckdb confluent-kafka && python3 bench/all.py

Ratios are of one run (this machine moves 20-40 % between runs); the figures go to
docs/benchmarks.md and the README with this command and the commit.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch import ROOT, run_measured  # noqa: E402
from stream import stream  # noqa: E402

DEFAULT_ROWS = 8_738_120
GB = 1e9


class Figures:
    """The rows of the final table: figure, FunnelPulse, anchor, target, met."""

    def __init__(self):
        self.rows = []

    def add(self, figure, ours, anchor="", target="", met=None):
        self.rows.append((figure, ours, anchor, target, {True: "yes", False: "no", None: ""}[met]))
        print(f"  {figure}: {ours}" + (f" | {anchor}" if anchor else "") + (f" | target {target}" if target else ""))

    def print(self):
        widths = [max(len(str(r[i])) for r in self.rows + [HEADER]) for i in range(5)]
        for row in [HEADER, tuple("-" * w for w in widths)] + self.rows:
            print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")


HEADER = ("figure", "FunnelPulse", "anchor (same run)", "target", "met")


def run_usage(cmd, **kwargs):
    """Runs cmd; returns (wall s, CPU s, peak RSS bytes, stdout) of that process and its children."""
    before = os.times()
    secs, rss, out = run_measured(cmd, **kwargs)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return secs, cpu, rss, out


def generated(binary, work, rows):
    raw = work / f"raw-{rows}"
    if not (raw / "truth.json").exists():
        print(f"generating {rows:,} rows into {raw}")
        run_measured([binary, "generate", "--out", str(raw), "--rows", str(rows), "--force"])
    return raw


def batch(binary, work, rows):
    """Stages 01+02 then DuckDB on the same CSVs: wall, CPU, peak RSS of each side."""
    raw = generated(binary, work, rows)
    lake = work / f"lake-{rows}"
    shutil.rmtree(lake, ignore_errors=True)
    ours = {"wall": 0.0, "cpu": 0.0, "rss": 0, "csv": sum(p.stat().st_size for p in raw.glob("*.csv"))}
    for stage in ["01", "02"]:
        secs, cpu, rss, out = run_usage([binary, "run", stage, "--raw", str(raw), "--lake", str(lake)])
        ours["wall"] += secs
        ours["cpu"] += cpu
        ours["rss"] = max(ours["rss"], rss)
        ours[stage] = (secs, cpu, rss, out)
    ours["lake_bytes"] = sum(p.stat().st_size for p in (lake / "tables").rglob("*.parquet"))
    out_dir = work / "duckdb"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    sql = (ROOT / "bench" / "duckdb_tables.sql").read_text().replace("@RAW@", str(raw)).replace("@OUT@", str(out_dir))
    script = f"import duckdb\ncon = duckdb.connect()\ncon.execute({sql!r})\n"
    secs, cpu, rss, _ = run_usage([sys.executable, "-c", script])
    duck = {"wall": secs, "cpu": cpu, "rss": rss}
    shutil.rmtree(out_dir, ignore_errors=True)
    return lake, ours, duck


def round_trip(binary_dir):
    """Median of a trivial embedded job (1 stage) and a 2-stage one, from the example binary."""
    example = binary_dir / "examples" / "job_round_trip"
    if not example.exists():
        return None
    _, _, out = run_measured([str(example)])
    medians = [float(m) for m in re.findall(r"p50 ([0-9.]+) ms", out)]
    return medians if len(medians) == 2 else None


def kafka(binary, lake, tansu):
    """Catch-up of stage 04 from Kafka against a plain consumer, and produce -> commit p50."""
    try:
        import confluent_kafka  # noqa: F401
        import kafka as bench_kafka
    except ImportError:
        return None
    if not Path(tansu).exists():
        return None
    with tempfile.TemporaryDirectory() as data:
        broker, address = bench_kafka.start_broker(tansu, data)
        try:
            run_measured([binary, "kafka", "replay", "--lake", str(lake), "--bootstrap-servers", address,
                          "--topic", "events", "--from", "2019-10-01", "--to", "2019-10-10", "--create-topic",
                          "--partitions", "3"])
            n, secs = bench_kafka.read_back(address, "events")
            plain = n / secs
            with tempfile.TemporaryDirectory() as stream_lake:
                secs, _, _ = run_measured(
                    [binary, "run", "04", "--lake", stream_lake, "--source", "kafka", "--bootstrap-servers",
                     address, "--topic", "events", "--available-now", "--flush-at-end",
                     "--min-batches-to-retain", "1000000"])
                catch_up = n / secs
            with tempfile.TemporaryDirectory() as stream_lake:
                _, _, waits, _, _ = bench_kafka.latency(binary, address, Path(stream_lake), 2000, 30,
                                                        trigger="250ms")
            return plain, catch_up, statistics.median(waits)
        finally:
            broker.terminate()
            broker.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=str(ROOT / "data" / "bench"))
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="the 1x size (the default data's rows)")
    parser.add_argument("--sizes", default="1,2,4", help="multiples of the 1x size for the memory figures")
    parser.add_argument("--tansu", default=str(Path.home() / ".cache/tansu/bin/tansu"))
    parser.add_argument("--binary", default=os.environ.get("FUNNELPULSE_BIN",
                        str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "funnelpulse")))
    args = parser.parse_args()
    import duckdb
    binary, work = args.binary, Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"FunnelPulse {binary} at {commit}, DuckDB {duckdb.__version__}, {os.cpu_count()} cores")
    figures = Figures()

    print("\n1-2. batch and memory (stages 01+02 vs DuckDB)")
    lake = None
    growth = []
    for multiple in [int(m) for m in args.sizes.split(",")]:
        rows = args.rows * multiple
        size_lake, ours, duck = batch(binary, work, rows)
        growth.append((multiple, ours["wall"]))
        if multiple == 1:
            lake = size_lake
            ratio = ours["wall"] / duck["wall"]
            figures.add(f"stages 01+02, 1x ({rows / 1e6:.2f}M rows, wall)", f"{ours['wall']:.1f} s",
                        f"DuckDB {duck['wall']:.1f} s: ratio {ratio:.2f}x", "<= 0.8x", ratio <= 0.8)
            figures.add("stages 01+02, 1x (CPU)", f"{ours['cpu']:.1f} s", f"DuckDB {duck['cpu']:.1f} s")
            for stage in ["01", "02"]:
                secs, cpu, rss, _ = ours[stage]
                figures.add(f"stage {stage}, 1x", f"{secs:.1f} s wall, {cpu:.1f} s CPU, {rss / GB:.2f} GB")
            # Where stage 01's time goes: its report's per-table and per-check times.
            for what in ["time per table", "time per count and check"]:
                found = re.search(rf"{what}:(.*)", ours["01"][3])
                figures.add(f"stage 01, 1x, {what}", found.group(1).strip() if found else "not reported")
            figures.add("bytes read / written, 1x", f"{ours['csv'] / GB:.2f} GB CSV / {ours['lake_bytes'] / GB:.2f} GB"
                        " Parquet")
        else:
            shutil.rmtree(size_lake, ignore_errors=True)
        figures.add(f"peak RSS, {multiple}x ({rows / 1e6:.1f}M rows)", f"{ours['rss'] / GB:.2f} GB "
                    f"({ours['wall']:.1f} s)", f"DuckDB {duck['rss'] / GB:.2f} GB ({duck['wall']:.1f} s)", "<= 2 GB",
                    ours["rss"] <= 2 * GB)
    if len(growth) > 1:
        (m0, t0), (m1, t1) = growth[0], growth[-1]
        figures.add(f"time growth {m0}x -> {m1}x", f"{t1 / t0:.2f}x for {m1 / m0:.0f}x the data", "",
                    "at most linear", t1 / t0 <= 1.1 * m1 / m0)

    print("\n3-4. round trips, stages 03, 05, 06")
    medians = round_trip(Path(binary).parent)
    if medians:
        figures.add("trivial job embedded (SELECT 1, median)", f"{medians[0]:.0f} ms", "", "<= 50 ms",
                    medians[0] <= 50)
        figures.add("2-stage job embedded (grouped count, median)", f"{medians[1]:.0f} ms")
    else:
        figures.add("trivial job embedded", "not measured (build the engine's examples)")
    for stage, options in [("03", ["--stream-from", "2019-10-15", "--stream-to", "2019-10-31"]), ("05", []),
                           ("06", [])]:
        secs, cpu, rss, out = run_usage([binary, "run", stage, "--lake", str(lake), *options])
        if stage == "03":
            rows = int(re.search(r"([0-9]+) bronze rows", out).group(1))
            figures.add("stage 03 (Oct 15-31 -> 50 files)", f"{rows / secs / 1e6:.2f} M rows/s ({secs:.1f} s)", "",
                        ">= 1 M rows/s", rows / secs >= 1e6)
        else:
            target = {"05": 1.0, "06": 1.5}[stage]
            figures.add(f"stage {stage}", f"{secs:.2f} s ({cpu:.1f} s CPU)", "", f"<= {target} s", secs <= target)
    secs, _, _, batches = stream(binary, lake, [])
    totals = sorted(b["durations"]["total_ms"] for b in batches)
    p50 = statistics.median(totals)
    figures.add("stage 04, 2-file micro-batch p50", f"{p50:.0f} ms ({len(batches)} batches)", "", "<= 250 ms",
                p50 <= 250)

    print("\n5. run all on the default sample")
    with tempfile.TemporaryDirectory() as folder:
        secs, cpu, rss, _ = run_usage([binary, "run", "all"], cwd=folder)
    figures.add("run all, default 2M-row sample", f"{secs:.1f} s ({cpu:.1f} s CPU, {rss / GB:.2f} GB)", "",
                "<= 20 s", secs <= 20)

    print("\n6. Kafka")
    measured = kafka(binary, lake, args.tansu)
    if measured:
        plain, catch_up, p50 = measured
        figures.add("Kafka catch-up (stage 04, 3 partitions)", f"{catch_up:,.0f} records/s",
                    f"plain consumer {plain:,.0f} records/s: {catch_up / plain:.0%}", ">= 90 %",
                    catch_up >= 0.9 * plain)
        figures.add("Kafka produce -> commit p50 (250 ms trigger)", f"{p50 * 1000:.0f} ms", "", "<= 1 s", p50 <= 1)
    else:
        figures.add("Kafka", "not measured (needs tansu and confluent-kafka)")

    print(f"\nAll figures (python3 bench/all.py, commit {commit}):\n")
    figures.print()


if __name__ == "__main__":
    main()
