#!/usr/bin/env python3
"""Soak benchmark of a continuous stage 04: memory and checkpoint size over many batches.

Stage 03 cuts generated data into BATCHES small stream files, held aside; a feeder
moves one into the stream's source folder every --feed-every seconds while stage 04
runs continuously (one file per trigger). Every 100 batches it prints the stream's
RSS and the size and file count of its checkpoint, then a least-squares slope of RSS
per batch over the second half of the run (the first batches warm caches up).

    cargo build --release -p funnelpulse && python3 bench/stream_soak.py [--batches 1000]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH_LINE = re.compile(r"\[04\] batch (\d+): ")


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_size(path):
    files = [p for p in Path(path).rglob("*") if p.is_file()]
    dirs = [p for p in Path(path).rglob("*") if p.is_dir()]
    return sum(p.stat().st_size for p in files), len(files), len(dirs)


def slope(points):
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else float("nan")


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--feed-every", type=float, default=0.5, help="seconds between two files")
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--binary", default=os.environ.get("FUNNELPULSE_BIN", str(
        Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "funnelpulse")))
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="soak-"))
    raw, lake, held = work / "raw", work / "lake", work / "held"
    if not held.exists():
        run([args.binary, "generate", "--out", str(raw), "--rows", str(args.rows), "--days", "30",
             "--start", "2019-10-01"])
        run([args.binary, "run", "01", "03", "--raw", str(raw), "--lake", str(lake),
             "--stream-from", "2019-10-01", "--stream-to", "2019-10-30", "--stream-files", str(args.batches)])
        (lake / "stream_input").rename(held)
    (lake / "stream_input").mkdir(exist_ok=True)
    files = sorted(held.glob("*.parquet"))[: args.batches]
    print(f"{len(files)} stream files, binary {args.binary}", flush=True)

    stream = subprocess.Popen(
        [args.binary, "run", "04", "--lake", str(lake), "--reset-stream", "--max-files-per-trigger", "1",
         "--trigger-interval", "200ms", "--file-settle", "0s"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    done = [0]

    def read_progress():
        for line in stream.stderr:
            match = BATCH_LINE.search(line)
            if match:
                done[0] = int(match.group(1)) + 1
            elif "error" in line:
                print(line.rstrip(), flush=True)

    threading.Thread(target=read_progress, daemon=True).start()
    checkpoint = lake / "checkpoints" / "stream_hourly_brand"
    samples, started = [], time.time()
    try:
        for i, file in enumerate(files):
            shutil.copy(file, lake / "stream_input" / (file.name + ".tmp"))
            os.rename(lake / "stream_input" / (file.name + ".tmp"), lake / "stream_input" / file.name)
            time.sleep(args.feed_every)
            if stream.poll() is not None:
                sys.exit(f"stage 04 stopped (exit {stream.returncode}) after {done[0]} batches")
            if (i + 1) % 100 == 0:
                while done[0] < i + 1 and stream.poll() is None:
                    time.sleep(0.2)
                rss = rss_mib(stream.pid)
                size, count, dirs = tree_size(checkpoint)
                samples.append((done[0], rss))
                print(f"batches {done[0]:5d}  RSS {rss:7.1f} MiB  checkpoint {size / 2**20:6.2f} MiB "
                      f"in {count} files, {dirs} folders  ({time.time() - started:.0f}s)", flush=True)
    finally:
        stream.terminate()
        stream.wait(timeout=120)
    half = samples[len(samples) // 2:]
    print(f"RSS slope over the second half: {slope(half):.4f} MiB per batch "
          f"(first {samples[0][1]:.0f} MiB, last {samples[-1][1]:.0f} MiB)")


if __name__ == "__main__":
    main()
