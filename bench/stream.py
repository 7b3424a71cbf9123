#!/usr/bin/env python3
"""Streaming benchmark (stage 04, release, embedded Ballista).

On a lake with stage 03's stream input (by default the one bench/batch.py leaves
in data/bench/lake; built here from the default-size data when missing):

1. micro-batches of 2 files (the default) over the 50 files: latency per batch
   (p50/p90 from the checkpoint's progress/ segments) and the run's throughput;
2. catch-up: all 50 files in one batch: rows/s.

    cargo build --release -p funnelpulse && python3 bench/stream.py
"""
import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch import ROOT, run_measured  # noqa: E402


def progress_lines(lake):
    """The stream's progress lines (segments progress/<first batch>.jsonl), oldest first."""
    folder = Path(lake) / "checkpoints/stream_hourly_brand/progress"
    return [json.loads(line) for segment in sorted(folder.glob("*.jsonl")) for line in segment.open()]


def stream(binary, lake, extra):
    cmd = [binary, "run", "04", "--lake", str(lake), "--reset-stream", "--available-now", "--flush-at-end",
           "--file-settle", "0s", "--min-batches-to-retain", "1000000", *extra]
    secs, rss, out = run_measured(cmd)
    progress = progress_lines(lake)
    return secs, rss, out, [p for p in progress if not p["flush"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", default=str(ROOT / "data" / "bench" / "lake"))
    parser.add_argument("--rows", type=int, default=8_738_120)
    parser.add_argument("--binary", default=os.environ.get("FUNNELPULSE_BIN",
                        str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "funnelpulse")))
    args = parser.parse_args()
    lake = Path(args.lake)
    if not any((lake / "stream_input").glob("*.parquet")):
        raw = lake.parent / f"raw-{args.rows}"
        if not (raw / "truth.json").exists():
            run_measured([args.binary, "generate", "--out", str(raw), "--rows", str(args.rows), "--force"])
        run_measured([args.binary, "run", "01", "03", "--raw", str(raw), "--lake", str(lake),
                      "--stream-from", "2019-10-15", "--stream-to", "2019-10-31"])
    files = len(list((lake / "stream_input").glob("*.parquet")))

    secs, rss, out, batches = stream(args.binary, lake, [])
    rows = sum(b["input_rows"] for b in batches)
    totals = sorted(b["durations"]["total_ms"] for b in batches)
    p50 = statistics.median(totals)
    p90 = totals[int(0.9 * (len(totals) - 1))]
    phases = {k: statistics.median(b["durations"][k] for b in batches)
              for k in ["plan_ms", "aggregate_ms", "write_ms", "check_ms", "commit_ms"]}
    print(f"micro-batches of 2 files: {len(batches)} batches, {rows:,} rows of {files} files; "
          f"batch p50 {p50:.0f} ms, p90 {p90} ms, median phases {phases}; "
          f"run wall {secs:.1f}s ({rows / secs:,.0f} rows/s), peak RSS {rss / 2**20:.0f} MiB")
    print("  " + out.strip())

    secs, rss, out, batches = stream(args.binary, lake, ["--max-files-per-trigger", str(files)])
    batch = batches[0]
    batch_rate = batch["input_rows"] / (batch["durations"]["total_ms"] / 1000)
    print(f"catch-up, {files} files in one batch: {batch['input_rows']:,} rows in {batch['durations']['total_ms']} ms "
          f"({batch_rate:,.0f} rows/s in the batch); run wall {secs:.1f}s, peak RSS {rss / 2**20:.0f} MiB")
    print("  " + out.strip())


if __name__ == "__main__":
    main()
