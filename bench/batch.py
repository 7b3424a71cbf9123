#!/usr/bin/env python3
"""Batch benchmark: stages 01+02 (release, embedded Ballista) against DuckDB on the same CSVs,
then stages 03, 05 and 06 and the anomaly detectors' scores.

Generates the default-size data (8,738,120 rows, once, reused), then runs each
FunnelPulse stage as its own process and the DuckDB script as another, and
prints wall time, rows/s and peak RSS of each, and the ratio to DuckDB.

    cargo build --release -p funnelpulse && pip install duckdb && python3 bench/batch.py
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_measured(cmd, **kwargs):
    """Runs cmd; returns (seconds, peak RSS in bytes, stdout) of that process alone."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, **kwargs)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{out}")
    return seconds, usage.ru_maxrss * 1024, out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=8_738_120)
    parser.add_argument("--work", default=str(ROOT / "data" / "bench"))
    parser.add_argument("--binary", default=os.environ.get("FUNNELPULSE_BIN",
                        str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "funnelpulse")))
    args = parser.parse_args()
    work = Path(args.work)
    raw = work / f"raw-{args.rows}"
    binary = args.binary
    if not (raw / "truth.json").exists():
        secs, rss, out = run_measured([binary, "generate", "--out", str(raw), "--rows", str(args.rows), "--force"])
        print(f"generate: {out.strip()} (wall {secs:.1f}s, peak RSS {rss / 2**20:.0f} MiB)")
    csv_bytes = sum(p.stat().st_size for p in raw.glob("*.csv"))
    print(f"input: {args.rows:,} rows, {csv_bytes / 1e9:.2f} GB of CSV in {raw}")

    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    total = 0.0
    for stage in ["01", "02"]:
        secs, rss, out = run_measured([binary, "run", stage, "--raw", str(raw), "--lake", str(lake)])
        total += secs
        print(f"\nstage {stage}: wall {secs:.1f}s, {args.rows / secs:,.0f} raw rows/s, peak RSS {rss / 2**20:.0f} MiB")
        print("  " + out.strip().replace("\n", "\n  "))
    print(f"\nFunnelPulse 01+02: {total:.1f}s")

    import duckdb  # noqa: F401  (fail early with a clear message if missing)
    out_dir = work / "duckdb"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    sql = (ROOT / "bench" / "duckdb_tables.sql").read_text().replace("@RAW@", str(raw)).replace("@OUT@", str(out_dir))
    script = f"import duckdb\ncon = duckdb.connect()\ncon.execute({sql!r})\n"
    secs, rss, _ = run_measured([sys.executable, "-c", script])
    print(f"DuckDB {duckdb.__version__} same tables: wall {secs:.1f}s, peak RSS {rss / 2**20:.0f} MiB")
    print(f"ratio FunnelPulse / DuckDB: {total / secs:.2f}x")

    # The stream input, anomaly detection and the report on the same lake (not
    # part of the ratio), then the detectors' scores against the planted anomalies.
    for stage in ["03", "05", "06"]:
        # Stage 03 on the range docs/benchmarks.md's stream figures were measured on.
        options = ["--stream-from", "2019-10-15", "--stream-to", "2019-10-31"] if stage == "03" else []
        secs, rss, out = run_measured([binary, "run", stage, "--lake", str(lake), *options])
        print(f"\nstage {stage}: wall {secs:.1f}s, peak RSS {rss / 2**20:.0f} MiB")
        if stage == "05":
            print("  " + out.strip().replace("\n", "\n  "))
    _, _, out = run_measured([binary, "evaluate", "--lake", str(lake), "--truth", str(raw / "truth.json")])
    print("\n" + out.strip())


if __name__ == "__main__":
    main()
