"""Fake scheduler REST API for deploy/tests/gce.bats, run by the fake
`gcloud compute start-iap-tunnel` on the port of --local-host-port (on
127.0.0.1), as the real tunnel would forward to the scheduler.

  FAKE_EXECUTORS        executors that register (default 2)
  FAKE_EXECUTORS_DELAY  seconds after start before they do (default 0)
  FAKE_STALE_EXECUTORS  further executors registered on hosts that are no VM of the group
                        (an older release's; default 0)
  FAKE_JOBS             a file with the JSON of /api/jobs (default [])
  FAKE_STARTED_MS       the scheduler's start time in /api/state (default: now)
  FAKE_API_DOWN=1       answer 502 to everything (the scheduler is not up)

Each request is appended to $FAKE_LOG as "api GET /api/…".
"""

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = next(int(a.rsplit(":", 1)[1]) for a in sys.argv if a.startswith("--local-host-port="))
STARTED = time.time()


def executors():
    if time.time() - STARTED < float(os.environ.get("FAKE_EXECUTORS_DELAY", "0")):
        return []
    count = int(os.environ.get("FAKE_EXECUTORS", "2"))
    stale = int(os.environ.get("FAKE_STALE_EXECUTORS", "0"))
    return [{"id": f"e{i}", "host": f"10.10.0.{10 + i}", "port": 50051, "last_seen": 1} for i in range(1, count + 1)] + [
        {"id": f"old{i}", "host": f"funnelpulse-executors-old{i}.europe-west1-b.c.p1.internal", "port": 50051, "last_seen": 1}
        for i in range(1, stale + 1)
    ]


def jobs():
    path = os.environ.get("FAKE_JOBS")
    if not path:
        return []
    with open(path) as f:
        return json.load(f)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with open(os.environ["FAKE_LOG"], "a") as log:
            log.write(f"api GET {self.path}\n")
        if os.environ.get("FAKE_API_DOWN"):
            return self.send_error(502)
        routes = {
            "/api/executors": executors,
            "/api/jobs": jobs,
            "/api/state": lambda: {"started": int(os.environ.get("FAKE_STARTED_MS", int(STARTED * 1000)))},
        }
        if self.path not in routes:
            return self.send_error(404)
        body = json.dumps(routes[self.path]()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
