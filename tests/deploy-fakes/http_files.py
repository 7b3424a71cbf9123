"""A tiny HTTP server for the VM tests: serves the files under a folder.

    python3 http_files.py ROOT PORT_FILE [--require-header NAME:VALUE]

GET /a/b returns ROOT/a/b (404 when there is no such file; the status in
ROOT/a/b.status, when that file exists, e.g. 500). PUT /a/b writes the body to
ROOT/a/b (as a VM writes its guest attributes to the metadata server); a file
ROOT/a/b.put-status makes it answer that status instead. With --require-header,
requests without that header get 403, as the GCE metadata server does
without "Metadata-Flavor: Google". Binds 127.0.0.1 on a free port and writes
the port to PORT_FILE once it listens. Each request is appended to
ROOT/requests.log.
"""

import http.server
import os
import sys


def main():
    root, port_file = sys.argv[1], sys.argv[2]
    required = None
    if len(sys.argv) > 4 and sys.argv[3] == "--require-header":
        name, _, value = sys.argv[4].partition(":")
        required = (name, value)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            with open(os.path.join(root, "requests.log"), "a") as log:
                log.write(f"GET {self.path}\n")
            if required and self.headers.get(required[0]) != required[1]:
                return self.reply(403, b"missing header\n")
            path = os.path.normpath(os.path.join(root, self.path.split("?")[0].lstrip("/")))
            if not path.startswith(os.path.abspath(root)) or not os.path.isfile(path):
                return self.reply(404, b"not found\n")
            status = 200
            if os.path.isfile(path + ".status"):
                status = int(open(path + ".status").read().strip())
            self.reply(status, open(path, "rb").read())

        def do_PUT(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with open(os.path.join(root, "requests.log"), "a") as log:
                log.write(f"PUT {self.path}\n")
            if required and self.headers.get(required[0]) != required[1]:
                return self.reply(403, b"missing header\n")
            path = os.path.normpath(os.path.join(root, self.path.split("?")[0].lstrip("/")))
            if not path.startswith(os.path.abspath(root)):
                return self.reply(404, b"not found\n")
            if os.path.isfile(path + ".put-status"):
                return self.reply(int(open(path + ".put-status").read().strip()), b"refused\n")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "wb") as f:
                f.write(body)
            os.replace(path + ".tmp", path)
            self.reply(200, b"")

        def reply(self, status, body):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
