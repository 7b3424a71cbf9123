#!/usr/bin/env python3
"""Commit cost on gs://: what committing stages 01 and 02 asks of the bucket.

Runs `funnelpulse run 01 02` (and then the same again, a re-run that replaces
every table) with the lake in gs:// on the fake GCS server of the tests
(crates/cli/tests/fakes/gcs_fake.py, the XML API object_store speaks) and
counts, from the fake's request log: objects copied and bytes copied (GCS has
no rename: the plain-Parquet lake moved every staged file by a copy and a
delete), deletes, uploads of Delta log entries, and all requests.

    python3 bench/commit_cost.py [--binary target/release/funnelpulse] [--rows 1000000]

Give --binary a build of another commit to measure it the same way (the
"before" figure in docs/benchmarks.md, "Commit cost on gs://", comes from
commit 6807693, the last one with the staging-and-rename commit).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAKES = ROOT / "crates" / "cli" / "tests" / "fakes"
BUCKET, PREFIX, TOKEN = "bench-bucket", "lake", "ya29.bench"


def start(script, *args):
    proc = subprocess.Popen([sys.executable, str(FAKES / script), *args], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("port "):
        sys.exit(f"{script} did not start: {line!r}")
    return proc, int(line.split()[1])


def fake(port, path, method="GET"):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


def kind(r):
    if r["method"] == "PUT" and r.get("copy_source"):
        return "copy"
    if r["method"] in ("PUT", "POST"):
        return "log entry" if "/_delta_log/" in r["key"] and r["key"].endswith(".json") else "upload"
    if r["method"] == "DELETE":
        return "delete"
    if r["method"] == "GET" and "list-type=2" in (r.get("query") or ""):
        return "list"
    return "read"


def measure(binary, raw, gcs_port, env, label):
    fake(gcs_port, "/_fake/requests", "DELETE")
    started = time.monotonic()
    out = subprocess.run([binary, "run", "01", "02", "--raw", str(raw), "--lake", f"gs://{BUCKET}/{PREFIX}"],
                         env=env, capture_output=True, text=True)
    secs = time.monotonic() - started
    if out.returncode != 0:
        sys.exit(f"{label} failed:\n{out.stdout}\n{out.stderr}")
    requests = fake(gcs_port, "/_fake/requests")
    sizes = fake(gcs_port, "/_fake/objects")
    counts = {}
    for r in requests:
        counts[kind(r)] = counts.get(kind(r), 0) + 1
    copied = sum(sizes.get(f"{BUCKET}/{r['key']}", 0) for r in requests if kind(r) == "copy")
    data_files = [k for k in sizes if k.endswith(".parquet")]
    written = {r["key"] for r in requests if kind(r) == "upload" and r["key"].endswith(".parquet")}
    written_bytes = sum(sizes.get(f"{BUCKET}/{k}", 0) for k in written)
    print(f"{label}: {secs:.1f}s, {len(requests)} requests; copies {counts.get('copy', 0)} "
          f"({copied / 2**20:.1f} MiB copied); deletes {counts.get('delete', 0)}; "
          f"Delta log entries {counts.get('log entry', 0)}; uploads {counts.get('upload', 0)}; "
          f"lists {counts.get('list', 0)}; data files now in the bucket {len(data_files)}")
    # The plain-Parquet lake moved each written file into place by a copy and a delete.
    print(f"  data files written: {len(written)} ({written_bytes / 2**20:.1f} MiB): what the staging-and-rename "
          f"commit copied (and deleted from staging)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--binary", default=os.environ.get("FUNNELPULSE_BIN", str(
        Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "funnelpulse")))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        raw = work / "raw"
        subprocess.run([args.binary, "generate", "--out", str(raw), "--rows", str(args.rows), "--days", "14"],
                       check=True, capture_output=True)
        gcs, gcs_port = start("gcs_fake.py", "--bucket", BUCKET, "--token", TOKEN)
        metadata, metadata_port = start("metadata_fake.py", "--token", TOKEN)
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "FUNNELPULSE_"))}
            env.update({"GOOGLE_BASE_URL": f"http://127.0.0.1:{gcs_port}", "HOME": str(work),
                        "GCE_METADATA_HOST": f"127.0.0.1:{metadata_port}",
                        "GCE_METADATA_IP": f"127.0.0.1:{metadata_port}"})
            print(f"{args.rows:,} rows, stages 01+02, lake gs://{BUCKET}/{PREFIX} on the fake GCS; binary {args.binary}")
            measure(args.binary, raw, gcs_port, env, "first run (tables created)")
            measure(args.binary, raw, gcs_port, env, "re-run (every table replaced)")
        finally:
            gcs.kill()
            metadata.kill()


if __name__ == "__main__":
    main()
