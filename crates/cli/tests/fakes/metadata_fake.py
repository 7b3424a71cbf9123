#!/usr/bin/env python3
"""A small fake of the GCE metadata server, for tests.

Serves what object_store's instance-credential path asks for
(`object_store/src/gcp/credential.rs`, `InstanceCredentialProvider`):
  GET /computeMetadata/v1/instance/service-accounts/default/token
      -> {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}
  GET /computeMetadata/v1/instance/service-accounts/default/email
  GET /computeMetadata/v1/project/project-id
Like the real server, it answers 403 to any request without the header
`Metadata-Flavor: Google` (so a client that forgets it fails here too).

Test hook: GET /_fake/requests lists every request (path, query, Metadata-Flavor, status).

Python 3 standard library only. Prints "port N" once it listens on 127.0.0.1.
"""

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ACCOUNT = "/computeMetadata/v1/instance/service-accounts/default/"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Metadata Server for VM"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/text"):
        self.send_response(status)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return status

    def answer(self, path):
        if self.headers.get("Metadata-Flavor") != "Google":
            return self.reply(403, b"Missing required header: Metadata-Flavor")
        if path == ACCOUNT + "token":
            token = {"access_token": self.server.token, "expires_in": 3600, "token_type": "Bearer"}
            return self.reply(200, json.dumps(token).encode(), "application/json")
        if path == ACCOUNT + "email":
            return self.reply(200, self.server.email.encode())
        if path == "/computeMetadata/v1/project/project-id":
            return self.reply(200, self.server.project.encode())
        return self.reply(404, b"Not Found")

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/_fake/requests":
            with self.server.lock:
                body = json.dumps(self.server.requests).encode()
            self.reply(200, body, "application/json")
            return
        status = self.answer(url.path)
        with self.server.lock:
            self.server.requests.append(
                {"path": url.path, "query": url.query, "flavor": self.headers.get("Metadata-Flavor"), "status": status}
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--token", required=True, help="the access token handed out")
    parser.add_argument("--email", default="funnelpulse@test-project.iam.gserviceaccount.com")
    parser.add_argument("--project", default="test-project")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.token, server.email, server.project = args.token, args.email, args.project
    server.lock, server.requests = threading.Lock(), []
    print("port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
